"""Global fit and bootstrap of a sum of power laws, on prepared data (no DataFrames here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestrator.analysis._bootstrap import resample_counts
from orchestrator.analysis._lm import minimize
from orchestrator.analysis._objective import Problem
from orchestrator.analysis._search import CHUNK_CELLS, bounds, grid_starts

# Local minima of the profiled grid that are polished, and distinct optima reused as bootstrap starts.
POLISHED_STARTS = 8
BOOTSTRAP_STARTS = 3
# Exponent vectors closer than this are the same optimum.
SAME_OPTIMUM = 1e-3
# Other optima are reused as bootstrap starts only when their objective is within this factor of the best.
COMPETITIVE = 1.5


@dataclass(frozen=True, eq=False)
class Estimate:
    """The global optimum and the other distinct local optima the search found."""

    theta: np.ndarray  # (P,) best parameter vector, internal layout
    value: float  # objective at theta
    optima: np.ndarray  # (S, P) distinct optima, best first (optima[0] is theta)
    values: np.ndarray  # (S,) objective at each optimum
    lower: np.ndarray
    upper: np.ndarray


def global_fit(p: Problem, exponent_bounds: tuple[float, float], grid_size: int) -> Estimate:
    """Profile the exponent grid, polish its best local minima, keep the best and the distinct others."""
    lower, upper = bounds(p, exponent_bounds)
    starts = grid_starts(p, exponent_bounds, grid_size, POLISHED_STARTS)
    theta, value = minimize(starts, p, np.ones_like(p.t), lower, upper)
    order = np.argsort(value, kind="stable")
    optima, values = _distinct(theta[order], value[order], p.m)
    return Estimate(optima[0], float(values[0]), optima, values, lower, upper)


def bootstrap_fits(p: Problem, est: Estimate, n_resamples: int, seed: int | None) -> np.ndarray:
    """Refit on `n_resamples` row resamples, each from every competitive optimum; best per resample, (B, P)."""
    counts = resample_counts(len(p.t), n_resamples, np.random.default_rng(seed))
    starts = est.optima[est.values <= COMPETITIVE * est.value][:BOOTSTRAP_STARTS]
    step = max(1, CHUNK_CELLS // (len(p.t) * len(starts)))
    return np.concatenate([_refit(p, est, starts, counts[i : i + step]) for i in range(0, n_resamples, step)])


def _refit(p: Problem, est: Estimate, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Best optimum per resample (rows of `counts`), starting every resample from every start."""
    b, s = len(counts), len(starts)
    theta, value = minimize(np.tile(starts, (b, 1)), p, np.repeat(counts, s, axis=0), est.lower, est.upper)
    best = value.reshape(b, s).argmin(axis=1)
    return theta.reshape(b, s, -1)[np.arange(b), best]


def _distinct(theta_sorted: np.ndarray, value_sorted: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the first of each group of optima whose exponents agree within SAME_OPTIMUM."""
    kept: list[int] = []
    for i, row in enumerate(theta_sorted):
        if all(np.abs(row[:m] - theta_sorted[k, :m]).max() > SAME_OPTIMUM for k in kept):
            kept.append(i)
    return theta_sorted[kept], value_sorted[kept]
