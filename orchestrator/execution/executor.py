"""The persistent executor: a process that runs one job at a time, each inside its own `JobContext`.

`Executor` is a plain class so it can run in-process (`Executor().run(spec)` is the debug path); the scheduler wraps
it with `ray.remote` and keeps one per slot, so runs reuse a warm process instead of paying a worker start per run.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

from orchestrator.execution.context import JobContext
from orchestrator.records import FAILED, FINISHED, CurvePoint, RunResult, RunSpec


def _now_ms() -> int:
    return int(time.time() * 1000)


def _final_metrics(returned: Any) -> dict[str, float]:
    """The job's return value as {name: float}; anything else is a job error the user should see."""
    if returned is None:
        return {}
    if not isinstance(returned, Mapping):
        raise TypeError(f"a job must return a mapping of metric name -> number, got {type(returned).__name__}")
    metrics = {}
    for key, value in returned.items():
        try:
            metrics[str(key)] = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"metric {key!r} returned by the job is not a number: {value!r}") from None
    return metrics


def assigned_gpu_ids() -> list[str]:
    """GPU ids Ray assigned to this process (empty outside Ray or without GPUs)."""
    try:
        import ray

        return [str(i) for i in ray.get_gpu_ids()] if ray.is_initialized() else []
    except Exception:  # noqa: BLE001 - outside a Ray worker there is simply no assignment
        return []


class Executor:
    """Runs jobs one after another in this process, reporting curves through `sink` while they run."""

    def __init__(self, sink: Callable[[str, Sequence[CurvePoint]], None] | None = None) -> None:
        self._sink = sink
        self._targets: dict[str, Callable[..., Any]] = {}
        self.node = socket.gethostname()
        self.pid = os.getpid()

    def info(self) -> dict[str, Any]:
        """Where this executor lives; the scheduler waits on this to know the executor is up."""
        return {"node": self.node, "pid": self.pid, "gpu_ids": assigned_gpu_ids()}

    def run(self, spec: RunSpec, flush_interval_s: float = 1.0) -> RunResult:
        gpu_ids = assigned_gpu_ids()
        sink = None if self._sink is None else (lambda points: self._sink(spec.run_key, points))
        ctx = JobContext(gpu_ids=gpu_ids, run_key=spec.run_key, attempt=spec.attempt, sink=sink,
                         flush_interval_s=flush_interval_s)
        tags = {"node": self.node, "pid": str(self.pid), "device": ",".join(f"gpu:{g}" for g in gpu_ids) or "cpu",
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
        started_ms, t0 = _now_ms(), time.perf_counter()
        status, metrics, error, tb = FINISHED, {}, None, None
        try:
            metrics = _final_metrics(self._call(spec, ctx))
        except (Exception, SystemExit) as exc:  # every failure of a job is reported, not raised
            status, error, tb = FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc()
        wall_s = time.perf_counter() - t0
        metrics = {**metrics, "wall_s": wall_s, "gpu_seconds": wall_s * _gpus_held(spec)}
        tail = ctx.curves if sink is None else list(ctx.drain())
        return RunResult(spec.run_key, status, metrics, tuple(tail), tags, error, tb, started_ms, _now_ms(), spec.attempt)

    def _call(self, spec: RunSpec, ctx: JobContext) -> Any:
        from omegaconf import OmegaConf

        target = spec.job["_target_"]
        if target not in self._targets:
            from orchestrator.sweep.expand import load_target

            self._targets[target] = load_target("job._target_", target)
        cfg = OmegaConf.create(dict(spec.job))
        return self._targets[target](cfg, ctx)


def _gpus_held(spec: RunSpec) -> float:
    gpus = spec.resources.gpus or 0.0
    return gpus if math.isfinite(gpus) else 0.0
