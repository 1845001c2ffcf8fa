"""The history a planner was told, in a canonical order, so that what it proposes depends on the history alone.

Observations are ordered by the index of the proposal that made them (tag proposal.index), then by point; runs the
planner did not propose come last. Models refit at milestones of the data size, on the canonical prefix of that size,
so a relaunch told the same runs in another order rebuilds the same models.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from orchestrator.sweep.adaptive.space import point_key
from orchestrator.sweep.planner import Observation

INDEX_TAG = "proposal.index"
# Below this many rows every size is a milestone; above it, sizes grow by MILESTONE_GROWTH.
DENSE_MILESTONES, MILESTONE_GROWTH = 10, 1.2


def proposal_index(reason: Mapping[str, str]) -> int | None:
    """The proposal.index tag among a run's reason tags, or None when it has none (or not a whole number)."""
    raw = reason.get(INDEX_TAG)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def canonical(observations: Sequence[Observation]) -> list[Observation]:
    """Observations sorted by proposal index, then point; untagged ones after the tagged."""
    def order(o: Observation) -> tuple[int, float, tuple]:
        index = proposal_index(o.reason)
        return (index is None, index if index is not None else 0, point_key(o.point))

    return sorted(observations, key=order)


def evenly(n: int, most: int) -> np.ndarray:
    """Up to `most` positions spread evenly over range(n), first and last included: the rows a refit uses."""
    return np.unique(np.linspace(0, n - 1, min(n, most)).round().astype(int))


def milestone(n: int, growth: float = MILESTONE_GROWTH) -> int:
    """The largest milestone <= n: every size up to DENSE_MILESTONES, then sizes growing by `growth`."""
    size = DENSE_MILESTONES
    if n <= size:
        return n
    while math.ceil(size * growth) <= n:
        size = math.ceil(size * growth)
    return size
