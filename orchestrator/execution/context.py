"""What a job sees of the orchestrator: `ctx.log(...)` for curves and `ctx.device` for where to run.

Jobs never import Ray or MLflow; they receive a `JobContext`. Built without a sink, the context keeps every point in
`ctx.curves`, which is how a job is run and tested in-process (`JobContext()` is the debug executor of one run).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from orchestrator.records import CurvePoint

Sink = Callable[[Sequence[CurvePoint]], None]


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

    def log(self, step: int | None = None, **metrics: float) -> None:
        """Record one point of each named curve at `step` (default: one past that curve's last step)."""
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
