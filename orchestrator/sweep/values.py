"""Value specs of a sweep parameter: lists, linear and log ranges, and random distributions.

A spec is written in YAML as one of:
  [1, 2, 3]                      explicit values
  {range: [lo, hi], num: n}      n evenly spaced values, both ends included
  {range: [lo, hi], step: s}     lo, lo+s, ... up to hi
  {log: [lo, hi], num: n}        n log-spaced values, both ends included
  3e-4                           one fixed value
and, for `kind: random`, {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]} or {choice: [...]}.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from orchestrator.errors import ConfigError

RANGE_KEYS = {"range", "log"}
DISTRIBUTIONS = {"uniform", "loguniform", "randint", "choice"}


def canonical_float(x: float) -> float:
    """Round a computed float to 12 significant digits so 10**3 and 1000.0000000001 hash the same."""
    return float(f"{x:.12g}")


def as_number(field: str, value: Any) -> float:
    """`value` as a float, or a ConfigError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(field, f"expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(field, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(field, f"expected a finite number, got {value!r}")
    return number


def _bounds(field: str, spec: Mapping[str, Any], key: str) -> tuple[float, float]:
    pair = spec[key]
    if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
        raise ConfigError(f"{field}.{key}", f"expected [min, max], got {pair!r}")
    lo, hi = (as_number(f"{field}.{key}", v) for v in pair)
    if lo > hi:
        raise ConfigError(f"{field}.{key}", f"min {lo:g} is greater than max {hi:g}")
    return lo, hi


def _count(field: str, spec: Mapping[str, Any]) -> int:
    num = spec.get("num")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ConfigError(f"{field}.num", f"expected a whole number >= 1, got {num!r}")
    return num


def _linear(field: str, spec: Mapping[str, Any]) -> list[float]:
    lo, hi = _bounds(field, spec, "range")
    if "step" in spec:
        step = as_number(f"{field}.step", spec["step"])
        if step <= 0:
            raise ConfigError(f"{field}.step", f"expected a positive step, got {step:g}")
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        return [canonical_float(lo + i * step) for i in range(count)]
    return [canonical_float(v) for v in np.linspace(lo, hi, _count(field, spec))]


def _logspaced(field: str, spec: Mapping[str, Any]) -> list[float]:
    lo, hi = _bounds(field, spec, "log")
    if lo <= 0:
        raise ConfigError(f"{field}.log", f"log-spaced bounds must be positive, got [{lo:g}, {hi:g}]")
    return [canonical_float(v) for v in np.geomspace(lo, hi, _count(field, spec))]


def expand_values(field: str, spec: Any) -> list[Any]:
    """The list of values a grid/zip spec stands for."""
    if isinstance(spec, Mapping):
        kinds = RANGE_KEYS & set(spec)
        if len(kinds) != 1:
            raise ConfigError(field, f"expected a list, a value, or a mapping with one of range/log; got keys {sorted(spec)}")
        extra = set(spec) - kinds - {"num", "step"}
        if extra:
            raise ConfigError(field, f"unknown keys {sorted(extra)}; allowed: range|log, num, step")
        return _linear(field, spec) if "range" in spec else _logspaced(field, spec)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if len(spec) == 0:
            raise ConfigError(field, "empty list: give at least one value")
        return list(spec)
    return [spec]


def coerce(field: str, value: Any, template: Any) -> Any:
    """Match `value` to the type of the base config's value at that field: ints are rounded where the field is an int."""
    if isinstance(template, bool) or template is None or isinstance(value, bool):
        return value
    if isinstance(template, int):
        return int(round(as_number(field, value)))
    if isinstance(template, float):
        return canonical_float(as_number(field, value))
    return value


def validate_distribution(field: str, spec: Any) -> None:
    """Check a random-search spec without sampling it."""
    if isinstance(spec, Mapping):
        kinds = DISTRIBUTIONS & set(spec)
        if len(kinds) != 1 or len(spec) != 1:
            raise ConfigError(field, f"expected one of {sorted(DISTRIBUTIONS)}, got keys {sorted(spec)}")
        (kind,) = kinds
        if kind == "choice":
            expand_values(f"{field}.choice", spec["choice"])
            return
        lo, hi = _bounds(field, spec, kind)
        if kind == "loguniform" and lo <= 0:
            raise ConfigError(f"{field}.loguniform", f"bounds must be positive, got [{lo:g}, {hi:g}]")
    else:
        expand_values(field, spec)


def sample(field: str, spec: Any, rng: np.random.Generator) -> Any:
    """One draw from a random-search spec (a plain list is a uniform choice, a scalar is fixed)."""
    validate_distribution(field, spec)
    if not isinstance(spec, Mapping):
        values = expand_values(field, spec)
        return values[int(rng.integers(len(values)))]
    if "choice" in spec:
        values = list(spec["choice"])
        return values[int(rng.integers(len(values)))]
    kind = next(iter(spec))
    lo, hi = _bounds(field, spec, kind)
    if kind == "uniform":
        return canonical_float(rng.uniform(lo, hi))
    if kind == "loguniform":
        return canonical_float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return int(rng.integers(int(lo), int(hi) + 1))
