"""IsoFLOP analysis (Chinchilla's approach 2): a parabola in log N per compute budget, then N_opt ∝ C**a.

Runs are grouped into budgets by their `flops` (values within `budget_rel_tol` of a budget's smallest
value share it). Each budget with at least three distinct model sizes gets a least-squares parabola of the
loss in log N; its vertex is that budget's N_opt. A line through (log C, log N_opt) gives a and k in
N_opt = k * C**a; with C = 6 N D, D_opt ∝ C**(1 - a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from orchestrator.analysis import _parabolas
from orchestrator.analysis._bootstrap import LEVEL, percentile_interval
from orchestrator.analysis._isoflop_result import IsoFlopFit
from orchestrator.analysis._rows import REASON_COLUMN, split_usable
from orchestrator.analysis.errors import TooFewPointsError

__all__ = ["IsoFlopFit", "fit_isoflop"]

MIN_BUDGETS = 2


@dataclass(frozen=True, eq=False)
class _Budgets:
    """Usable rows assigned to budgets; `valid` marks the budgets whose parabola has a minimum."""

    group: np.ndarray  # (n,) budget number of each row
    table: pd.DataFrame  # one row per budget
    coef: np.ndarray  # (G, 3) parabola coefficients c0 + c1*u + c2*u**2 in u = log N
    valid: np.ndarray  # (G,)


def fit_isoflop(
    df: pd.DataFrame,
    n: str = "n_params",
    flops: str = "flops",
    loss: str = "val_loss",
    *,
    budget_rel_tol: float = 0.05,
    bootstrap: int = 0,
    seed: int | None = 0,
) -> IsoFlopFit:
    """Fit N_opt = k * C**a from IsoFLOP curves; `bootstrap` resamples rows within each budget for a CI of a."""
    rows = split_usable(df, [n, flops, loss], positive=True)
    log_n, c, y = np.log(rows.values[n]), rows.values[flops], rows.values[loss]
    budgets = _fit_budgets(log_n, c, y, budget_rel_tol)
    good = budgets.table[budgets.valid]
    if len(good) < MIN_BUDGETS:
        raise TooFewPointsError(
            "an IsoFLOP fit", MIN_BUDGETS, len(good), "counted in compute budgets with a parabola minimum, not rows"
        )
    a, log_k, a_stderr = _line(np.log(good["flops"].to_numpy()), np.log(good["n_opt"].to_numpy()))
    ci, warnings = _bootstrap_ci(log_n, y, budgets, bootstrap, seed)
    excluded = pd.concat([rows.excluded, _dropped_rows(df, rows.positions, budgets)])
    warnings = _vertex_warnings(good) + warnings
    columns = {"n": n, "flops": flops, "loss": loss}
    k = float(np.exp(log_k))
    return IsoFlopFit(a, k, a_stderr, ci, budgets.table, excluded, columns, tuple(warnings), bootstrap)


def _fit_budgets(log_n: np.ndarray, c: np.ndarray, y: np.ndarray, rel_tol: float) -> _Budgets:
    group = _group_budgets(c, rel_tol)
    g = group.max() + 1
    coef = np.full((g, 3), np.nan)
    for b in range(g):
        coef[b] = _parabolas.fit_one(log_n[group == b], y[group == b])
    valid = np.isfinite(coef).all(axis=1) & (coef[:, 2] > 0)
    return _Budgets(group, _parabolas.budget_table(group, log_n, c, y, coef, valid), coef, valid)


def _group_budgets(c: np.ndarray, rel_tol: float) -> np.ndarray:
    """Budget number per row: sorted flops start a new budget past (1 + rel_tol) x the budget's first value."""
    order = np.argsort(c, kind="stable")
    group_sorted = np.zeros(len(c), dtype=int)
    start = c[order[0]]
    for i, idx in enumerate(order[1:], start=1):
        new = c[idx] > start * (1.0 + rel_tol)
        group_sorted[i] = group_sorted[i - 1] + int(new)
        start = c[idx] if new else start
    group = np.empty(len(c), dtype=int)
    group[order] = group_sorted
    return group


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares slope, intercept and the slope's standard error (NaN with two points)."""
    (slope, intercept), residuals, *_ = np.polyfit(x, y, 1, full=True)
    dof = len(x) - 2
    if dof <= 0:
        return float(slope), float(intercept), float("nan")
    sigma2 = float(residuals[0]) / dof if len(residuals) else 0.0
    return float(slope), float(intercept), float(np.sqrt(sigma2 / np.sum((x - x.mean()) ** 2)))


def _bootstrap_ci(
    log_n: np.ndarray, y: np.ndarray, budgets: _Budgets, n_resamples: int, seed: int | None
) -> tuple[tuple[float, float] | None, list[str]]:
    if not n_resamples:
        return None, []
    rng = np.random.default_rng(seed)
    slopes = _parabolas.bootstrap_slopes(log_n, y, budgets.group, budgets.table, budgets.valid, n_resamples, rng)
    finite = slopes[np.isfinite(slopes)]
    warnings = []
    if len(finite) < len(slopes):
        failed = len(slopes) - len(finite)
        warnings.append(f"{failed} of {len(slopes)} bootstrap resamples had fewer than two usable budgets")
    if len(finite) < 2:
        return None, warnings + ["too few usable bootstrap resamples for an interval of a"]
    lo, hi = percentile_interval(finite[:, None], LEVEL)
    if hi[0] - lo[0] <= 0:
        warnings.append(f"bootstrap interval for a is degenerate ([{lo[0]:.6g}, {hi[0]:.6g}])")
    return (float(lo[0]), float(hi[0])), warnings


def _dropped_rows(df: pd.DataFrame, positions: np.ndarray, budgets: _Budgets) -> pd.DataFrame:
    """Usable rows whose budget was left out, with the reason."""
    reasons = budgets.table["dropped_reason"].to_numpy()[budgets.group]
    dropped = ~budgets.valid[budgets.group]
    return df.iloc[positions[dropped]].assign(**{REASON_COLUMN: reasons[dropped]})


def _vertex_warnings(good: pd.DataFrame) -> list[str]:
    out = good[good["extrapolated"]]
    return [
        f"budget {c:.3g} FLOPs: the parabola's minimum (N = {n:.3g}) lies outside the sampled model sizes"
        for c, n in zip(out["flops"], out["n_opt"])
    ]
