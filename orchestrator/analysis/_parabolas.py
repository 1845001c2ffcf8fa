"""Per-budget parabolas of loss in log N for the IsoFLOP analysis, single and bootstrapped (vectorised)."""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_SIZES = 3


def fit_one(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(c0, c1, c2) of y = c0 + c1*v + c2*v**2 with v = u - mean(u); NaN when fewer than 3 distinct u."""
    if len(np.unique(u)) < MIN_SIZES:
        return np.full(3, np.nan)
    return np.polyfit(u - u.mean(), y, 2)[::-1]


def vertex(coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset of the minimum from the centre, and the loss there, for (..., 3) coefficients."""
    c0, c1, c2 = coef[..., 0], coef[..., 1], coef[..., 2]
    return -c1 / (2.0 * c2), c0 - c1 * c1 / (4.0 * c2)


def budget_table(
    group: np.ndarray, log_n: np.ndarray, flops: np.ndarray, loss: np.ndarray, coef: np.ndarray, valid: np.ndarray
) -> pd.DataFrame:
    """One row per budget: its flops, sizes, parabola, vertex, and why it was left out if it was."""
    rows = []
    for b in range(len(coef)):
        u, inside = log_n[group == b], group == b
        offset, loss_opt = vertex(coef[b]) if valid[b] else (np.nan, np.nan)
        u_opt = u.mean() + offset
        rows.append(
            {
                "flops": float(np.median(flops[inside])),
                "n_points": int(inside.sum()),
                "n_sizes": int(len(np.unique(u))),
                "log_n_center": float(u.mean()),
                "c0": coef[b, 0], "c1": coef[b, 1], "c2": coef[b, 2],
                "n_opt": float(np.exp(u_opt)),
                "loss_opt": float(loss_opt),
                "extrapolated": bool(valid[b] and not u.min() <= u_opt <= u.max()),
                "dropped_reason": _reason(len(np.unique(u)), coef[b, 2], valid[b]),
            }
        )
    return pd.DataFrame(rows)


def _reason(n_sizes: int, curvature: float, valid: bool) -> str:
    if valid:
        return ""
    if n_sizes < MIN_SIZES:
        return f"budget has {n_sizes} distinct model sizes; a parabola needs {MIN_SIZES}"
    return "the budget's parabola opens downward (no minimum)"


def bootstrap_slopes(
    log_n: np.ndarray,
    loss: np.ndarray,
    group: np.ndarray,
    table: pd.DataFrame,
    valid: np.ndarray,
    n_resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Slope a of log N_opt on log C for each resample (rows resampled within budgets); NaN where undefined."""
    budgets = np.flatnonzero(valid)
    u_opt = np.full((n_resamples, len(budgets)), np.nan)
    for j, b in enumerate(budgets):
        u, y = log_n[group == b], loss[group == b]
        draws = rng.integers(0, len(u), size=(n_resamples, len(u)))
        u_opt[:, j] = u.mean() + _resampled_vertices(u - u.mean(), y, draws)
    log_c = np.log(table["flops"].to_numpy()[budgets])
    return _masked_slopes(np.broadcast_to(log_c, u_opt.shape), u_opt)


def _resampled_vertices(v: np.ndarray, y: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Vertex offset of the least-squares parabola of each resample (rows `draws`), NaN if it has none."""
    x = np.stack([np.ones_like(v), v, v * v], axis=1)[draws]  # (B, n, 3)
    gram = np.einsum("bni,bnj->bij", x, x)
    rhs = np.einsum("bni,bn->bi", x, y[draws])
    sizes = np.array([len(np.unique(v[d])) for d in draws])
    ok = sizes >= MIN_SIZES
    coef = np.full(rhs.shape, np.nan)
    coef[ok] = np.linalg.solve(gram[ok], rhs[ok][:, :, None])[:, :, 0]
    offset, _ = vertex(coef)
    return np.where(coef[:, 2] > 0, offset, np.nan)


def _masked_slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope per row over the finite y; NaN with fewer than two."""
    mask = np.isfinite(y)
    count = mask.sum(axis=1)
    xm = np.where(mask, x, 0.0).sum(axis=1) / np.maximum(count, 1)
    ym = np.where(mask, y, 0.0).sum(axis=1) / np.maximum(count, 1)
    dx, dy = np.where(mask, x - xm[:, None], 0.0), np.where(mask, y - ym[:, None], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
    return np.where(count >= 2, slope, np.nan)
