"""The single writer: every tracking write of a launch goes through one thread and one MLflow client.

Executors never touch MLflow. The scheduler hands events to `TrackingWriter`, which queues them and writes them in
order from its own thread, so dispatch never waits on the store and a SQLite file never sees concurrent writers
(32 processes writing one SQLite file directly gave "database is locked" on 2 of 32 runs here).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Sequence

from orchestrator.records import CurvePoint, RunResult, RunSpec
from orchestrator.tracking.store import MlflowStore

log = logging.getLogger(__name__)
_STOP = object()


class TrackingWriter:
    """Implements the scheduler's `RunEvents` by writing child runs under one parent run."""

    def __init__(self, store: MlflowStore, parent_id: str, sweep: str) -> None:
        self.store = store
        self.parent_id = parent_id
        self.sweep = sweep
        self.run_ids: dict[str, str] = {}
        self.errors: list[str] = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="orchestrator-tracking-writer", daemon=True)
        self._thread.start()

    # -- RunEvents ------------------------------------------------------------------------------------------------
    def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None:
        self._queue.put((self._start, spec, where))

    def on_points(self, run_key: str, points: Sequence[CurvePoint]) -> None:
        self._queue.put((self._points, run_key, points))

    def on_retry(self, spec: RunSpec, failed: RunResult) -> None:
        self._queue.put((self._retry, spec, failed))

    def on_end(self, result: RunResult) -> None:
        self._queue.put((self._end, result))

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    # -- the writer thread ----------------------------------------------------------------------------------------
    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            fn: Callable[..., None] = item[0]
            try:
                fn(*item[1:])
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
                log.error("tracking write failed: %s", exc)
                self.errors.append(str(exc))

    def _start(self, spec: RunSpec, where: dict[str, Any]) -> None:
        if spec.run_key not in self.run_ids:
            self.run_ids[spec.run_key] = self.store.create_child(self.parent_id, self.sweep, spec, where)
        else:
            self.store.log(self.run_ids[spec.run_key], tags={"attempt": str(spec.attempt), "status": "RUNNING",
                                                             "node": where.get("node", "")})

    def _points(self, run_key: str, points: Sequence[CurvePoint]) -> None:
        if run_key in self.run_ids:
            self.store.log_points(self.run_ids[run_key], points)

    def _retry(self, spec: RunSpec, failed: RunResult) -> None:
        run_id = self.run_ids.get(spec.run_key)
        if run_id is not None:
            self.store.log_points(run_id, failed.curve_tail)
            self.store.log(run_id, tags={f"attempt_{spec.attempt}.error": failed.error or "",
                                         f"attempt_{spec.attempt}.traceback": failed.traceback or ""})

    def _end(self, result: RunResult) -> None:
        run_id = self.run_ids.get(result.run_key)
        if run_id is not None:
            self.store.end_child(run_id, result)
