"""Options of `fit_scaling_law`, checked once and carried as one frozen record."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestrator.analysis._forms import Form

OBJECTIVES = ("huber", "squared")
# Exponent grid points per axis: 50 x 50 for two exponents, 400 for one.
DEFAULT_GRID = {1: 400, 2: 50}


@dataclass(frozen=True)
class FitOptions:
    """Checked fit options; `delta` is None for the squared objective."""

    objective: str
    delta: float | None
    irreducible: bool
    bootstrap: int
    seed: int | None
    exponent_bounds: tuple[float, float]
    grid_size: int


def fit_options(
    spec: Form,
    objective: str,
    delta: float,
    irreducible: bool,
    bootstrap: int,
    seed: int | None,
    exponent_bounds: tuple[float, float],
    grid_size: int | None,
) -> FitOptions:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "huber" and not (delta > 0 and np.isfinite(delta)):
        raise ValueError(f"delta must be a positive finite number, got {delta!r}")
    if int(bootstrap) != bootstrap or bootstrap < 0:
        raise ValueError(f"bootstrap must be a non-negative integer, got {bootstrap!r}")
    lo, hi = (float(b) for b in exponent_bounds)
    if not 0.0 <= lo < hi:
        raise ValueError(f"exponent_bounds must satisfy 0 <= low < high, got {exponent_bounds!r}")
    size = DEFAULT_GRID[len(spec.inputs)] if grid_size is None else int(grid_size)
    if size < 3:
        raise ValueError(f"grid_size must be at least 3, got {grid_size!r}")
    d = float(delta) if objective == "huber" else None
    return FitOptions(objective, d, bool(irreducible), int(bootstrap), seed, (lo, hi), size)
