"""Sweep kinds: each turns a sweep section into points, a point being {config path: value}.

  grid     cartesian product of every parameter's values
  zip      parallel lists varied together
  isoflop  compute budgets x model sizes, tokens = C / (6 N) per cell; cells outside bounds are dropped and reported
  random   n seeded samples from uniform / loguniform / randint / choice
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from orchestrator.errors import ConfigError
from orchestrator.sweep.values import DISTRIBUTIONS, RANGE_KEYS, as_number, expand_values, sample, validate_distribution

Point = dict[str, Any]
# Keys that make a mapping a value spec rather than a level of config paths.
SPEC_KEYS = RANGE_KEYS | DISTRIBUTIONS
# Annotation carried by isoflop points: the cell's compute budget, logged with the run but not a config path.
BUDGET = "sweep.flops_budget"


@dataclass(frozen=True)
class Dropped:
    """A cell an isoflop sweep left out, and why."""

    point: Mapping[str, Any]
    reason: str


@dataclass(frozen=True)
class Points:
    """What a kind produced: the points to run and the cells it dropped."""

    points: list[Point]
    dropped: list[Dropped]


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{job: {lr: [..]}} and {"job.lr": [..]} both become {"job.lr": [..]}; a spec mapping (range, log, ...) is a leaf."""
    flat: dict[str, Any] = {}
    for key, spec in params.items():
        path = f"{prefix}{key}"
        if isinstance(spec, Mapping) and not (SPEC_KEYS & set(spec)):
            flat.update(flatten_params(spec, f"{path}."))
        else:
            flat[path] = spec
    return flat


def _params(sweep: Mapping[str, Any], required: bool = True) -> Mapping[str, Any]:
    params = sweep.get("params")
    if params is None and not required:
        return {}
    if not isinstance(params, Mapping) or not params:
        raise ConfigError("sweep.params", "expected a non-empty mapping of config path -> values")
    return flatten_params(params)


def _grid(params: Mapping[str, Any]) -> list[Point]:
    axes = {path: expand_values(f"sweep.params.{path}", spec) for path, spec in params.items()}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def _zipped(params: Mapping[str, Any], field: str) -> list[Point]:
    columns = {path: expand_values(f"{field}.{path}", spec) for path, spec in params.items()}
    lengths = {len(v) for v in columns.values() if len(v) > 1}
    if len(lengths) > 1:
        sizes = ", ".join(f"{p}={len(v)}" for p, v in columns.items())
        raise ConfigError(field, f"zipped lists must have equal lengths (or one value); got {sizes}")
    n = lengths.pop() if lengths else 1
    return [{p: (v[i] if len(v) > 1 else v[0]) for p, v in columns.items()} for i in range(n)]


def grid(sweep: Mapping[str, Any], base: Any) -> Points:
    return Points(_grid(_params(sweep)), [])


def zip_(sweep: Mapping[str, Any], base: Any) -> Points:
    return Points(_zipped(_params(sweep), "sweep.params"), [])


def random(sweep: Mapping[str, Any], base: Any) -> Points:
    params = _params(sweep)
    n = sweep.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError("sweep.n", f"random sweeps need n, a whole number >= 1; got {n!r}")
    for path, spec in params.items():
        validate_distribution(f"sweep.params.{path}", spec)
    rng = np.random.default_rng(int(sweep.get("seed", 0)))
    order = sorted(params)
    return Points([{p: sample(f"sweep.params.{p}", params[p], rng) for p in order} for _ in range(n)], [])


def _bound(sweep: Mapping[str, Any], name: str) -> tuple[float, float]:
    """[min, max] for one isoflop bound (n_params, tokens or tokens_per_param); null ends are open."""
    field = f"sweep.bounds.{name}"
    pair = (sweep.get("bounds") or {}).get(name)
    if pair is None:
        return 0.0, float("inf")
    if isinstance(pair, (str, Mapping)) or len(pair) != 2:
        raise ConfigError(field, f"expected [min, max], got {pair!r}")
    lo = 0.0 if pair[0] is None else as_number(field, pair[0])
    hi = float("inf") if pair[1] is None else as_number(field, pair[1])
    if lo > hi:
        raise ConfigError(field, f"min {lo:g} is greater than max {hi:g}")
    return lo, hi


def _why_out(n_params: float, tokens: float, sweep: Mapping[str, Any]) -> str | None:
    for name, value in (("n_params", n_params), ("tokens", tokens), ("tokens_per_param", tokens / n_params)):
        lo, hi = _bound(sweep, name)
        if not lo <= value <= hi:
            return f"{name}={value:.4g} outside bounds [{lo:g}, {hi:g}]"
    return None


def isoflop(sweep: Mapping[str, Any], base: Any, n_params_of: Callable[[Point], float]) -> Points:
    if sweep.get("budgets") is None:
        raise ConfigError("sweep.budgets", "isoflop sweeps need compute budgets in FLOPs, e.g. {log: [1e15, 1e17], num: 5}")
    budgets = [as_number("sweep.budgets", b) for b in expand_values("sweep.budgets", sweep["budgets"])]
    if any(b <= 0 for b in budgets):
        raise ConfigError("sweep.budgets", f"compute budgets must be positive, got {budgets}")
    models = sweep.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigError("sweep.models", "isoflop sweeps need models: a mapping of config path -> model sizes (zipped)")
    models = flatten_params(models)
    tokens_path = sweep.get("tokens_path", "job.tokens")
    extra = _grid(_params(sweep, required=False)) if sweep.get("params") else [{}]
    points, dropped = [], []
    for budget, model, more in itertools.product(budgets, _zipped(models, "sweep.models"), extra):
        n_params = n_params_of({**model, **more})
        tokens = budget / (6.0 * n_params)
        point = {**model, **more, tokens_path: tokens, BUDGET: budget}
        reason = _why_out(n_params, tokens, sweep)
        (dropped.append(Dropped(point, reason)) if reason else points.append(point))
    return Points(points, dropped)

