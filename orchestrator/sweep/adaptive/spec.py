"""The `kind: adaptive` sweep section, checked once into a frozen `AdaptiveSpec`.

    goal: frontier | law
    objectives: {gpu_hours: min, val_loss: min}            # goal frontier: 1 to 3 logged final metrics
    law: {form: chinchilla, n: n_params, d: tokens, loss: val_loss, target_flops: 1.0e22}   # goal law
    budget: {runs: 60}                                     # and/or gpu_hours, usd, energy_kwh; first reached stops
    in_flight: 8                                           # default: the executor slots the engine passes
    initial: 8                                             # space-filling proposals before the model is used
    seed: 0
    early_stop: {metric: val_loss, mode: min, min_fraction: 0.25}
    params: {job: {n_params: {loguniform: [1e6, 1e9]}, ...}}

Every error is a ConfigError naming the field and what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from orchestrator.errors import ConfigError
from orchestrator.sweep.early_stop import EarlyStopSpec, parse_early_stop
from orchestrator.sweep.kinds import flatten_params
from orchestrator.sweep.planner import BUDGET_METRICS
from orchestrator.sweep.values import as_number, expand_values, validate_distribution

GOALS = ("frontier", "law")
SENSES = ("min", "max")
LAW_FORMS = ("chinchilla",)
LAW_KEYS = {"form", "n", "d", "loss", "target_flops"}
# Keys this kind reads from the sweep section (the engine adds its common ones: name, kind, seeds, ...).
ADAPTIVE_KEYS = {"goal", "objectives", "law", "budget", "in_flight", "initial", "seed", "early_stop", "params"}
# Exact hypervolume (and so the frontier goal) is implemented for up to this many objectives.
MAX_OBJECTIVES = 3


@dataclass(frozen=True)
class LawSpec:
    """The scaling law a `goal: law` sweep pins down, and the swept config paths of its inputs."""

    # Law form; only "chinchilla" (L = E + A/N^alpha + B/D^beta) has a compute-optimal split.
    form: str
    # Config path swept as model size N (e.g. "job.n_params").
    n_path: str
    # Config path swept as data size D in tokens (e.g. "job.tokens").
    d_path: str
    # Final metric the law is fitted to (e.g. "val_loss").
    loss: str
    # Compute in FLOPs at which the predicted loss matters; None: only the exponent is targeted.
    target_flops: float | None


@dataclass(frozen=True)
class AdaptiveSpec:
    """A checked `kind: adaptive` sweep section."""

    # "frontier" or "law".
    goal: str
    # Metric -> "min" | "max", in the order given (goal frontier; empty for goal law).
    objectives: Mapping[str, str]
    # The law to fit (goal law); for goal frontier it only sets the cost prior (cost grows as N * D).
    law: LawSpec | None
    # Budget unit (runs, gpu_hours, usd, energy_kwh) -> limit, in the order given; the first reached stops.
    budget: Mapping[str, float]
    # Most proposals running at once.
    in_flight: int
    # Space-filling proposals made before the model is used.
    initial: int
    # Seed of every random choice the planner makes.
    seed: int
    # Early stopping of runs that can no longer reach the front; None when off.
    early_stop: EarlyStopSpec | None
    # Config path -> value spec (uniform, loguniform, randint, choice, a list, or a fixed scalar).
    params: Mapping[str, Any]


def parse_adaptive(sweep: Mapping[str, Any], default_in_flight: int | None = None) -> AdaptiveSpec:
    """Check a `kind: adaptive` sweep section; `default_in_flight` (executor slots) applies when in_flight is unset."""
    params = _params(sweep)
    goal = sweep.get("goal")
    if goal not in GOALS:
        raise ConfigError("sweep.goal", f"unknown goal {goal!r}; allowed: {', '.join(GOALS)}")
    objectives = _objectives(sweep.get("objectives"), required=goal == "frontier")
    law = _law(sweep.get("law"), params, required=goal == "law")
    in_flight = _whole("sweep.in_flight", sweep.get("in_flight", default_in_flight or 1))
    swept = sum(1 for spec in params.values() if _is_swept(spec))
    initial = _whole("sweep.initial", sweep.get("initial", max(2 * swept, 6)))
    seed = sweep.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError("sweep.seed", f"expected a whole number, got {seed!r}")
    early = parse_early_stop(sweep.get("early_stop"))
    return AdaptiveSpec(goal, objectives, law, _budget(sweep.get("budget")), in_flight, initial, seed, early, params)


def _params(sweep: Mapping[str, Any]) -> dict[str, Any]:
    raw = sweep.get("params")
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("sweep.params", "expected a non-empty mapping of config path -> value spec")
    params = flatten_params(raw)
    for path, spec in params.items():
        validate_distribution(f"sweep.params.{path}", spec)
    if not any(_is_swept(spec) for spec in params.values()):
        raise ConfigError("sweep.params", "an adaptive sweep must vary at least one parameter "
                          "(uniform, loguniform, randint, choice, or a list of several values)")
    return params


def _is_swept(spec: Any) -> bool:
    """Whether a checked value spec varies (a range wider than a point, or more than one value)."""
    kind, values = _kind_values(spec)
    return len(values) > 1 if kind == "choice" else values[0] < values[1]


def _kind_values(spec: Any) -> tuple[str, list[Any]]:
    """A checked value spec as (kind, values): the bounds of a range as floats, the values of a choice as given."""
    if isinstance(spec, Mapping):
        kind, values = next(iter(spec.items()))
        if kind != "choice":
            return kind, [as_number("", v) for v in values]
        return kind, expand_values("", values)
    return "choice", expand_values("", spec)


def _objectives(raw: Any, required: bool) -> dict[str, str]:
    field = "sweep.objectives"
    if raw is None and not required:
        return {}
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(field, "goal frontier needs objectives: a mapping of final metric -> min | max, "
                          "e.g. {gpu_hours: min, val_loss: min}")
    if len(raw) > MAX_OBJECTIVES:
        raise ConfigError(field, f"at most {MAX_OBJECTIVES} objectives (exact hypervolume), got {len(raw)}")
    for metric, sense in raw.items():
        if sense not in SENSES:
            raise ConfigError(f"{field}.{metric}", f"expected min or max, got {sense!r}")
    return {str(m): str(s) for m, s in raw.items()}


def _law(raw: Any, params: Mapping[str, Any], required: bool) -> LawSpec | None:
    if raw is None and not required:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError("sweep.law", "goal law needs law: {form: chinchilla, n: <model-size param>, "
                          "d: <token param>, loss: <metric>, target_flops: <FLOPs>}")
    unknown = set(raw) - LAW_KEYS
    if unknown:
        raise ConfigError(f"sweep.law.{sorted(unknown)[0]}", f"unknown key; allowed: {', '.join(sorted(LAW_KEYS))}")
    form = raw.get("form", "chinchilla")
    if form not in LAW_FORMS:
        raise ConfigError("sweep.law.form", f"unknown form {form!r}; allowed: {', '.join(LAW_FORMS)}")
    loss = raw.get("loss", "val_loss")
    if not isinstance(loss, str) or not loss:
        raise ConfigError("sweep.law.loss", f"expected the name of a logged metric, got {loss!r}")
    target = raw.get("target_flops")
    if target is not None:
        target = as_number("sweep.law.target_flops", target)
        if target <= 0:
            raise ConfigError("sweep.law.target_flops", f"expected a positive number of FLOPs, got {target:g}")
    n_path, d_path = (_law_column(role, raw.get(role), params) for role in ("n", "d"))
    if n_path == d_path:
        raise ConfigError("sweep.law.d", f"n and d name the same parameter {n_path!r}")
    return LawSpec(form, n_path, d_path, loss, target)


def _law_column(role: str, column: Any, params: Mapping[str, Any]) -> str:
    """The swept config path a law column names, by full path or by its last component (n_params <-> job.n_params)."""
    field = f"sweep.law.{role}"
    swept = [p for p, spec in params.items() if _is_swept(spec)]
    if not isinstance(column, str) or not column:
        raise ConfigError(field, f"expected the name of a swept parameter ({', '.join(swept)}), got {column!r}")
    matches = [p for p in params if p == column] or [p for p in params if p.rsplit(".", 1)[-1] == column]
    if len(matches) != 1:
        what = "matches several parameters: " + ", ".join(matches) if matches else "is not a swept parameter"
        raise ConfigError(field, f"{column!r} {what}; swept parameters: {', '.join(swept)}")
    spec = params[matches[0]]
    if not _is_swept(spec) or not _positive_numbers(spec):
        raise ConfigError(field, f"{matches[0]} must be swept over positive numbers "
                          f"(loguniform, uniform, randint or a choice of sizes), got {spec!r}")
    return matches[0]


def _positive_numbers(spec: Any) -> bool:
    _, values = _kind_values(spec)
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in values)


def _budget(raw: Any) -> dict[str, float]:
    units = ", ".join(BUDGET_METRICS)
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("sweep.budget", f"an adaptive sweep needs a budget: one or several of {units}, "
                          "e.g. {runs: 60} or {gpu_hours: 20}")
    limits = {}
    for unit, value in raw.items():
        field = f"sweep.budget.{unit}"
        if unit not in BUDGET_METRICS:
            raise ConfigError(field, f"unknown budget unit; allowed: {units}")
        limit = as_number(field, value)
        if limit <= 0:
            raise ConfigError(field, f"expected a positive limit, got {limit:g}")
        if unit == "runs" and limit != int(limit):
            raise ConfigError(field, f"expected a whole number of runs, got {limit:g}")
        limits[str(unit)] = limit
    return limits


def _whole(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, f"expected a whole number >= 1, got {value!r}")
    return value
