"""What a job sees of the orchestrator: `ctx.log(...)` for curves and `ctx.device` for where to run.

Jobs never import Ray or MLflow; they receive a `JobContext`. Built without a sink, the context keeps every point in
`ctx.curves`, which is how a job is run and tested in-process (`JobContext()` is the debug executor of one run).

Early stopping: a job that says how far along it is (`ctx.log(step, progress=0.25, val_loss=...)`) may be stopped at
the sweep's checkpoints when it can no longer reach the front. By default `ctx.log` then raises `RunPruned`, which the
job need not catch (the run ends PRUNED, its curve so far kept); a job that wants to end on its own terms polls
`ctx.should_stop()` instead, and is never raised at once it has asked. `checkpoint=True` declares the values valid
measurements of a shorter run (constant learning rate with a cooldown, say), so fits and fronts may use them.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Sequence

from orchestrator.records import Checkpoint, CurvePoint

Sink = Callable[[Sequence[CurvePoint]], None]
# Asked at each checkpoint a running job reaches: (progress, metrics logged there, projected seconds of the whole run)
# -> stop the run now?
Pruner = Callable[[float, Mapping[str, float], float], bool]


class RunPruned(Exception):
    """Raised by `ctx.log` when early stopping stopped the run; the run ends PRUNED, not FAILED."""


class JobContext:
    """Handed to `fn(cfg, ctx)`; streams curves to the tracker in batches while the job runs."""

    def __init__(
        self,
        device: str | None = None,
        gpu_ids: Sequence[str] = (),
        run_key: str = "local",
        attempt: int = 1,
        sink: Sink | None = None,
        flush_interval_s: float = 1.0,
        flush_points: int = 500,
        payload: Any = None,
        pruner: Pruner | None = None,
        checkpoint_fractions: Sequence[float] = (),
    ) -> None:
        self._device = device
        # The GPU ids the scheduler assigned (as in CUDA_VISIBLE_DEVICES).
        self.gpu_ids = tuple(gpu_ids)
        self.run_key = run_key
        self.attempt = attempt
        # Opaque data from the entry point (the Hydra launcher's task); None for sweep jobs.
        self.payload = payload
        # Every point logged, when no sink is given (in-process use and tests).
        self.curves: list[CurvePoint] = []
        self._sink = sink
        self._buffer: list[CurvePoint] = []
        self._lock = threading.Lock()
        self._flush_interval_s = flush_interval_s
        self._flush_points = flush_points
        self._last_flush = time.monotonic()
        self._auto_step: dict[str, int] = {}
        # Values logged with a progress, in order (what a planner learns from a run stopped part-way).
        self.checkpoints: list[Checkpoint] = []
        self._pruner = pruner
        self._fractions = sorted(checkpoint_fractions)
        self._next_checkpoint = 0
        self._pruned = False
        self._polled = False
        self._started = time.monotonic()
        # (seconds since start, progress) at the first log with a progress: the rate the run goes at from there.
        self._first_progress: tuple[float, float] | None = None

    @property
    def device(self) -> str:
        """Torch device for the run: "cuda" when it holds GPUs and CUDA is usable, else "cpu".

        Decided on first use, so jobs that never ask do not import torch.
        """
        if self._device is None:
            self._device = "cpu"
            if self.gpu_ids:
                import torch

                self._device = "cuda" if torch.cuda.is_available() else "cpu"
        return self._device

    def log(self, step: int | None = None, *, progress: float | None = None, checkpoint: bool = False,
            **metrics: float) -> None:
        """Record one point of each named curve at `step` (default: one past that curve's last step).

        `progress` (0..1]: how far along the run is (e.g. tokens seen / tokens); at the sweep's early-stopping
        checkpoints the run may be stopped here (see the module docstring). `checkpoint=True`: these values are valid
        measurements of a run that ended here."""
        self._record(step, metrics)
        if progress is not None:
            self._reached(float(progress), {k: float(v) for k, v in metrics.items()}, checkpoint)

    def should_stop(self) -> bool:
        """Whether early stopping stopped this run; a job that asks ends itself (return its metrics so far) and
        `ctx.log` no longer raises `RunPruned` for it."""
        self._polled = True
        return self._pruned

    @property
    def pruned(self) -> bool:
        return self._pruned

    def _reached(self, progress: float, metrics: dict[str, float], valid: bool) -> None:
        self.checkpoints.append(Checkpoint(progress, metrics, valid))
        elapsed = time.monotonic() - self._started
        if self._first_progress is None:
            self._first_progress = (elapsed, progress)
        crossed = False
        while self._next_checkpoint < len(self._fractions) and progress >= self._fractions[self._next_checkpoint]:
            self._next_checkpoint, crossed = self._next_checkpoint + 1, True
        if crossed and not self._pruned and self._pruner is not None:
            self._pruned = self._pruner(progress, metrics, self._projected_s(elapsed, progress))
        if self._pruned and not self._polled:
            raise RunPruned(f"stopped early at progress {progress:.3g}: it can no longer reach the front")

    def _projected_s(self, elapsed: float, progress: float) -> float:
        """Seconds the whole run would take: elapsed, plus the rest at the rate seen since its first progress (so
        start-up time, spent once, is not scaled up as elapsed / progress would)."""
        assert self._first_progress is not None
        t0, p0 = self._first_progress
        if progress <= p0 or progress <= 0:
            return elapsed / progress if progress > 0 else elapsed
        return elapsed + (1.0 - progress) * (elapsed - t0) / (progress - p0)

    def _record(self, step: int | None, metrics: Mapping[str, float]) -> None:
        now_ms = int(time.time() * 1000)
        points = []
        for key, value in metrics.items():
            point_step = self._auto_step.get(key, 0) if step is None else int(step)
            self._auto_step[key] = point_step + 1
            points.append(CurvePoint(key, float(value), point_step, now_ms))
        with self._lock:
            if self._sink is None:
                self.curves.extend(points)
                return
            self._buffer.extend(points)
            due = time.monotonic() - self._last_flush >= self._flush_interval_s
            if due or len(self._buffer) >= self._flush_points:
                self._flush_locked()

    def curve(self, key: str) -> list[tuple[int, float]]:
        """(step, value) pairs of one curve kept in-process."""
        return [(p.step, p.value) for p in self.curves if p.key == key]

    def drain(self) -> tuple[CurvePoint, ...]:
        """Points logged but not yet sent; the executor returns them with the run's result."""
        with self._lock:
            tail, self._buffer = tuple(self._buffer), []
        return tail

    def _flush_locked(self) -> None:
        batch, self._buffer = self._buffer, []
        self._last_flush = time.monotonic()
        if batch and self._sink is not None:
            self._sink(batch)
