"""The law a `goal: law` sweep measures: its data rows, point fits, and bootstrap intervals of what matters.

Rows are (N, D, loss) of finished runs, plus every checkpoint a job declared valid (progress p of a run at D tokens
is a measurement at p·D), from runs of any status. Fits are `fit_scaling_law` (chinchilla, Huber on log loss), on
a 20 x 20 exponent grid to keep a refit near 0.1 s. What matters: the compute-optimal exponent a = beta/(alpha+beta)
(N_opt ∝ C^a under C = 6·N·D) and the loss predicted at `target_flops` on that optimal allocation, each with a 90%
percentile bootstrap interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from orchestrator.sweep.adaptive.spec import LawSpec
from orchestrator.sweep.planner import Observation

if TYPE_CHECKING:
    from orchestrator.analysis._fit_result import ScalingFit

FINISHED = "FINISHED"
# Two-sided level of the reported intervals.
LEVEL = 0.90
# Exponent grid points per axis of the global search (fit_scaling_law's default is 50).
GRID_SIZE = 20
# FLOPs per parameter per token.
FLOPS_PER_PARAM_TOKEN = 6.0


@dataclass(frozen=True)
class LawEstimate:
    """The fitted law and the 90% bootstrap intervals of the compute-optimal exponent and the loss at the target."""

    # Fitted E, A, B, alpha, beta.
    params: dict[str, float]
    # The compute-optimal exponent a = beta / (alpha + beta) of the fit (N_opt ∝ C^a).
    exponent: float
    # Its 90% percentile bootstrap interval.
    exponent_ci: tuple[float, float]
    # Loss predicted at target_flops on the compute-optimal allocation (None without a target).
    loss_at_target: float | None
    # Its 90% percentile bootstrap interval (None without a target).
    loss_at_target_ci: tuple[float, float] | None
    # Rows the fit used (finished runs and valid checkpoints).
    n_rows: int
    # Bootstrap resamples behind the intervals.
    bootstrap: int

    @property
    def exponent_ci_width(self) -> float:
        return self.exponent_ci[1] - self.exponent_ci[0]

    @property
    def loss_at_target_ci_width(self) -> float | None:
        return None if self.loss_at_target_ci is None else self.loss_at_target_ci[1] - self.loss_at_target_ci[0]


def law_rows(observations: Sequence[Observation], law: LawSpec) -> np.ndarray:
    """(N, D, loss) rows, (n, 3): finals of finished runs and valid checkpoints, in the order of `observations`."""
    rows = []
    for o in observations:
        n, d = float(o.point[law.n_path]), float(o.point[law.d_path])
        for c in sorted(o.checkpoints, key=lambda c: c.progress):
            if c.valid and 0 < c.progress < 1 and _usable(c.metrics.get(law.loss)):
                rows.append((n, c.progress * d, float(c.metrics[law.loss])))
        if o.status == FINISHED and _usable(o.metrics.get(law.loss)):
            rows.append((n, d, float(o.metrics[law.loss])))
    return np.array(rows, dtype=float).reshape(-1, 3)


def fit_law(rows: np.ndarray, bootstrap: int = 0, seed: int = 0) -> ScalingFit:
    """`fit_scaling_law` on the rows (pandas loads here); AnalysisInputError, a ValueError, when they cannot fit."""
    import pandas as pd

    from orchestrator.analysis.scaling import fit_scaling_law

    df = pd.DataFrame(rows, columns=["n", "d", "loss"])
    return fit_scaling_law(df, "chinchilla", n="n", d="d", loss="loss", bootstrap=bootstrap, seed=seed,
                           grid_size=GRID_SIZE)


def estimate(rows: np.ndarray, target_flops: float | None, bootstrap: int, seed: int) -> LawEstimate:
    """Point fit and 90% percentile bootstrap intervals (`bootstrap` >= 2 resamples, seeded)."""
    fit = fit_law(rows, bootstrap, seed)
    samples = {k: fit.samples[k].to_numpy() for k in ("E", "A", "B", "alpha", "beta")}
    tail = 100.0 * (1.0 - LEVEL) / 2.0
    a = exponent(samples)
    a_lo, a_hi = np.nanpercentile(a, [tail, 100.0 - tail])
    loss, loss_ci = None, None
    if target_flops is not None:
        loss = float(loss_at_flops(fit.params, target_flops))
        lo, hi = np.nanpercentile(loss_at_flops(samples, target_flops), [tail, 100.0 - tail])
        loss_ci = (float(lo), float(hi))
    return LawEstimate(dict(fit.params), float(exponent(fit.params)), (float(a_lo), float(a_hi)), loss, loss_ci,
                       len(rows), bootstrap)


def exponent(params: dict) -> np.ndarray:
    """a = beta / (alpha + beta), elementwise (NaN where alpha + beta <= 0)."""
    a, b = np.asarray(params["alpha"], float), np.asarray(params["beta"], float)
    total = a + b
    return np.where(total > 0, b / np.where(total > 0, total, 1.0), np.nan)


def loss_at_flops(params: dict, flops: float) -> np.ndarray:
    """The law's loss at the compute-optimal (N, D) for `flops` under C = 6·N·D, elementwise over parameter arrays."""
    e, a_, b_ = (np.asarray(params[k], float) for k in ("E", "A", "B"))
    alpha, beta = (np.maximum(np.asarray(params[k], float), 1e-9) for k in ("alpha", "beta"))
    ratio = np.maximum(alpha * a_, 1e-300) / np.maximum(beta * b_, 1e-300)
    log_g = np.log(ratio) / (alpha + beta)
    log_c = np.log(flops / FLOPS_PER_PARAM_TOKEN)
    log_n = log_g + beta / (alpha + beta) * log_c
    log_d = log_c - log_n
    return e + a_ * np.exp(-alpha * log_n) + b_ * np.exp(-beta * log_d)


def _usable(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value > 0
