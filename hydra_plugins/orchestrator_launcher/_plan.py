"""A Hydra job as an orchestrator run: its overrides become the run's identity, name, params and swept values.

Pure: no Ray, no MLflow, no Hydra state.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from orchestrator.masking import mask_override
from orchestrator.records import Resources, RunSpec
from orchestrator.sweep.keys import run_key

# The function every executor calls for a Hydra job (it receives the job through `ctx.payload`).
TARGET = "hydra_plugins.orchestrator_launcher._job.run_hydra_job"
KIND = "hydra-multirun"
# Characters MLflow refuses in param and metric names.
_UNSAFE = re.compile(r"[^/\w.\- :]")
_PLAIN = (str, int, float, bool, type(None), list, dict)


def _parse(override: str) -> tuple[str, Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(override)
    value = None if parsed.is_delete() and parsed.value() is None else parsed.value()
    key = parsed.key_or_group + (f"@{parsed.package}" if parsed.package else "")
    return key, value if isinstance(value, _PLAIN) else parsed.get_value_element_as_str()


def override_values(overrides: Sequence[str]) -> dict[str, Any]:
    """{"model.width": 64, "db": "mysql"} from ["model.width=64", "+db=mysql"]: keys safe as MLflow names
    (`db@backup=x` is `db_backup`)."""
    values: dict[str, Any] = {}
    for override in overrides:
        try:
            key, value = _parse(override)
        except Exception:  # noqa: BLE001 - an override Hydra accepted but we cannot parse is still named
            key, _, value = override.partition("=")
        values[_UNSAFE.sub("_", key.lstrip("+~"))] = value
    return values


def run_name(app: str, idx: int, overrides: Sequence[str]) -> str:
    """The MLflow run name: the job's overrides as typed (`model.width=64 optim.lr=0.001`), else `app #idx`."""
    shown = [mask_override(o) for o in overrides if not o.startswith("hydra.")]
    return " ".join(shown) or f"{app} #{idx}"


def job_identity(app: str, idx: int, overrides: Sequence[str]) -> dict[str, Any]:
    """What identifies a job (hashed to its run_key, logged as its params): its overrides, its app and number."""
    return {**override_values(overrides), "_target_": TARGET, "hydra.job.name": app, "hydra.job.num": idx}


def hydra_run(app: str, idx: int, overrides: Sequence[str], resources: Resources, payload: Any = None) -> RunSpec:
    job = job_identity(app, idx, overrides)
    return RunSpec(run_key(job), job, resources, run_name(app, idx, overrides), override_values(overrides),
                   payload=payload)


def varied_keys(values: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Override keys whose value differs between jobs of a batch."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    return tuple(k for k in keys if len({repr(v.get(k)) for v in values}) > 1)
