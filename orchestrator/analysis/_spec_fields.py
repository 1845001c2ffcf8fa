"""Checks of single fields of the `analysis:` section; each raises ConfigError naming the field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.errors import ConfigError


def reference(value: Any, objectives: Mapping[str, str], where: str) -> dict[str, float] | None:
    if value is None:
        return None
    value = mapping(value, where)
    if set(value) != set(objectives):
        raise ConfigError(where, f"must give a value for exactly the objectives {list(objectives)}, got {list(value)}")
    for column, number in value.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ConfigError(f"{where}.{column}", f"must be a number, got {number!r}")
    return {str(k): float(v) for k, v in value.items()}


def check_options(options: Mapping[str, Any], where: str) -> None:
    b = options.get("bootstrap", 0)
    if isinstance(b, bool) or not isinstance(b, int) or b < 0:
        raise ConfigError(f"{where}.bootstrap", f"must be a non-negative integer, got {b!r}")
    seed = options.get("seed", 0)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"{where}.seed", f"must be an integer or null, got {seed!r}")
    if options.get("objective", "huber") not in ("huber", "squared"):
        raise ConfigError(f"{where}.objective", f"must be 'huber' or 'squared', got {options['objective']!r}")
    delta = options.get("delta", 1e-3)
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
        raise ConfigError(f"{where}.delta", f"must be a positive number, got {delta!r}")
    if not isinstance(options.get("irreducible", True), bool):
        raise ConfigError(f"{where}.irreducible", f"must be true or false, got {options['irreducible']!r}")


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(where, f"must be a mapping, got {type(value).__name__}")
    return value


def sequence(value: Any, where: str) -> Sequence[Any]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(where, f"must be a list of mappings, got {type(value).__name__}")
    return value


def only(item: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in item if k not in allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", f"unknown key; allowed keys are {sorted(allowed)}")


def column(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(where, f"must be a non-empty column name, got {value!r}")
    return value


def name(value: Any, where: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "/\\ "):
        raise ConfigError(where, f"must be a string without slashes or spaces, got {value!r}")
    return value
