"""The search space of an adaptive sweep: points <-> the unit cube, space-filling designs, candidate sampling.

Each swept parameter is one coordinate in [0, 1]: linear for uniform, logarithmic for loguniform, integers rounded
for randint, and a choice's values as equal-width bins in the order given. Fixed parameters ride along unchanged.
Models work on coordinates; proposals are points ({config path: value}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from orchestrator.sweep.values import as_number, canonical_float, expand_values


@dataclass(frozen=True)
class Dimension:
    """One swept parameter and its map to [0, 1]."""

    # Config path, e.g. "job.lr".
    path: str
    # "uniform", "loguniform", "randint" or "choice".
    kind: str
    # Lower bound, inclusive (not used by a choice).
    low: float = 0.0
    # Upper bound, inclusive (not used by a choice).
    high: float = 1.0
    # Values of a choice, in the order given.
    choices: tuple[Any, ...] = ()

    def value(self, u: float) -> Any:
        """The parameter value at coordinate u."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "choice":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.kind == "randint":
            span = int(self.high) - int(self.low) + 1
            return int(self.low) + min(int(u * span), span - 1)
        if self.kind == "loguniform":
            return canonical_float(math.exp(math.log(self.low) + u * math.log(self.high / self.low)))
        return canonical_float(self.low + u * (self.high - self.low))

    def unit(self, value: Any) -> float:
        """The coordinate of a value (the middle of its bin for choices and integers)."""
        if self.kind == "choice":
            return (self.choices.index(value) + 0.5) / len(self.choices)
        if self.kind == "randint":
            return (int(round(float(value))) - int(self.low) + 0.5) / (int(self.high) - int(self.low) + 1)
        if self.kind == "loguniform":
            return math.log(float(value) / self.low) / math.log(self.high / self.low)
        return (float(value) - self.low) / (self.high - self.low)

    def log_value(self, u: np.ndarray) -> np.ndarray | None:
        """log of the values at coordinates u where every value is a positive number (None otherwise)."""
        u = np.asarray(u, dtype=float)
        if self.kind == "loguniform":
            return math.log(self.low) + np.clip(u, 0.0, 1.0) * math.log(self.high / self.low)
        numbers = self.choices if self.kind == "choice" else (self.low,)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in numbers):
            return None
        return np.log(np.array([float(self.value(x)) for x in u.ravel()])).reshape(u.shape)


class Space:
    """The swept dimensions of a sweep's params, and the fixed values added to every point."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        dims, fixed = [], {}
        for path, spec in params.items():
            dim = _dimension(path, spec)
            if dim is None:
                fixed[path] = expand_values(path, spec)[0]
            else:
                dims.append(dim)
        self.dims: tuple[Dimension, ...] = tuple(dims)
        self.fixed: dict[str, Any] = fixed
        self.paths: tuple[str, ...] = tuple(d.path for d in dims)

    def __len__(self) -> int:
        return len(self.dims)

    def index(self, path: str) -> int:
        return self.paths.index(path)

    def point(self, u: np.ndarray) -> dict[str, Any]:
        """The point ({config path: value}) at coordinates u, fixed values included."""
        return {**self.fixed, **{d.path: d.value(x) for d, x in zip(self.dims, u)}}

    def units(self, point: Mapping[str, Any]) -> np.ndarray:
        """Coordinates of a point (KeyError names a swept path it lacks)."""
        return np.array([d.unit(point[d.path]) for d in self.dims])

    def snap(self, u: np.ndarray) -> np.ndarray:
        """Coordinates moved to where their point really lies (in the cube; integers and choices mid-bin), (n, d)."""
        u = np.clip(np.atleast_2d(np.asarray(u, dtype=float)), 0.0, 1.0).copy()
        for j, d in enumerate(self.dims):
            bins = len(d.choices) if d.kind == "choice" else int(d.high) - int(d.low) + 1 if d.kind == "randint" else 0
            if bins:
                u[:, j] = (np.minimum(np.floor(u[:, j] * bins), bins - 1) + 0.5) / bins
        return u

    def sobol(self, n: int, seed: int) -> np.ndarray:
        """The first n points of a scrambled Sobol sequence seeded by `seed`, (n, d)."""
        from scipy.stats import qmc

        engine = qmc.Sobol(len(self), scramble=True, seed=np.random.default_rng(seed))
        return engine.random_base2(max(0, math.ceil(math.log2(max(n, 1)))))[:n]

    def around(self, centres: np.ndarray, n_each: int, scale: float, rng: np.random.Generator) -> np.ndarray:
        """n_each Gaussian perturbations (sd `scale` in every coordinate) of each centre, clipped to the cube."""
        if len(centres) == 0:
            return np.zeros((0, len(self)))
        steps = rng.standard_normal((len(centres), n_each, len(self))) * scale
        return np.clip(centres[:, None, :] + steps, 0.0, 1.0).reshape(-1, len(self))

    def corners(self) -> np.ndarray:
        """Every corner of the cube (numeric ranges at either end, choices at their first and last value), (2^d, d)."""
        grid = np.array(np.meshgrid(*[[0.0, 1.0]] * len(self), indexing="ij")).reshape(len(self), -1).T
        return self.snap(grid)


def point_key(point: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A hashable identity of a point, independent of key order and of how a float was computed."""
    return tuple(sorted((k, _canonical(v)) for k, v in point.items()))


def _canonical(value: Any) -> str:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return repr(canonical_float(float(value))) if number else repr(value)


def _dimension(path: str, spec: Any) -> Dimension | None:
    """The dimension a checked value spec sweeps, or None when it has a single value."""
    if not isinstance(spec, Mapping):
        values = expand_values(path, spec)
        return Dimension(path, "choice", choices=tuple(values)) if len(values) > 1 else None
    kind, bounds = next(iter(spec.items()))
    if kind == "choice":
        values = expand_values(path, bounds)
        return Dimension(path, "choice", choices=tuple(values)) if len(values) > 1 else None
    low, high = (as_number(path, b) for b in bounds)
    if kind == "randint":
        low, high = float(int(low)), float(int(high))
    return Dimension(path, kind, low, high) if low < high else None
