"""The cost models `power_frontier` picks a power limit by, and their parsing from a mapping.

Only the standard library is imported, so the `analysis:` check stays cheap. `of` works on floats and numpy arrays
alike: it takes the run's values by column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Union

from orchestrator.errors import ConfigError

J_PER_KWH = 3.6e6
# The board's default power limit in W, as the execution layer tags it on each run.
DEFAULT_LIMIT_COLUMN = "power_limit_default_w"
# GPUs the run held (energy_j sums them): Zeus's max power is per board, times the GPU count.
GPUS_COLUMN = "gpus_held"
ZEUS_KEYS = {"eta", "max_power_w"}
USD_KEYS = {"usd_per_kwh", "usd_per_gpu_hour", "pue"}


@dataclass(frozen=True)
class ZeusCost:
    """Zeus's energy-time cost in J: eta * energy_j + (1 - eta) * P_max * wall_s.

    P_max is `max_power_w`, else the run's `power_limit_default_w` column (the board's default limit), times the
    run's `gpus_held` where the DataFrame has that column, as Zeus multiplies by the GPU count.
    """

    # Zeus's eta_knob in [0, 1]: 1 weighs energy only (the most frugal limit wins), 0 time only (the fastest).
    eta: float = 0.5
    # The board's maximum power in W (None: each run's power_limit_default_w column).
    max_power_w: float | None = None
    # Column of each run's cost in the results (J: Zeus's cost is energy plus power times time).
    column: ClassVar[str] = "zeus_cost_j"

    def columns(self, present: Any) -> list[str]:
        """Columns beyond energy and time that the cost reads, given the columns `present`."""
        needed = [] if self.max_power_w is not None else [DEFAULT_LIMIT_COLUMN]
        return needed + ([GPUS_COLUMN] if GPUS_COLUMN in present else [])

    def of(self, values: Mapping[str, Any], energy: str, time: str) -> Any:
        p_max = self.max_power_w if self.max_power_w is not None else values[DEFAULT_LIMIT_COLUMN]
        p_max = p_max * values[GPUS_COLUMN] if GPUS_COLUMN in values else p_max
        return self.eta * values[energy] + (1.0 - self.eta) * p_max * values[time]


@dataclass(frozen=True)
class UsdCost:
    """Dollars: usd_per_kwh * pue * energy_j / 3.6e6 + usd_per_gpu_hour * gpu_hours (energy/cost.py, both parts)."""

    # $ per kWh at the facility meter.
    usd_per_kwh: float
    # $ per GPU-hour.
    usd_per_gpu_hour: float
    # Power usage effectiveness: facility energy over IT energy, >= 1.
    pue: float = 1.0
    # Column of each run's cost in the results.
    column: ClassVar[str] = "total_cost_usd"

    def columns(self, present: Any) -> list[str]:
        return ["gpu_hours"]

    def of(self, values: Mapping[str, Any], energy: str, time: str) -> Any:
        return self.usd_per_kwh * self.pue * values[energy] / J_PER_KWH + self.usd_per_gpu_hour * values["gpu_hours"]


PowerCost = Union[ZeusCost, UsdCost]


def parse_cost(cost: PowerCost | Mapping[str, Any], where: str = "cost") -> PowerCost:
    """A cost model from {eta, max_power_w} (Zeus) or {usd_per_kwh, usd_per_gpu_hour, pue} ($), or one passed in,
    checked; ConfigError names the bad field."""
    if isinstance(cost, (ZeusCost, UsdCost)):
        cost = vars(cost)
    if not isinstance(cost, Mapping):
        raise ConfigError(where, f"must be a mapping or a ZeusCost/UsdCost, got {type(cost).__name__}")
    unknown = sorted(str(k) for k in cost if k not in ZEUS_KEYS | USD_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key; Zeus's cost takes {sorted(ZEUS_KEYS)}, "
                                                   f"the $ model {sorted(USD_KEYS)}")
    if set(cost) & ZEUS_KEYS and set(cost) & USD_KEYS:
        raise ConfigError(where, f"give Zeus's {sorted(ZEUS_KEYS)} or the $ model's {sorted(USD_KEYS)}, not both")
    if not set(cost) & USD_KEYS:
        eta = _number(cost.get("eta", 0.5), f"{where}.eta", lambda v: 0 <= v <= 1, "in [0, 1]")
        max_power_w = cost.get("max_power_w")
        if max_power_w is not None:
            max_power_w = _number(max_power_w, f"{where}.max_power_w", lambda v: v > 0, "> 0")
        return ZeusCost(eta, max_power_w)
    for key in ("usd_per_kwh", "usd_per_gpu_hour"):
        if key not in cost:
            raise ConfigError(f"{where}.{key}", "is required by the $ model (usd_per_kwh, usd_per_gpu_hour, pue)")
    return UsdCost(_number(cost["usd_per_kwh"], f"{where}.usd_per_kwh", lambda v: v >= 0, ">= 0"),
                   _number(cost["usd_per_gpu_hour"], f"{where}.usd_per_gpu_hour", lambda v: v >= 0, ">= 0"),
                   _number(cost.get("pue", 1.0), f"{where}.pue", lambda v: v >= 1, ">= 1 (facility over IT energy)"))


def _number(value: Any, where: str, ok: Callable[[float], bool], want: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise ConfigError(where, f"must be a finite number {want}, got {value!r}")
    return float(value)
