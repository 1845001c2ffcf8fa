"""Turn configs and results into MLflow's flat params, metrics and tags, within MLflow's limits."""

from __future__ import annotations

import json
import math
from typing import Any, Iterator, Mapping

from orchestrator.masking import mask_secrets

# MLflow limits: param values are silently truncated past 6000 characters, tag values rejected past 8000.
PARAM_VALUE_MAX = 6000
TAG_VALUE_MAX = 8000


def flatten(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """("model.width", 64) pairs for every leaf of a nested mapping."""
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, f"{path}.")
        else:
            yield path, value


def params_of(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """MLflow params for a nested config: flattened, secret-looking values masked, long values marked truncated."""
    return {f"{prefix}{k}": param_value(v) for k, v in flatten(mask_secrets(config))}


def param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= PARAM_VALUE_MAX else text[: PARAM_VALUE_MAX - 14] + "...[truncated]"


def tag_value(value: Any) -> str:
    """Tags keep their end, where a traceback's cause is."""
    text = str(value)
    return text if len(text) <= TAG_VALUE_MAX else "[truncated]..." + text[-(TAG_VALUE_MAX - 14):]


def number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def metric_name_for(path: str) -> str:
    """Metric under which a swept config value is logged, so runs can be range-filtered on it (params cannot)."""
    return "sweep." + (path[len("job."):] if path.startswith("job.") else path.removeprefix("sweep."))
