"""`IsoFlopFit`: the frozen result of `fit_isoflop`."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True, eq=False)
class IsoFlopFit:
    """N_opt = k * C**a fitted through the minima of per-budget parabolas (Chinchilla's approach 2)."""

    # Exponent of N_opt in the compute budget C.
    a: float
    # Coefficient: N_opt = k * C**a.
    k: float
    # Standard error of a from the line fit (NaN with two budgets).
    a_stderr: float
    # 95% percentile bootstrap interval of a (None without bootstrap).
    a_ci: tuple[float, float] | None
    # One row per budget: flops, n_points, n_sizes, parabola (log_n_center, c0, c1, c2), n_opt, loss_opt,
    # extrapolated (vertex outside the sampled sizes) and dropped_reason ("" for budgets that were used).
    budgets: pd.DataFrame
    # Rows left out, with a "reason" column.
    excluded: pd.DataFrame
    # Role -> column used: {"n", "flops", "loss"}.
    columns: dict[str, str]
    warnings: tuple[str, ...]
    # Number of bootstrap resamples (0: none).
    bootstrap: int = 0

    @property
    def b(self) -> float:
        """Exponent of D_opt in C, assuming C = 6 N D."""
        return 1.0 - self.a

    def n_opt(self, flops: ArrayLike) -> np.ndarray:
        return self.k * np.asarray(flops, dtype=float) ** self.a

    def d_opt(self, flops: ArrayLike, *, flops_per_param_token: float = 6.0) -> np.ndarray:
        c = np.asarray(flops, dtype=float)
        return c / (flops_per_param_token * self.n_opt(c))

    def to_dict(self) -> dict[str, Any]:
        used = self.budgets[self.budgets["dropped_reason"] == ""]
        return {
            "method": "isoflop parabolas in log N per budget, then least squares of log N_opt on log C",
            "a": _num(self.a),
            "b": _num(self.b),
            "k": _num(self.k),
            "a_stderr": _num(self.a_stderr),
            "a_ci": None if self.a_ci is None else [_num(v) for v in self.a_ci],
            "bootstrap": self.bootstrap,
            "n_budgets": len(used),
            "budgets": [{"flops": _num(c), "n_opt": _num(n)} for c, n in zip(used["flops"], used["n_opt"])],
            "n_excluded": len(self.excluded),
            "excluded_reasons": dict(Counter(self.excluded.get("reason", pd.Series(dtype=object)))),
            "columns": dict(self.columns),
            "warnings": list(self.warnings),
        }


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
