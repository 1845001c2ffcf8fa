"""What a run costs in each budget unit: measured from an ended run's metrics, predicted for a point from the runs seen.

Measured: runs count 1 each; gpu_hours from the metric `gpu_hours`, usd from `cost_usd`, energy_kwh from `energy_j`
/ 3.6e6. A run that ended without the metric its budget needs is an error (MissingCostError), never a silent 0.

Predicted: log cost is linear in the log of each positive-valued parameter (the coordinate for others), fitted by a
Bayesian ridge regression to the finished runs (pruned ones scaled up by their progress). The prior says cost grows
as N * D (6·N·D FLOPs over a throughput) in the model- and data-size parameters and does not depend on the others,
so before any run has finished the prior alone ranks points (`relative`), and one finished run sets the scale.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from orchestrator.errors import OrchestratorError
from orchestrator.sweep.adaptive.space import Space
from orchestrator.sweep.planner import BUDGET_METRICS, PRUNED, Observation

FINISHED = "FINISHED"
# Joules per kilowatt-hour.
J_PER_KWH = 3.6e6
# Prior standard deviation of the log-cost slope of a size parameter (about 1) and of any other parameter (about 0).
SIZE_SLOPE_SD = 0.2
OTHER_SLOPE_SD = 0.5
# Assumed spread of log cost around the regression, which sets how fast data outweighs the prior.
LOG_COST_SD = 0.1


class MissingCostError(OrchestratorError, ValueError):
    """An ended run lacks the metric its sweep's budget is measured in."""


def measured_cost(observation: Observation, unit: str) -> float:
    """What an ended run cost in `unit` (runs, gpu_hours, usd, energy_kwh)."""
    metric = BUDGET_METRICS[unit]
    if metric is None:
        return 1.0
    value = observation.metrics.get(metric)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise MissingCostError(
            f"the budget counts {unit}, measured from the metric {metric!r}, but a {observation.status} run at "
            f"{dict(observation.point)} ended without a usable value of it (got {value!r}); every ended run "
            f"(finished, failed or pruned) must log {metric!r}")
    return float(value) / J_PER_KWH if unit == "energy_kwh" else float(value)


class CostModel:
    """Predicts each budget unit's cost of points from the runs told so far."""

    def __init__(self, space: Space, units: Sequence[str], size_paths: Sequence[str]) -> None:
        self.space, self.units = space, tuple(units)
        logs = [d.log_value(np.zeros(1)) is not None for d in space.dims]
        self._is_log = np.array(logs)
        sizes = np.array([d.path in size_paths for d in space.dims])
        self._prior_mean = np.r_[0.0, np.where(sizes, 1.0, 0.0)]
        slope_sd = np.where(sizes, SIZE_SLOPE_SD, OTHER_SLOPE_SD)
        self._prior_precision = np.diag(np.r_[1e-8, 1.0 / slope_sd**2])
        # Unit -> regression coefficients [intercept, slopes]; units with no measured run yet are absent.
        self._coef: dict[str, np.ndarray] = {}

    def features(self, u: np.ndarray) -> np.ndarray:
        """[1, log value or coordinate of each dimension], (n, 1 + d)."""
        u = np.atleast_2d(u)
        dims = zip(self.space.dims, self._is_log)
        columns = [d.log_value(u[:, j]) if log else u[:, j] for j, (d, log) in enumerate(dims)]
        return np.column_stack([np.ones(len(u)), *columns])

    def fit(self, observations: Sequence[Observation]) -> None:
        """Refit every unit to the finished (and pruned, scaled to a full run) observations that measured it."""
        self._coef = {}
        for unit in self.units:
            if BUDGET_METRICS[unit] is None:
                continue
            rows = [(self.space.units(o.point), math.log(c)) for o, c in self._full_costs(observations, unit)]
            if rows:
                x = self.features(np.array([r[0] for r in rows]))
                y = np.array([r[1] for r in rows])
                a = x.T @ x / LOG_COST_SD**2 + self._prior_precision
                b = x.T @ y / LOG_COST_SD**2 + self._prior_precision @ self._prior_mean
                self._coef[unit] = np.linalg.solve(a, b)

    def predict(self, u: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted cost of each point per unit, (n,) arrays; a unit no run has measured yet is left out."""
        n = len(np.atleast_2d(u))
        out = {unit: np.ones(n) for unit in self.units if BUDGET_METRICS[unit] is None}
        if self._coef:
            x = self.features(u)
            out.update({unit: np.exp(x @ coef) for unit, coef in self._coef.items()})
        return out

    def relative(self, u: np.ndarray) -> np.ndarray:
        """Cost up to a constant factor: the fitted model's first measured unit, else the prior (N * D), (n,)."""
        x = self.features(u)
        coef = next(iter(self._coef.values()), self._prior_mean)
        return np.exp(x @ coef - (x @ coef).max())

    def _full_costs(self, observations: Sequence[Observation], unit: str) -> list[tuple[Observation, float]]:
        out = []
        for o in observations:
            progress = 1.0 if o.status == FINISHED else max((c.progress for c in o.checkpoints), default=0.0)
            if o.status not in (FINISHED, PRUNED) or progress <= 0:
                continue
            cost = measured_cost(o, unit) / progress
            if cost > 0 and all(p in o.point for p in self.space.paths):
                out.append((o, cost))
        return out
