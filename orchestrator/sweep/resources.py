"""Parse and check the `resources` section of a run: gpus (auto, a fraction, or whole devices), cpus, memory."""

from __future__ import annotations

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
    known = {"gpus", "cpus", "memory_gb"}
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
    return Resources(gpus=parse_gpus(section.get("gpus", "auto")), cpus=cpus, memory_bytes=memory_bytes)


def settle_gpus(resources: Resources, cluster_gpus: float) -> Resources:
    """Replace 'auto' by one GPU when the cluster has GPUs, none when it has none."""
    if resources.gpus is not None:
        return resources
    return Resources(gpus=1.0 if cluster_gpus > 0 else 0.0, cpus=resources.cpus, memory_bytes=resources.memory_bytes)
