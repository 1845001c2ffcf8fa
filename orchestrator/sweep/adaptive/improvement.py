"""Hypervolume improvement of candidate points over a front, for minimisation costs normalised so the reference is 1.

2 objectives: vectorised over every candidate and sample at once (the staircase of the front as strips). 1 objective:
the gain over the best value. 3: exact hypervolume of the front with and without each point
(`orchestrator.analysis._hypervolume`), slower, so callers pass fewer points.
"""

from __future__ import annotations

import numpy as np


def nondominated_rows(costs: np.ndarray) -> np.ndarray:
    """The non-dominated rows of (n, k) minimisation costs that beat the reference (all < 1)."""
    costs = costs[(costs < 1.0).all(axis=1)]
    if len(costs) == 0:
        return costs
    from orchestrator.analysis._skyline import nondominated

    return np.unique(costs[nondominated(costs)], axis=0)


def hypervolume(costs: np.ndarray) -> float:
    """Hypervolume of (n, k) normalised costs against the reference point (1, ..., 1)."""
    front = nondominated_rows(costs)
    return _exact(front) if len(front) else 0.0


def improvement(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Hypervolume each of (m, k) points would add to `front` (non-dominated, normalised), (m,)."""
    k = points.shape[1]
    if k == 1:
        best = min(1.0, float(front[:, 0].min())) if len(front) else 1.0
        return np.maximum(best - points[:, 0], 0.0)
    if k == 2:
        return _improvement_2d(front, points)
    base = _exact(front) if len(front) else 0.0
    return np.array([_exact(np.vstack([front, p[None]])) - base for p in points])


def epsilon_gap(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Additive epsilon of each point to the front, (m,): how far it must move in every objective to be dominated
    (negative: it is not dominated, and the more negative the further it reaches beyond the front). A cheap ranking."""
    if len(front) == 0:
        return -np.ones(len(points))
    return (points[:, None, :] - front[None, :, :]).max(axis=2).min(axis=1)


def _improvement_2d(front: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Area each point adds. The front's staircase is strips [start_j, end_j) at height level_j: [.., x_0) at the
    reference, then [x_j, x_j+1) at y_j, heights falling. A point (px, py) gains (end_j - max(start_j, px)) *
    (level_j - py) over the strips with end_j > px and level_j > py, a contiguous run: prefix sums, O(log) each."""
    front = front[np.argsort(front[:, 0])] if len(front) else front.reshape(0, 2)
    px, py = np.minimum(points[:, 0], 1.0), points[:, 1]
    floor = min(float(px.min()) if len(px) else 0.0, float(front[:, 0].min()) if len(front) else 0.0) - 1.0
    starts = np.r_[floor, front[:, 0]]
    ends = np.r_[front[:, 0], 1.0]
    levels = np.r_[1.0, front[:, 1]]
    widths = ends - starts
    area = np.r_[0.0, np.cumsum(widths * levels)]
    width = np.r_[0.0, np.cumsum(widths)]
    first = np.searchsorted(ends, px, side="right")  # strips before `first` end at or left of px
    stop = np.searchsorted(-levels, -py, side="left")  # strips before `stop` are above py
    gain = (area[stop] - area[first]) - py * (width[stop] - width[first])
    inside = first < stop
    at = np.minimum(first, len(starts) - 1)  # the first strip the point reaches into, cut at px
    cut = np.where(inside, (px - starts[at]) * (levels[at] - py), 0.0)
    return np.where(inside, np.maximum(gain - np.maximum(cut, 0.0), 0.0), 0.0)


def _exact(front: np.ndarray) -> float:
    from orchestrator.analysis._hypervolume import hypervolume_of_costs

    return float(hypervolume_of_costs(front, np.ones(front.shape[1])))
