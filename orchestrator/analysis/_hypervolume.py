"""Exact hypervolume of a set of runs against a reference point, for 2 or 3 objectives.

The hypervolume is the measure of the region dominated by the runs and bounded by the reference point
(all objectives turned into minimisation). Runs not strictly better than the reference in every objective
add nothing. 2-D: a sort and a sum. 3-D: a sweep over the third objective keeping the 2-D staircase
(O(n log n) searches, list updates). More objectives raise ValueError.
"""

from __future__ import annotations

import bisect
from typing import Mapping

import numpy as np
import pandas as pd

from orchestrator.analysis._rows import split_usable
from orchestrator.analysis._skyline import nondominated
from orchestrator.analysis.pareto import check_objectives, costs_matrix

__all__ = ["hypervolume"]


def hypervolume(front: pd.DataFrame, objectives: Mapping[str, str], reference: Mapping[str, float]) -> float:
    """Hypervolume of the rows of `front` (dominated rows may be included; they add nothing)."""
    objectives = check_objectives(objectives)
    if set(reference) != set(objectives):
        wanted = list(objectives)
        raise ValueError(f"reference must give a value for exactly the objectives {wanted}, got {list(reference)}")
    if len(objectives) > 3:
        raise ValueError(f"exact hypervolume is implemented for 1 to 3 objectives, got {len(objectives)}")
    ref_values = {c: np.array([float(reference[c])]) for c in objectives}
    ref = costs_matrix(ref_values, objectives)[0]
    if not np.isfinite(ref).all():
        raise ValueError(f"reference values must be finite, got {dict(reference)}")
    if len(front) == 0:
        return 0.0
    costs = costs_matrix(split_usable(front, list(objectives), positive=False).values, objectives)
    return hypervolume_of_costs(costs, ref)


def hypervolume_of_costs(costs: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of (n, k) minimisation costs against `ref`, k in 1..3."""
    costs = costs[(costs < ref).all(axis=1)]
    if len(costs) == 0:
        return 0.0
    costs = np.unique(costs[nondominated(costs)], axis=0)
    if costs.shape[1] == 1:
        return float(ref[0] - costs[:, 0].min())
    if costs.shape[1] == 2:
        return _area_2d(costs, ref)
    return _volume_3d(costs, ref)


def _area_2d(front: np.ndarray, ref: np.ndarray) -> float:
    """Non-dominated distinct points: sorted by x ascending (so y descending), sum the strips."""
    front = front[np.argsort(front[:, 0])]
    widths = np.diff(np.r_[front[:, 0], ref[0]])
    return float(np.sum(widths * (ref[1] - front[:, 1])))


def _volume_3d(front: np.ndarray, ref: np.ndarray) -> float:
    """Sweep z upward; between consecutive z the cross-section is the 2-D area of the points seen so far."""
    front = front[np.argsort(front[:, 2], kind="stable")]
    stair = _Staircase(ref[0], ref[1])
    volume = 0.0
    heights = np.diff(np.r_[front[:, 2], ref[2]])
    for (x, y, _), height in zip(front.tolist(), heights.tolist()):
        stair.add(x, y)
        volume += stair.area * height
    return volume


class _Staircase:
    """2-D non-dominated points, x ascending and y descending, with the area they dominate up to (rx, ry)."""

    def __init__(self, rx: float, ry: float) -> None:
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.rx, self.ry = rx, ry
        self.area = 0.0

    def add(self, x: float, y: float) -> None:
        i = bisect.bisect_left(self.xs, x)  # points before i have smaller x
        if (i > 0 and self.ys[i - 1] <= y) or (i < len(self.xs) and self.xs[i] == x and self.ys[i] <= y):
            return  # dominated by (or equal to) a point already in
        j = i
        while j < len(self.xs) and self.ys[j] >= y:
            j += 1
        self.area += self._gain(i, j, x, y)
        self.xs[i:j], self.ys[i:j] = [x], [y]

    def _gain(self, i: int, j: int, x: float, y: float) -> float:
        """Area added by (x, y), which replaces the points i..j-1 that it dominates."""
        right = self.xs[j] if j < len(self.xs) else self.rx
        lost = sum((self._next_x(k) - self.xs[k]) * (self.ry - self.ys[k]) for k in range(i, j))
        gained = (right - x) * (self.ry - y)
        if i > 0:  # the previous point's strip now ends at x instead of at xs[i] (or the edge)
            prev_end = self.xs[i] if i < len(self.xs) else self.rx
            gained -= (prev_end - x) * (self.ry - self.ys[i - 1])
        return gained - lost

    def _next_x(self, k: int) -> float:
        return self.xs[k + 1] if k + 1 < len(self.xs) else self.rx
