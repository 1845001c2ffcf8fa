"""The stable identity of a run: a hash of its resolved job config.

The hash does not depend on key order, on how a number was written (1e5, 100000, 100000.0) or on how the sweep that
produced the config was written (grid, zip, explicit list), only on the config the job receives.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

KEY_LENGTH = 16


def canonical(value: Any) -> Any:
    """A JSON-ready form of `value` in which equal configs are equal."""
    kind = type(value)  # the plain types first: a config is made of them, and ABC checks cost ~1 us each
    if kind is dict:
        return {str(k): canonical(v) for k, v in value.items()}
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return float(f"{value:.12g}") if math.isfinite(value) else str(value)
    return str(value)


def run_key(job: Mapping[str, Any]) -> str:
    """Hex digest identifying a resolved job config."""
    text = json.dumps(canonical(job), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
