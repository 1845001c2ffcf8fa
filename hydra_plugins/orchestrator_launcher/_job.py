"""The executor side of a Hydra job: restore the driver's Hydra state, then `run_job` exactly as BasicLauncher does.

The payload arrives as cloudpickled bytes (`pack`), so only the job itself ever unpickles the user's task function and
config, never the tracking writer that also sees the run's spec.
"""

from __future__ import annotations

import contextlib
import logging
import numbers
import os
from typing import Any, Iterator, Mapping

from omegaconf import DictConfig

from orchestrator.execution.context import JobContext
from orchestrator.records import JobOutput


def pack(value: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(value)


def _pack_return(ret: Any) -> bytes:
    try:
        return pack(ret)
    except Exception as exc:  # said in the user's terms
        raise TypeError(f"the task's return value cannot be sent back to the driver (it must pickle): {exc}") from exc


def unpack(data: bytes) -> Any:
    import cloudpickle

    return cloudpickle.loads(data)


def final_metrics(value: Any) -> dict[str, float]:
    """The numbers of a task's return value when it is a mapping ({"loss": 0.1, "ckpt": "a.pt"} -> {"loss": 0.1})."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}


@contextlib.contextmanager
def _in_dir(path: str) -> Iterator[None]:
    """Run in the directory the app was started from, as BasicLauncher's jobs do (when this node has it)."""
    before = os.getcwd()
    if os.path.isdir(path):
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _close_job_log() -> None:
    """Close the job's log file, so this executor's later output never lands in it."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()


def run_hydra_job(cfg: DictConfig, ctx: JobContext) -> JobOutput:
    """The `_target_` of every Hydra job: `cfg` is only the job's identity; the job itself is in `ctx.payload`."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    shared, own = ctx.payload
    task_function, hydra_context, singleton_state = unpack(shared)
    sweep_config = unpack(own)
    setup_globals()
    Singleton.set_state(singleton_state)
    try:
        with _in_dir(str(sweep_config.hydra.runtime.cwd)):
            ret = run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
    finally:
        _close_job_log()
    if ret.status == JobStatus.FAILED:
        error = ret._return_value
        with contextlib.suppress(Exception):
            return JobOutput(value=pack(ret), error=error)
        ret.return_value = RuntimeError(f"{type(error).__name__}: {error}")  # the task's exception does not pickle
        return JobOutput(value=_pack_return(ret), error=error)
    return JobOutput(final_metrics(ret._return_value), _pack_return(ret))
