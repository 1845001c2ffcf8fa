"""The `analysis:` section of a sweep config, checked and turned into frozen specs before any run starts.

```yaml
analysis:
  fits:
    - {form: chinchilla, n: n_params, d: tokens, loss: val_loss, bootstrap: 200}
    - {form: power, x: flops, y: val_loss, name: loss_vs_compute}
  isoflop: {n: n_params, flops: flops, loss: val_loss}
  frontiers:
    - {objectives: {wall_s: min, val_loss: min}, reference: {wall_s: 3600, val_loss: 5.0}}
  power:
    - {eta: 0.5, max_power_w: 700}
    - {name: usd, usd_per_kwh: 0.12, usd_per_gpu_hour: 3.0, pue: 1.2}
```
`power` (one mapping or a list) is for sweeps over `resources.power_limit_w` or `resources.power_limit_frac`: per
configuration (runs that differ only in power limit) the energy-time front, and the limit of least cost
(orchestrator/analysis/power.py). The cost is Zeus's, `eta` * energy + (1 - `eta`) * max power * time, with `eta`
(Zeus's eta_knob, default 0.5; 1: energy only, 0: time only) and `max_power_w` (the board's max power, W per GPU;
default: each run's `power_limit_default_w` column); or dollars, `usd_per_kwh` * `pue` * kWh + `usd_per_gpu_hour` *
GPU-hours, when `usd_per_kwh` and `usd_per_gpu_hour` are given (`pue` defaults to 1). Optional columns: `limit`
(default: the limit each run ran under, metric power_limit_w, else the power-limit param the sweep varies), `energy` (energy_j), `time` (wall_s), `by` (the columns that
make a configuration; default: the `sweep.*` and text columns that vary, the limit aside). `name` defaults to "zeus"
or "usd".

Only the standard library is imported here, so the check is cheap to run before a sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.analysis import _spec_fields as fields
from orchestrator.analysis._power_cost import USD_KEYS, ZEUS_KEYS, PowerCost, ZeusCost, parse_cost
from orchestrator.errors import ConfigError

__all__ = ["AnalysisSpec", "FitSpec", "FrontierSpec", "IsoFlopSpec", "PowerSpec", "validate_analysis_spec"]

_ROOT = "analysis"
# Column roles and their defaults, per fit form.
_FORM_COLUMNS = {
    "chinchilla": {"n": "n_params", "d": "tokens", "loss": "val_loss"},
    "power": {"x": "flops", "y": "val_loss"},
}
_FIT_OPTIONS = {"name", "form", "bootstrap", "seed", "objective", "delta", "irreducible"}
_ISOFLOP_KEYS = {"n", "flops", "loss", "bootstrap", "seed"}
_FRONTIER_KEYS = {"name", "objectives", "reference"}
_POWER_COLUMNS = ("limit", "energy", "time")
_POWER_KEYS = {"name", "by", *_POWER_COLUMNS} | ZEUS_KEYS | USD_KEYS


@dataclass(frozen=True)
class FitSpec:
    """One scaling-law fit to run at the end of a sweep."""

    # Unique name used in file and metric names (default: the form, suffixed _2, _3 for repeats).
    name: str
    # "chinchilla" or "power".
    form: str
    # Role -> column, e.g. {"n": "n_params", "d": "tokens", "loss": "val_loss"}.
    columns: Mapping[str, str]
    # Extra keyword arguments for fit_scaling_law (bootstrap, seed, objective, delta, irreducible).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class IsoFlopSpec:
    """The IsoFLOP analysis to run at the end of a sweep."""

    # Role -> column: {"n", "flops", "loss"}.
    columns: Mapping[str, str]
    # Extra keyword arguments for fit_isoflop (bootstrap, seed).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FrontierSpec:
    """One Pareto frontier to compute at the end of a sweep."""

    # Unique name used in file and metric names (default: the objective columns joined by "-").
    name: str
    # Column -> "min" | "max".
    objectives: Mapping[str, str]
    # Reference point for the hypervolume (None: no hypervolume).
    reference: Mapping[str, float] | None = None


@dataclass(frozen=True)
class PowerSpec:
    """One power-limit analysis (energy-time front per configuration, limit of least cost) to run at the end."""

    # Unique name used in file and metric names (default: "zeus" or "usd", suffixed _2, _3 for repeats).
    name: str
    # ZeusCost or UsdCost.
    cost: PowerCost
    # Keyword arguments for power_frontier: limit, energy, time, by (those given).
    columns: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisSpec:
    """Everything the `analysis:` section asks for."""

    fits: tuple[FitSpec, ...] = ()
    isoflop: IsoFlopSpec | None = None
    frontiers: tuple[FrontierSpec, ...] = ()
    power: tuple[PowerSpec, ...] = ()


def validate_analysis_spec(spec: Mapping[str, Any] | AnalysisSpec | None) -> AnalysisSpec:
    """Check the section's shape without data; raise ConfigError naming the first bad field."""
    if isinstance(spec, AnalysisSpec):
        return spec
    if spec is None:
        return AnalysisSpec()
    section = fields.mapping(spec, _ROOT)
    fields.only(section, {"fits", "isoflop", "frontiers", "power"}, _ROOT)
    fits = tuple(
        _fit(item, f"{_ROOT}.fits[{i}]") for i, item in enumerate(fields.sequence(section.get("fits"), f"{_ROOT}.fits"))
    )
    iso = section.get("isoflop")
    frontiers = tuple(
        _frontier(item, f"{_ROOT}.frontiers[{i}]")
        for i, item in enumerate(fields.sequence(section.get("frontiers"), f"{_ROOT}.frontiers"))
    )
    power = tuple(
        _power(item, f"{_ROOT}.power[{i}]")
        for i, item in enumerate(fields.sequence(section.get("power"), f"{_ROOT}.power"))
    )
    return AnalysisSpec(
        _unique_names(fits, f"{_ROOT}.fits"),
        None if iso is None else _isoflop(iso, f"{_ROOT}.isoflop"),
        _unique_names(frontiers, f"{_ROOT}.frontiers"),
        _unique_names(power, f"{_ROOT}.power"),
    )


def _fit(item: Any, where: str) -> FitSpec:
    item = fields.mapping(item, where)
    form = item.get("form", "chinchilla")
    if form not in _FORM_COLUMNS:
        raise ConfigError(f"{where}.form", f"must be one of {sorted(_FORM_COLUMNS)}, got {form!r}")
    fields.only(item, _FIT_OPTIONS | set(_FORM_COLUMNS[form]), where)
    defaults = _FORM_COLUMNS[form]
    columns = {role: fields.column(item.get(role, default), f"{where}.{role}") for role, default in defaults.items()}
    options = {k: item[k] for k in ("bootstrap", "seed", "objective", "delta", "irreducible") if k in item}
    fields.check_options(options, where)
    name = fields.name(item.get("name", ""), f"{where}.name")
    return FitSpec(name, form, columns, options)


def _isoflop(item: Any, where: str) -> IsoFlopSpec:
    item = fields.mapping(item, where)
    fields.only(item, _ISOFLOP_KEYS, where)
    defaults = {"n": "n_params", "flops": "flops", "loss": "val_loss"}
    columns = {role: fields.column(item.get(role, default), f"{where}.{role}") for role, default in defaults.items()}
    options = {k: item[k] for k in ("bootstrap", "seed") if k in item}
    fields.check_options(options, where)
    return IsoFlopSpec(columns, options)


def _frontier(item: Any, where: str) -> FrontierSpec:
    item = fields.mapping(item, where)
    fields.only(item, _FRONTIER_KEYS, where)
    if "objectives" not in item:
        raise ConfigError(f"{where}.objectives", "is required, e.g. {wall_s: min, val_loss: min}")
    objectives = fields.mapping(item["objectives"], f"{where}.objectives")
    if not objectives:
        raise ConfigError(f"{where}.objectives", "must name at least one column")
    for column, sense in objectives.items():
        fields.column(column, f"{where}.objectives")
        if sense not in ("min", "max"):
            raise ConfigError(f"{where}.objectives.{column}", f"must be 'min' or 'max', got {sense!r}")
    reference = fields.reference(item.get("reference"), objectives, f"{where}.reference")
    return FrontierSpec(fields.name(item.get("name", ""), f"{where}.name"), dict(objectives), reference)


def _power(item: Any, where: str) -> PowerSpec:
    item = fields.mapping(item, where)
    fields.only(item, _POWER_KEYS, where)
    cost = parse_cost({k: v for k, v in item.items() if k in ZEUS_KEYS | USD_KEYS}, where)
    columns: dict[str, Any] = {k: fields.column(item[k], f"{where}.{k}") for k in _POWER_COLUMNS if k in item}
    if "by" in item:
        by = item["by"]
        if isinstance(by, (str, bytes)) or not isinstance(by, Sequence):
            raise ConfigError(f"{where}.by", f"must be a list of column names, got {type(by).__name__}")
        columns["by"] = tuple(fields.column(c, f"{where}.by[{i}]") for i, c in enumerate(by))
    return PowerSpec(fields.name(item.get("name", ""), f"{where}.name"), cost, columns)


def _default_name(item: FitSpec | FrontierSpec | PowerSpec) -> str:
    if isinstance(item, FitSpec):
        return item.form
    if isinstance(item, PowerSpec):
        return "zeus" if isinstance(item.cost, ZeusCost) else "usd"
    return "-".join(item.objectives)


def _unique_names(items: tuple, where: str) -> tuple:
    """Give unnamed items a default name (repeats suffixed _2, _3, ...); named duplicates are an error."""
    out, seen = [], set()
    for i, item in enumerate(items):
        base = item.name or _default_name(item)
        name, k = base, 2
        while not item.name and name in seen:
            name, k = f"{base}_{k}", k + 1
        if name in seen:
            raise ConfigError(f"{where}[{i}].name", f"{name!r} is used twice; names must be unique")
        seen.add(name)
        out.append(type(item)(**{**item.__dict__, "name": name}))
    return tuple(out)
