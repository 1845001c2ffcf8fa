"""`ScalingFit`: the frozen result of `fit_scaling_law`, with prediction and the compute-optimal allocation."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from orchestrator.analysis._forms import evaluate_form, get_form


@dataclass(frozen=True, eq=False)
class ScalingFit:
    """A fitted scaling law. `params` holds E, the coefficients and the exponents (E = 0 when not fitted)."""

    # "chinchilla" or "power".
    form: str
    # Point estimates, e.g. {"E", "A", "B", "alpha", "beta"}.
    params: dict[str, float]
    # 95% percentile bootstrap intervals of the fitted parameters (empty without bootstrap).
    ci: dict[str, tuple[float, float]]
    # Bootstrap standard errors of the fitted parameters (empty without bootstrap).
    stderr: dict[str, float]
    # Role -> column used, e.g. {"n": "n_params", "d": "tokens", "loss": "val_loss"}.
    columns: dict[str, str]
    # Usable rows the fit used.
    n_points: int
    # Rows left out, with a "reason" column.
    excluded: pd.DataFrame
    # "huber" or "squared", always on log L̂ - log L; `delta` is the Huber threshold (None for squared).
    objective: str
    delta: float | None
    # Objective at the optimum (sum over rows).
    objective_value: float
    # How the optimum was searched for, in words.
    method: str
    # Number of bootstrap resamples and their seed.
    bootstrap: int
    seed: int | None
    # Search box of the exponents.
    exponent_bounds: tuple[float, float]
    # Whether E was fitted (False: fixed at 0).
    irreducible: bool
    # Things a user should know about this fit (exponents at a bound, degenerate intervals).
    warnings: tuple[str, ...]
    # Parameters of every bootstrap resample, one row each (None without bootstrap).
    samples: pd.DataFrame | None = None

    @property
    def unsupported(self) -> tuple[str, ...]:
        """Why the data cannot support this fit (too few runs per parameter, an exponent at its bound or undetermined);
        empty when they can. Reports skip an unsupported fit with these reasons rather than show its numbers."""
        from orchestrator.analysis._support import unsupported_reasons

        return unsupported_reasons(self)

    def predict(self, **inputs: ArrayLike) -> np.ndarray:
        """The fitted law at the given inputs (n=, d= for chinchilla; x= for power), broadcast together."""
        return evaluate_form(get_form(self.form), self.params, inputs)

    def predict_interval(self, level: float = 0.95, **inputs: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
        """The central `level` percentile interval of the law at the inputs over the bootstrap resamples' parameters
        (the prediction's uncertainty from the fit, not the runs' noise); None without bootstrap."""
        if self.samples is None or not len(self.samples):
            return None
        shape = (len(self.samples), *np.broadcast_shapes(*(np.shape(v) for v in inputs.values())))
        column = (-1,) + (1,) * (len(shape) - 1)
        params = {k: self.samples[k].to_numpy(float).reshape(column) if k in self.samples else v
                  for k, v in self.params.items()}
        values = evaluate_form(get_form(self.form), params, {k: np.broadcast_to(v, shape) for k, v in inputs.items()})
        tail = 100.0 * (1.0 - level) / 2.0
        low, high = np.nanpercentile(values, [tail, 100.0 - tail], axis=0)
        return low, high

    def compute_optimal(
        self, flops: ArrayLike, *, flops_per_param_token: float = 6.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n_opt, d_opt) minimising the chinchilla law under C = 6 * N * D: N_opt = G * (C/6)**(beta/(alpha+beta))."""
        if self.form != "chinchilla":
            raise ValueError(f"compute_optimal needs the chinchilla form (N and D); this fit is {self.form!r}")
        a, b = self.params["alpha"], self.params["beta"]
        if a <= 0 or b <= 0:
            raise ValueError(f"compute_optimal needs positive exponents, got alpha={a:.6g}, beta={b:.6g}")
        g = (a * self.params["A"] / (b * self.params["B"])) ** (1.0 / (a + b))
        budget = np.asarray(flops, dtype=float) / flops_per_param_token
        n_opt = g * budget ** (b / (a + b))
        return n_opt, budget / n_opt

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (NaN becomes None)."""
        out: dict[str, Any] = {
            "form": self.form,
            "objective": self.objective,
            "residual": "log(predicted) - log(observed)",
            "delta": self.delta,
            "method": self.method,
            "n_points": self.n_points,
            "n_excluded": len(self.excluded),
            "excluded_reasons": dict(Counter(self.excluded.get("reason", pd.Series(dtype=object)))),
            "columns": dict(self.columns),
            "irreducible": self.irreducible,
            "exponent_bounds": list(self.exponent_bounds),
            "params": {k: _num(v) for k, v in self.params.items()},
            "ci": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.ci.items()},
            "ci_level": 0.95,
            "stderr": {k: _num(v) for k, v in self.stderr.items()},
            "bootstrap": {"resamples": self.bootstrap, "seed": self.seed},
            "objective_value": _num(self.objective_value),
            "warnings": list(self.warnings),
            "unsupported": list(self.unsupported),
        }
        if self.form == "chinchilla":
            a, b = self.params["alpha"], self.params["beta"]
            if a + b > 0:
                out["compute_optimal_exponents"] = {"n_opt": _num(b / (a + b)), "d_opt": _num(a / (a + b))}
        return out


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
