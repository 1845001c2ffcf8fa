"""The persistent executor: a process that runs one job at a time, each inside its own `JobContext`.

`Executor` is a plain class so it can run in-process (`Executor().run(spec)` is the debug path); the scheduler wraps
it with `ray.remote` and keeps one per slot, so runs reuse a warm process instead of paying a worker start per run.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from orchestrator.execution.context import JobContext, Pruner, RunPruned, Sink
from orchestrator.records import FAILED, FINISHED, PRUNED, JobOutput, RunResult, RunSpec


@dataclass(frozen=True)
class RunSettings:
    """How every run of a launch is executed and measured (the same for all runs; sent with each)."""

    # Seconds between curve flushes from a running job to the tracker.
    flush_interval_s: float = 1.0
    # Meter each run's energy (NVML / RAPL); unavailable quantities are recorded as missing, never 0.
    energy: bool = True
    # Energy sampler period and spacing of the system/ power curve, in seconds.
    sample_interval_s: float = 0.1
    curve_interval_s: float = 5.0
    # Cost model turning GPU time and energy into cost_usd and co2_g (None: no cost metrics).
    cost: Any = None
    # Early stopping: the sweep's `early_stop` section (EarlyStopSpec) and the actor that decides at checkpoints.
    early_stop: Any = None
    pruner: Any = None
    # A run's power limit that cannot be set for want of permission: True fails the run, False runs it at the default.
    power_limit_required: bool = True


def _now_ms() -> int:
    return int(time.time() * 1000)


def _final_metrics(returned: Any) -> dict[str, float]:
    """The job's return value as {name: float}; anything else is a job error the user should see."""
    if isinstance(returned, JobOutput):
        returned = returned.metrics
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


def ray_node_id() -> str:
    """This process's Ray node id ('' outside Ray): tells apart nodes that share a host name."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
    except Exception:  # noqa: BLE001 - outside a Ray worker there is no node
        return ""


def assigned_gpu_ids() -> list[str]:
    """GPU ids Ray assigned to this process (empty outside Ray or without GPUs)."""
    try:
        import ray

        return [str(i) for i in ray.get_gpu_ids()] if ray.is_initialized() else []
    except Exception:  # noqa: BLE001 - outside a Ray worker there is simply no assignment
        return []


class Executor:
    """Runs jobs one after another in this process, reporting curves through `sink` while they run."""

    def __init__(self) -> None:
        self._targets: dict[str, Callable[..., Any]] = {}
        self.node = socket.gethostname()
        self.pid = os.getpid()
        self.ray_node = ray_node_id()
        _restore_power_limits()

    def info(self) -> dict[str, Any]:
        """Where this executor lives; the scheduler waits on this to know the executor is up."""
        return {"node": self.node, "ray_node": self.ray_node, "pid": self.pid, "gpu_ids": assigned_gpu_ids()}

    def run(self, spec: RunSpec, settings: RunSettings = RunSettings(), sink: Sink | None = None) -> RunResult:
        """Run one job inside the energy meter; curve points go to `sink` while it runs (else all come back)."""
        gpu_ids = assigned_gpu_ids()
        t0 = time.perf_counter()
        pruner, fractions = _pruner(settings, spec)
        ctx = JobContext(gpu_ids=gpu_ids, run_key=spec.run_key, attempt=spec.attempt, sink=sink,
                         flush_interval_s=settings.flush_interval_s, payload=spec.payload, pruner=pruner,
                         checkpoint_fractions=fractions)
        tags = {"node": self.node, "ray_node": self.ray_node, "pid": str(self.pid), "device": ",".join(f"gpu:{g}" for g in gpu_ids) or "cpu",
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", "")}
        try:
            limits = _power_limits(spec, settings)
        except Exception as exc:  # noqa: BLE001 - not set, so the job does not run; the run says why
            return RunResult(spec.run_key, FAILED, {}, (), {**tags, "cause": "power_limit"}, str(exc),
                             traceback.format_exc(), _now_ms(), _now_ms(), spec.attempt)
        if limits is not None:
            tags.update(limits.tags)
        try:
            result = self._metered(spec, settings, ctx, tags, sink, t0, gpu_ids)
        finally:
            if limits is not None:
                limits.release()
        return result if limits is None else replace(result, metrics={**result.metrics, **limits.metrics})

    def _metered(self, spec: RunSpec, settings: RunSettings, ctx: JobContext, tags: dict[str, str],
                 sink: Sink | None, t0: float, gpu_ids: list[str]) -> RunResult:
        meter = _meter(settings, gpu_ids, spec)
        started_ms = _now_ms()
        status, metrics, error, tb, value = FINISHED, {}, None, None, None
        try:
            returned = self._call(spec, ctx)
            metrics = _final_metrics(returned)
            value = returned.value if isinstance(returned, JobOutput) else None
            if isinstance(returned, JobOutput) and returned.error is not None:
                raise returned.error  # a failure handed back with a value: reported like any raise, value kept
            if ctx.pruned:  # it polled ctx.should_stop() and ended itself
                status, metrics = PRUNED, {**_last_checkpoint(ctx), **metrics}
                tags["cause"] = "pruned"
        except RunPruned:
            status, metrics = PRUNED, _last_checkpoint(ctx)
            tags["cause"] = "pruned"
        except (Exception, SystemExit) as exc:  # every failure of a job is reported, not raised
            if ctx.pruned:  # stopped early, and the job turned the stop into another error: still pruned
                status, metrics = PRUNED, _last_checkpoint(ctx)
                tags["cause"] = "pruned"
            else:
                status, error, tb = FAILED, f"{type(exc).__name__}: {exc}", traceback.format_exc()
                tags["error_types"] = ",".join(t.__name__ for t in type(exc).__mro__)
                tags["cause"] = "job_error"
        wall_s = time.perf_counter() - t0
        if any(c.valid for c in ctx.checkpoints):
            tags["checkpoints_valid"] = "true"  # orchestrator.sweep.feed.VALID_TAG: a relaunch reads it back
        reading = meter.stop() if meter is not None else None
        metrics = {**metrics, "wall_s": wall_s}
        tail = list(ctx.curves if sink is None else ctx.drain())
        if reading is not None:
            metrics.update(reading.metrics)
            tags.update(reading.tags)
            tail.extend(reading.curve)
        if settings.cost is not None:
            from orchestrator.energy.cost import cost_metrics

            metrics.update(cost_metrics(settings.cost, metrics, tags))
        return RunResult(spec.run_key, status, metrics, tuple(tail), tags, error, tb, started_ms, _now_ms(), spec.attempt,
                         value, tuple(ctx.checkpoints))

    def _call(self, spec: RunSpec, ctx: JobContext) -> Any:
        from omegaconf import OmegaConf

        target = spec.job["_target_"]
        if target not in self._targets:
            from orchestrator.sweep.expand import load_target

            self._targets[target] = load_target("job._target_", target)
        cfg = OmegaConf.create(dict(spec.job))
        return self._targets[target](cfg, ctx)


def _last_checkpoint(ctx: JobContext) -> dict[str, float]:
    """A pruned run's final metrics: the values it logged at its last progress, and that progress."""
    if not ctx.checkpoints:
        return {}
    last = ctx.checkpoints[-1]
    return {**last.metrics, "progress": last.progress}


# Cost axes early stopping measures itself while a job runs (elapsed time, times the GPUs held); any other cost metric
# must be logged by the job with its progress (e.g. ctx.log(step, progress=p, val_loss=..., flops=...)).
TIMED_COSTS = ("gpu_hours", "wall_s")


def _pruner(settings: RunSettings, spec: RunSpec) -> tuple[Pruner | None, tuple[float, ...]]:
    """What the job's context asks at each early-stopping checkpoint, and where the checkpoints are."""
    early_stop = settings.early_stop
    if early_stop is None or settings.pruner is None:
        return None, ()
    from orchestrator.sweep.early_stop import checkpoint_fractions

    gpus = spec.resources.gpus or 0.0

    def stop_now(progress: float, metrics: Mapping[str, float], projected_s: float) -> bool:
        import ray

        value = metrics.get(early_stop.metric)
        if value is None:
            return False
        if early_stop.cost in metrics:  # the job counts its own cost so far (e.g. flops)
            so_far = float(metrics[early_stop.cost])
        elif early_stop.cost in TIMED_COSTS:  # measured: the projected whole run's share, so start-up is not scaled
            so_far = progress * (projected_s * gpus / 3600.0 if early_stop.cost == "gpu_hours" else projected_s)
        else:
            return False
        return bool(ray.get(settings.pruner.report.remote(spec.run_key, progress, value, so_far)))

    return stop_now, checkpoint_fractions(early_stop.min_fraction)


def _power_limits(spec: RunSpec, settings: RunSettings) -> Any:
    """The run's power limit held on its boards (orchestrator.energy.power_limits.Held), or None when it asks none."""
    request = spec.resources.power_limit
    if request is None:
        return None
    from orchestrator.energy.power_limits import hold

    return hold(request, spec.run_key, settings.power_limit_required)


def _restore_power_limits() -> None:
    """Put back limits a dead run left on this node's boards (see orchestrator/energy/power_limits.py)."""
    from orchestrator.energy.power_limits import restore_left_behind

    try:
        restore_left_behind()
    except Exception as exc:  # noqa: BLE001 - an executor still starts; the driver tries again when the launch ends
        import logging

        logging.getLogger(__name__).warning("could not restore GPU power limits left behind: %s", exc)


def _meter(settings: RunSettings, gpu_ids: list[str], spec: RunSpec) -> Any:
    """A started energy meter for exactly the devices this run holds (None when metering is off)."""
    if not settings.energy:
        return None
    from orchestrator.energy import RunMeter

    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if gpu_ids else None
    share = spec.resources.gpus if spec.resources.gpus else 1.0
    return RunMeter(visible, share, sample_interval_s=settings.sample_interval_s,
                    curve_interval_s=settings.curve_interval_s).start()
