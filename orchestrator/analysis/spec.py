"""The `analysis:` section of a sweep config, checked and turned into frozen specs before any run starts.

```yaml
analysis:
  fits:
    - {form: chinchilla, n: n_params, d: tokens, loss: val_loss, bootstrap: 200}
    - {form: power, x: flops, y: val_loss, name: loss_vs_compute}
  isoflop: {n: n_params, flops: flops, loss: val_loss, bootstrap: 200, parametric: {d: tokens}, sensitivity: true}
  frontiers:
    - {objectives: {wall_s: min, val_loss: min}, reference: {wall_s: 3600, val_loss: 5.0}}
    - {objectives: {inference_bitops: min, test_accuracy: max}, by: bits, mean_over: seed}
  power:
    - {eta: 0.5, max_power_w: 700}
    - {name: usd, usd_per_kwh: 0.12, usd_per_gpu_hour: 3.0, pue: 1.2}
  hparams:
    - {hparam: lr, over: [n_params, tokens], loss: val_loss, profile: [batch_size], bootstrap: 200}
```
A frontier with `by` (a column) also gives each group's own front and which groups own the overall front; with
`mean_over` (a column or a list) its points are configuration means over those columns, e.g. the seed
(orchestrator/analysis/grouped.py).
`hparams` (one mapping or a list): the optimal `hparam` per cell of the `over` columns, fitted as a power law in them
(orchestrator/analysis/hparams.py). `profile` names other swept hyperparameters to take the best over; `over`
defaults to [n_params, tokens], `loss` to val_loss, `name` to the hparam.
`isoflop` is Chinchilla's approach 2 (orchestrator/analysis/isoflop.py); `parametric` (true, or {d: column}) adds
approach 3, the chinchilla fit on the same runs, and compares the two compute-optimal exponents; `sensitivity: true`
adds how that exponent moves with the fit's choices (orchestrator/analysis/sensitivity.py).
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

__all__ = ["AnalysisSpec", "FitSpec", "FrontierSpec", "HparamSpec", "IsoFlopSpec", "PowerSpec",
           "validate_analysis_spec"]

_ROOT = "analysis"
# Column roles and their defaults, per fit form.
_FORM_COLUMNS = {
    "chinchilla": {"n": "n_params", "d": "tokens", "loss": "val_loss"},
    "power": {"x": "flops", "y": "val_loss"},
}
_FIT_OPTIONS = {"name", "form", "bootstrap", "seed", "objective", "delta", "irreducible"}
_ISOFLOP_KEYS = {"n", "flops", "loss", "bootstrap", "seed", "parametric", "sensitivity"}
_FRONTIER_KEYS = {"name", "objectives", "reference", "by", "mean_over"}
_POWER_COLUMNS = ("limit", "energy", "time")
_POWER_KEYS = {"name", "by", *_POWER_COLUMNS} | ZEUS_KEYS | USD_KEYS
_HPARAM_KEYS = {"name", "hparam", "over", "loss", "profile", "bootstrap", "seed"}


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
    # Approach 3 beside approach 2: the data-size column of the chinchilla fit on the same runs (None: not asked).
    parametric_d: str | None = None
    # Also the table of the exponent under other fit choices (orchestrator/analysis/sensitivity.py).
    sensitivity: bool = False


@dataclass(frozen=True)
class FrontierSpec:
    """One Pareto frontier to compute at the end of a sweep."""

    # Unique name used in file and metric names (default: the objective columns joined by "-").
    name: str
    # Column -> "min" | "max".
    objectives: Mapping[str, str]
    # Reference point for the hypervolume (None: no hypervolume).
    reference: Mapping[str, float] | None = None
    # Group column (e.g. "bits"): each group's own front too, and which groups own the overall front.
    by: str | None = None
    # Columns averaged over (e.g. ("seed",)): the front of configuration means (orchestrator/analysis/grouped.py).
    mean_over: tuple[str, ...] = ()


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
class HparamSpec:
    """One optimal-hyperparameter fit (h* as a power law in the scale columns) to run at the end of a sweep."""

    # Unique name used in file and metric names (default: the hparam, suffixed _2, _3 for repeats).
    name: str
    # The hyperparameter column whose optimum is fitted, e.g. "lr".
    hparam: str
    # Scale columns the optimum is a power law in, e.g. ("n_params", "tokens").
    over: tuple[str, ...]
    # The loss column to minimise.
    loss: str
    # Other swept hyperparameters to take the best over at each value of hparam.
    profile: tuple[str, ...] = ()
    # Extra keyword arguments for fit_optimal_hparams (bootstrap, seed).
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnalysisSpec:
    """Everything the `analysis:` section asks for."""

    fits: tuple[FitSpec, ...] = ()
    isoflop: IsoFlopSpec | None = None
    frontiers: tuple[FrontierSpec, ...] = ()
    power: tuple[PowerSpec, ...] = ()
    hparams: tuple[HparamSpec, ...] = ()


def validate_analysis_spec(spec: Mapping[str, Any] | AnalysisSpec | None) -> AnalysisSpec:
    """Check the section's shape without data; raise ConfigError naming the first bad field."""
    if isinstance(spec, AnalysisSpec):
        return spec
    if spec is None:
        return AnalysisSpec()
    section = fields.mapping(spec, _ROOT)
    fields.only(section, {"fits", "isoflop", "frontiers", "power", "hparams"}, _ROOT)
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
    hparams = tuple(
        _hparam(item, f"{_ROOT}.hparams[{i}]")
        for i, item in enumerate(fields.sequence(section.get("hparams"), f"{_ROOT}.hparams"))
    )
    return AnalysisSpec(
        _unique_names(fits, f"{_ROOT}.fits"),
        None if iso is None else _isoflop(iso, f"{_ROOT}.isoflop"),
        _unique_names(frontiers, f"{_ROOT}.frontiers"),
        _unique_names(power, f"{_ROOT}.power"),
        hparams=_unique_names(hparams, f"{_ROOT}.hparams"),
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
    parametric, sensitivity = _parametric(item.get("parametric", False), where), item.get("sensitivity", False)
    if not isinstance(sensitivity, bool):
        raise ConfigError(f"{where}.sensitivity", f"must be true or false, got {sensitivity!r}")
    if sensitivity and parametric is None:
        raise ConfigError(f"{where}.sensitivity", "needs parametric: true (approach 3, whose fit choices it varies)")
    return IsoFlopSpec(columns, options, parametric, sensitivity)


def _parametric(value: Any, where: str) -> str | None:
    """The data-size column of approach 3 beside the IsoFLOP fit: `true` (tokens), `{d: column}`, or None."""
    if isinstance(value, Mapping):
        fields.only(value, {"d"}, f"{where}.parametric")
        return fields.column(value.get("d", "tokens"), f"{where}.parametric.d")
    if isinstance(value, bool):
        return "tokens" if value else None
    raise ConfigError(f"{where}.parametric", f"must be true, false or {{d: <data-size column>}}, got {value!r}")


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
    by = None if item.get("by") is None else fields.column(item["by"], f"{where}.by")
    mean_over = item.get("mean_over", ())
    mean_over = (mean_over,) if isinstance(mean_over, str) else mean_over
    if isinstance(mean_over, (Mapping, bytes)) or not isinstance(mean_over, Sequence):
        raise ConfigError(f"{where}.mean_over", f"must be a column name or a list of them, got {mean_over!r}")
    return FrontierSpec(fields.name(item.get("name", ""), f"{where}.name"), dict(objectives), reference, by,
                        tuple(fields.column(c, f"{where}.mean_over") for c in mean_over))


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


def _hparam(item: Any, where: str) -> HparamSpec:
    item = fields.mapping(item, where)
    fields.only(item, _HPARAM_KEYS, where)
    if "hparam" not in item:
        raise ConfigError(f"{where}.hparam", "is required: the swept hyperparameter column, e.g. lr or batch_size")
    hparam = fields.column(item["hparam"], f"{where}.hparam")
    over = _columns(item.get("over", ["n_params", "tokens"]), f"{where}.over", minimum=1)
    profile = _columns(item.get("profile", []), f"{where}.profile", minimum=0)
    loss = fields.column(item.get("loss", "val_loss"), f"{where}.loss")
    named = [hparam, *over, loss, *profile]
    for role, column in (("hparam", hparam), ("loss", loss)):
        if named.count(column) > 1:
            raise ConfigError(f"{where}.{role}", f"{column!r} also has another role (over, profile, loss, hparam)")
    options = {k: item[k] for k in ("bootstrap", "seed") if k in item}
    fields.check_options(options, where)
    return HparamSpec(fields.name(item.get("name", ""), f"{where}.name"), hparam, over, loss, profile, options)


def _columns(value: Any, where: str, minimum: int) -> tuple[str, ...]:
    """A list of distinct column names, at least `minimum` of them."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) < minimum:
        raise ConfigError(where, f"must be a list of at least {minimum} column names, e.g. [n_params, tokens], "
                                 f"got {value!r}")
    columns = tuple(fields.column(c, f"{where}[{i}]") for i, c in enumerate(value))
    if len(set(columns)) < len(columns):
        raise ConfigError(where, f"names a column twice: {list(columns)}")
    return columns


def _default_name(item: FitSpec | FrontierSpec | PowerSpec | HparamSpec) -> str:
    if isinstance(item, HparamSpec):
        return item.hparam
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
