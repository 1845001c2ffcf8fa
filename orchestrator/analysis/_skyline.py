"""Exact non-dominated masks for a cost matrix (every objective minimised), one algorithm per dimension.

A row is dominated only by a row at least as good in every objective and strictly better in one, so
identical non-dominated rows are all kept. 2-D: a sort and a sweep, O(n log n). 3-D: rows in
lexicographic order are dominated exactly when an earlier distinct row is no worse in objectives 2 and 3;
that prefix query is answered for all rows by divide and conquer vectorised per level, O(n log^2 n).
More objectives: block-nested loops in numpy, O(n * front) comparisons.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

# Cells (rows x front x objectives) compared at once by the block-nested loop, and its largest block.
_BLOCK_CELLS = 1 << 22
_BLOCK_ROWS = 1024


def nondominated(costs: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of (n, k) finite costs."""
    mask = np.zeros(len(costs), dtype=bool)
    mask[front_order(costs)] = True
    return mask


def front_order(costs: np.ndarray) -> np.ndarray:
    """Positions of the non-dominated rows of (n, k) finite costs, in ascending lexicographic order of cost."""
    n, k = costs.shape
    if n == 0:
        return np.zeros(0, dtype=int)
    if k == 1:
        return np.flatnonzero(costs[:, 0] == costs[:, 0].min())
    candidates = np.flatnonzero(~_dominated_by_pivot(costs))
    sub = costs[candidates]
    if k == 2:
        return candidates[_front_2d(sub[:, 0], sub[:, 1])]
    kept = np.flatnonzero(_by_unique_rows(sub, _front_3d if k == 3 else _front_kd))
    return candidates[kept[np.lexsort(sub[kept].T[::-1])]]


def _dominated_by_pivot(costs: np.ndarray) -> np.ndarray:
    """Rows dominated by the row of least normalised cost sum: a cheap O(n k) pre-filter (any pivot is safe)."""
    columns = [np.ascontiguousarray(c) for c in costs.T]
    total = np.zeros(len(costs))
    for c in columns:
        low, high = c.min(), c.max()
        total += (c - low) / (high - low if high > low else 1.0)
    pivot = costs[np.argmin(total)]
    no_better, worse = columns[0] >= pivot[0], columns[0] > pivot[0]
    for c, p in zip(columns[1:], pivot[1:]):
        no_better &= c >= p
        worse |= c > p
    return no_better & worse


def _front_2d(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kept, in x order: minimal y among rows with the same x, and strictly below every y of rows with smaller x."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    group_min = np.minimum.reduceat(ys, starts)
    before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(xs)]))
    return order[(ys == group_min[group]) & (ys < before[group])]


def _by_unique_rows(costs: np.ndarray, front: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run `front` on the distinct rows in lexicographic order; identical rows share the outcome."""
    order = np.lexsort(costs.T[::-1])
    ordered = costs[order]
    new = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]
    unique_id = np.cumsum(new) - 1
    mask = np.empty(len(costs), dtype=bool)
    mask[order] = front(ordered[new])[unique_id]
    return mask


def _front_3d(u: np.ndarray) -> np.ndarray:
    """Distinct rows in lexicographic order: dominated iff an earlier row has y <= y_i and z <= z_i."""
    y, z = _dense_rank(u[:, 1]), _dense_rank(u[:, 2])
    return _prefix_min_below(y, z) > z


def _prefix_min_below(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """For each i: min z[j] over j < i with y[j] <= y[i] (len(z) where none); y, z are ranks in [0, n)."""
    n = len(y)
    best = np.full(n, n)
    position = np.arange(n)
    span = 1
    while span < n:
        segment, right = position // (2 * span), (position // span) & 1
        # Within each segment, left-half rows come before right-half rows of equal y.
        order = np.argsort((segment * (n + 1) + y) * 2 + right, kind="stable")
        is_right = right[order] == 1
        offset = segment[order] * (n + 1)
        values = np.where(is_right, n, z[order]) - offset  # segments further on sit lower: the minimum restarts
        running = np.minimum.accumulate(values) + offset
        targets = order[is_right]
        best[targets] = np.minimum(best[targets], running[is_right])
        span *= 2
    return best


def _front_kd(u: np.ndarray) -> np.ndarray:
    """Distinct rows in lexicographic order (a dominator always comes earlier), compared block by block."""
    n, k = u.shape
    keep = np.zeros(n, dtype=bool)
    front = u[:0]
    start = 0
    while start < n:
        size = max(1, min(n - start, _BLOCK_ROWS, _BLOCK_CELLS // (k * max(len(front), 1))))
        block = u[start : start + size]
        dominated = (front[None, :, :] <= block[:, None, :]).all(axis=2).any(axis=1)
        inner = (block[None, :, :] <= block[:, None, :]).all(axis=2)
        np.fill_diagonal(inner, False)
        ok = ~dominated & ~inner.any(axis=1)
        keep[start : start + size] = ok
        front = np.concatenate([front, block[ok]])
        start += size
    return keep


def _dense_rank(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1].reshape(-1)
