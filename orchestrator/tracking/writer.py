"""The single writer: every tracking write of a launch goes through one process and one MLflow client.

`WriterCore` runs as a Ray actor on the driver's node. The driver sends it run starts and ends; executors send it the
curve points their jobs stream. Executors never touch MLflow, the driver's dispatch loop never waits on the store
(writing in the driver's own thread held its GIL and slowed dispatch 4x here), and a SQLite file never sees
concurrent writers (32 processes writing one SQLite file directly gave "database is locked" on 2 of 32 runs here).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from orchestrator.records import CurvePoint, RunResult, RunSpec

log = logging.getLogger(__name__)


class WriterCore:
    """Writes one launch at a time: its parent run, a child run per run_key, their curves and results."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.store: Any = None
        self.parent_id: str | None = None
        self.sweep = ""
        self.run_ids: dict[str, str] = {}
        self.early: dict[str, list[CurvePoint]] = {}
        self.errors: list[str] = []

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
            log.error("tracking write failed (%s): %s", what, exc)
            self.errors.append(f"{what}: {exc}")

    def open_launch(self, experiment: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                    texts: Mapping[str, str]) -> str:
        from orchestrator.tracking.store import MlflowStore

        self.store = MlflowStore(self.uri, experiment)
        self.sweep, self.run_ids, self.early, self.errors = experiment, {}, {}, []
        self.parent_id = self.store.create_parent(name, params, tags)
        for path, text in texts.items():
            self._guard(f"artifact {path}", self.store.log_text, self.parent_id, text, path)
        return self.parent_id

    def start(self, spec: RunSpec, where: Mapping[str, Any]) -> None:
        self._guard(f"start {spec.name}", self._start, spec, where)

    def _start(self, spec: RunSpec, where: Mapping[str, Any]) -> None:
        if spec.run_key in self.run_ids:
            self.store.log(self.run_ids[spec.run_key], tags={"attempt": str(spec.attempt), "status": "RUNNING",
                                                             "node": str(where.get("node", ""))})
            return
        self.run_ids[spec.run_key] = self.store.create_child(self.parent_id, self.sweep, spec, where)
        early = self.early.pop(spec.run_key, [])
        if early:
            self.store.log_points(self.run_ids[spec.run_key], early)

    def points(self, run_key: str, points: Sequence[CurvePoint]) -> None:
        """Curve points from a running job; kept until its run exists if they arrive first."""
        if run_key not in self.run_ids:
            self.early.setdefault(run_key, []).extend(points)
            return
        self._guard(f"curves of {run_key}", self.store.log_points, self.run_ids[run_key], points)

    def retry(self, spec: RunSpec, failed: RunResult) -> None:
        run_id = self.run_ids.get(spec.run_key)
        if run_id is not None:
            self._guard(f"retry {spec.name}", self.store.log_points, run_id, failed.curve_tail)
            self._guard(f"retry {spec.name}", self.store.log, run_id, None, None,
                        {f"attempt_{spec.attempt}.error": failed.error or "",
                         f"attempt_{spec.attempt}.traceback": failed.traceback or ""})

    def end(self, result: RunResult) -> None:
        run_id = self.run_ids.get(result.run_key)
        if run_id is not None:
            self._guard(f"end {result.run_key}", self.store.end_child, run_id, result)

    def close_launch(self, status: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> list[str]:
        """End the parent run; returns the writes that failed during the launch."""
        if self.parent_id is not None:
            self._guard("end parent", self.store.end_parent, self.parent_id, status, metrics, tags)
        return list(self.errors)


class WriterEvents:
    """The scheduler's `RunEvents`, forwarded to a writer (a Ray actor handle, or a `WriterCore` in-process)."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self._call = (lambda name, *a: getattr(writer, name).remote(*a)) if hasattr(writer.start, "remote") else (
            lambda name, *a: getattr(writer, name)(*a))

    def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None:
        self._call("start", spec, where)

    def on_retry(self, spec: RunSpec, failed: RunResult) -> None:
        self._call("retry", spec, failed)

    def on_end(self, result: RunResult) -> None:
        self._call("end", result)
