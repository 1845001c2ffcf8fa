"""Cost and carbon of a run, from what is stored with it (a pure function, so `recost` reproduces live numbers).

    gpu_seconds     = wall_s x gpus_held                 gpu_hours = gpu_seconds / 3600
    cost_gpu_usd    = gpu_hours x usd_per_gpu_hour(gpu_name)
    facility kWh    = energy_j x pue / 3.6e6
    cost_energy_usd = facility kWh x usd_per_kwh        co2_g = facility kWh x grid_co2_g_per_kwh
    cost_usd        = cost_gpu_usd (mode gpu_hours) | cost_energy_usd (energy) | their sum (both)

Energy-derived values are absent when `energy_j` is (energy unavailable), and so is `cost_usd` in the energy and
both modes: a cost missing a component is not reported as if complete. `cost_gpu_usd` is still there to sum.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from orchestrator.errors import ConfigError

MODES = ("gpu_hours", "energy", "both")
J_PER_KWH = 3.6e6
# The components cost_usd adds up, by mode.
_COST_PARTS = {
    "gpu_hours": ("cost_gpu_usd",),
    "energy": ("cost_energy_usd",),
    "both": ("cost_gpu_usd", "cost_energy_usd"),
}
_SCALARS = ("default_usd_per_gpu_hour", "usd_per_kwh", "pue", "grid_co2_g_per_kwh")
_PARAM_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class CostModel:
    """Prices and grid factors (conf/cost/*.yaml)."""

    # $ per GPU-hour by GPU model. A key matches NVML's model name case-insensitively as whole words
    # ("H100" matches "NVIDIA H100 80GB HBM3", "L4" does not match "NVIDIA L40S"); the longest matching key wins.
    usd_per_gpu_hour: Mapping[str, float]
    # $ per GPU-hour for a model no key matches, or a run whose model is unknown.
    default_usd_per_gpu_hour: float
    # $ per kWh at the facility meter (IT energy x PUE).
    usd_per_kwh: float
    # Power usage effectiveness: facility energy over IT energy, >= 1.
    pue: float
    # Grid carbon intensity in gCO2 per kWh.
    grid_co2_g_per_kwh: float
    # What cost_usd is: "gpu_hours", "energy" or "both" (the sum); both components are logged in every mode.
    mode: str = "gpu_hours"
    # Shown in params; the YAML file's stem when loaded from one.
    name: str = "custom"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError("cost.mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        numbers = {f"usd_per_gpu_hour.{k}": v for k, v in self.usd_per_gpu_hour.items()}
        numbers.update({name: getattr(self, name) for name in _SCALARS})
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ConfigError(f"cost.{key}", f"must be a finite number >= 0, got {value!r}")
        if self.pue < 1:
            raise ConfigError("cost.pue", f"must be >= 1 (facility energy over IT energy), got {self.pue}")
        prices = {str(k): float(v) for k, v in self.usd_per_gpu_hour.items()}
        object.__setattr__(self, "usd_per_gpu_hour", MappingProxyType(prices))
        for name in _SCALARS:
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> CostModel:
        """From a plain mapping (a YAML file, or a Hydra `cost` node turned into a container)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"cost.{unknown[0]}", f"unknown key; expected some of {', '.join(sorted(known))}")
        values = dict(data)
        if name is not None:
            values.setdefault("name", name)
        try:
            return cls(**values)
        except TypeError as err:
            raise ConfigError("cost", str(err)) from err

    def gpu_hour_usd(self, gpu_name: str | None) -> float:
        """Price of one GPU-hour of `gpu_name`; a comma-separated list of names (mixed runs) gets their mean."""
        names = [n for n in (gpu_name or "").split(",") if n.strip()]
        if not names:
            return self.default_usd_per_gpu_hour
        return sum(self._one_gpu_hour_usd(n) for n in names) / len(names)

    def _one_gpu_hour_usd(self, gpu_name: str) -> float:
        matches = [key for key in self.usd_per_gpu_hour if _word_match(key, gpu_name)]
        return self.usd_per_gpu_hour[max(matches, key=len)] if matches else self.default_usd_per_gpu_hour

    def as_params(self) -> dict[str, str]:
        """Flat string params for a sweep's parent run, e.g. {"cost.usd_per_gpu_hour.H100": "3.0"}."""
        params = {f"cost.{f.name}": str(getattr(self, f.name)) for f in fields(self) if f.name != "usd_per_gpu_hour"}
        for model, price in self.usd_per_gpu_hour.items():
            params[f"cost.usd_per_gpu_hour.{_PARAM_UNSAFE.sub('_', model)}"] = str(price)
        return params


def _word_match(key: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(key.strip())}(?![A-Za-z0-9])", name, re.IGNORECASE) is not None


def cost_model_dirs() -> list[Path]:
    """Where a cost model is looked up by name, first match wins: the project's conf/cost/, then the shipped one."""
    from orchestrator.project import project_conf_dir, shipped_conf_dir

    own = project_conf_dir()
    return [p / "cost" for p in ([own] if own else []) + [shipped_conf_dir()] if (p / "cost").is_dir()]


def cost_model_path(name: str, conf_dirs: list[Path] | None = None) -> Path | None:
    """The file of the cost model called `name`, or None."""
    found = [d / f"{name}.yaml" for d in (cost_model_dirs() if conf_dirs is None else conf_dirs)]
    return next((p for p in found if p.is_file()), None)


def load_cost_model(name_or_path: str | Path = "default", conf_dir: str | Path | None = None) -> CostModel:
    """A cost model by name (from `conf_dir`, else the project's conf/cost/ or the shipped one), or from a YAML path."""
    import yaml  # only here: PyYAML comes with Hydra, but importing orchestrator must stay cheap

    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        dirs = [Path(conf_dir)] if conf_dir is not None else None
        path = cost_model_path(str(name_or_path), dirs) or (dirs or cost_model_dirs())[0] / f"{name_or_path}.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError("cost", f"cannot read cost model {path}: {err}") from err
    if not isinstance(data, Mapping):
        raise ConfigError("cost", f"{path} must hold a mapping")
    return CostModel.from_dict(data, name=path.stem)


def cost_model_from_settings(settings: Mapping[str, Any]) -> CostModel:
    """The cost model a `cost` config section (CostConf) describes: the named `model` (or a .yaml path), with each
    factor set in the section replacing the model's and `usd_per_gpu_hour` merged over the model's table."""
    settings = dict(settings)
    base = load_cost_model(str(settings.pop("model", None) or "default"))
    values = {f.name: getattr(base, f.name) for f in fields(base)}
    values["usd_per_gpu_hour"] = {**base.usd_per_gpu_hour, **(settings.pop("usd_per_gpu_hour", None) or {})}
    unknown = sorted(set(settings) - set(values))
    if unknown:
        raise ConfigError(f"cost.{unknown[0]}", f"unknown key; expected some of model, {', '.join(sorted(values))}")
    values.update({key: value for key, value in settings.items() if value is not None})
    return CostModel.from_dict(values)


def compute_cost(
    model: CostModel, *, wall_s: float | None, gpus_held: float | None, gpu_name: str | None, energy_j: float | None
) -> dict[str, float]:
    """gpu_seconds, gpu_hours, cost_gpu_usd, cost_energy_usd, co2_g, cost_usd: each only where its inputs exist."""
    out: dict[str, float] = {}
    if wall_s is not None and gpus_held is not None:
        out["gpu_seconds"] = wall_s * gpus_held
        out["gpu_hours"] = out["gpu_seconds"] / 3600.0
        out["cost_gpu_usd"] = out["gpu_hours"] * model.gpu_hour_usd(gpu_name)
    if energy_j is not None:
        facility_kwh = energy_j * model.pue / J_PER_KWH
        out["cost_energy_usd"] = facility_kwh * model.usd_per_kwh
        out["co2_g"] = facility_kwh * model.grid_co2_g_per_kwh
    parts = _COST_PARTS[model.mode]
    if all(part in out for part in parts):
        out["cost_usd"] = sum(out[part] for part in parts)
    return out


def cost_metrics(model: CostModel, metrics: Mapping[str, float], tags: Mapping[str, str]) -> dict[str, float]:
    """`compute_cost` from a run's stored metrics (wall_s, gpus_held, energy_j) and tags (gpu_name)."""
    return compute_cost(
        model,
        wall_s=metrics.get("wall_s"),
        gpus_held=metrics.get("gpus_held"),
        gpu_name=tags.get("gpu_name"),
        energy_j=metrics.get("energy_j"),
    )
