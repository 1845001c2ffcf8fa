"""Parse and check the `resources` section of a run: gpus (auto, a fraction, or whole devices), cpus, memory, and a
GPU power limit (power_limit_w, or power_limit_frac of each board's default limit)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from orchestrator.errors import ConfigError
from orchestrator.records import Resources
from orchestrator.sweep.values import as_number

GIB = 1024**3


def parse_gpus(value: Any) -> float | None:
    """'auto' -> None; otherwise a fraction in (0, 1] or a whole number of GPUs."""
    if value is None or value == "auto":
        return None
    gpus = as_number("resources.gpus", value)
    if gpus < 0:
        raise ConfigError("resources.gpus", f"expected 'auto', 0, a fraction in (0, 1) or a whole number; got {value!r}")
    if gpus > 1 and not gpus.is_integer():
        raise ConfigError("resources.gpus", f"more than one GPU must be a whole number (a run cannot hold {gpus:g} GPUs)")
    return gpus


def parse_resources(section: Mapping[str, Any]) -> Resources:
    known = {"gpus", "cpus", "memory_gb", "power_limit_w", "power_limit_frac"}
    unknown = set(section) - known
    if unknown:
        raise ConfigError("resources", f"unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
    cpus = as_number("resources.cpus", section.get("cpus", 1))
    if cpus < 0:
        raise ConfigError("resources.cpus", f"expected a number >= 0, got {cpus:g}")
    memory = section.get("memory_gb")
    memory_bytes = None
    if memory is not None:
        memory_gb = as_number("resources.memory_gb", memory)
        if memory_gb <= 0:
            raise ConfigError("resources.memory_gb", f"expected a positive number of GiB or null, got {memory_gb:g}")
        memory_bytes = int(memory_gb * GIB)
    gpus = parse_gpus(section.get("gpus", "auto"))
    limit_w, limit_frac = _power_limit(section, "power_limit_w"), _power_limit(section, "power_limit_frac")
    if limit_w is not None and limit_frac is not None:
        raise ConfigError("resources.power_limit_frac", "set power_limit_w or power_limit_frac, not both")
    if gpus == 0 and (limit_w is not None or limit_frac is not None):
        field = "resources.power_limit_w" if limit_w is not None else "resources.power_limit_frac"
        raise ConfigError(field, "a GPU power limit needs runs that hold GPUs, but resources.gpus=0")
    return Resources(gpus=gpus, cpus=cpus, memory_bytes=memory_bytes, power_limit_w=limit_w,
                     power_limit_frac=limit_frac)


def _power_limit(section: Mapping[str, Any], key: str) -> float | None:
    """A power limit: null, positive watts, or a positive fraction of the board's default limit (whether a board
    takes it is checked against its range before the sweep starts)."""
    value = section.get(key)
    if value is None:
        return None
    number = as_number(f"resources.{key}", value)
    if number <= 0:
        what = "watts" if key == "power_limit_w" else "a fraction of the board's default limit, e.g. 0.7"
        raise ConfigError(f"resources.{key}", f"expected a positive number: {what}; got {number:g}")
    return number


def settle_gpus(resources: Resources, cluster_gpus: float) -> Resources:
    """Replace 'auto' by one GPU when the cluster has GPUs, none when it has none."""
    if resources.gpus is not None:
        return resources
    return replace(resources, gpus=1.0 if cluster_gpus > 0 else 0.0)
