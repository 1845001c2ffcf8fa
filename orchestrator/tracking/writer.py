"""The single writer: every tracking write of a launch goes through one process and one MLflow client.

`WriterCore` runs as a Ray actor on the driver's node. Executors send it a run's start and the curve points its job
streams; the driver sends the run's end. They are different callers, so their messages may arrive in any order. Each
executor therefore counts the messages it sent for an attempt, and the driver passes that count with the end: the
writer applies an end (or a retry) only once it has all of that attempt's messages, and `close_launch` reports
whether anything is still outstanding, so the driver can wait for it. Nothing is dropped or applied out of order, and
the driver's dispatch never waits on the store.

Executors never touch MLflow, and a SQLite file never sees concurrent writers (32 processes writing one SQLite file
directly gave "database is locked" on 2 of 32 runs here; writing from the driver's own thread held its GIL and slowed
dispatch 4x).
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from orchestrator.records import KILLED, CurvePoint, RunResult, RunSpec

log = logging.getLogger(__name__)
Attempt = tuple[str, int]


class WriterCore:
    """Writes one launch at a time: its parent run, a child run per run_key, their curves and results."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.store: Any = None
        self._reset(None, "")

    def _reset(self, parent_id: str | None, sweep: str) -> None:
        self.parent_id = parent_id
        self.sweep = sweep
        # MLflow child run of each run_key, messages received per attempt, points that came before their run.
        self.run_ids: dict[str, str] = {}
        self.received: dict[Attempt, int] = {}
        self.early: dict[str, list[CurvePoint]] = {}
        # Ends and retries waiting for the rest of their attempt's messages: (kind, spec, result, expected count).
        self.waiting: dict[Attempt, tuple[str, RunSpec, RunResult, int]] = {}
        self.ended: set[Attempt] = set()
        self.errors: list[str] = []

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
            log.error("tracking write failed (%s): %s", what, exc)
            self.errors.append(f"{what}: {exc}")

    def open_launch(self, experiment: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                    texts: Mapping[str, str], started_at_ms: int, resume: str | None = None) -> str:
        """Create the launch's parent run (started when the driver started the launch) and its artifacts; or, given
        `resume`, the parent run of an earlier launch, continue that one (running again, its params kept)."""
        from orchestrator.tracking.store import MlflowStore

        self.store = MlflowStore(self.uri, experiment)
        if resume is not None:
            self._reset(resume, experiment)
            self._guard("reopen parent", self.store.reopen, resume)
            return resume
        self._reset(self.store.create_parent(name, params, tags, started_at_ms), experiment)
        for path, text in texts.items():
            self._guard(f"artifact {path}", self.store.log_text, self.parent_id, text, path)
        return self.parent_id  # type: ignore[return-value]

    # -- from executors -------------------------------------------------------------------------------------------
    def start(self, spec: RunSpec, where: Mapping[str, Any], *opened: Any) -> None:
        """An attempt began on an executor (`opened`: this launch's parent run id, resolved before this runs)."""
        attempt = (spec.run_key, spec.attempt)
        if attempt not in self.ended:
            self._guard(f"start {spec.name}", self._open_child, spec, where)
        self._count(attempt)

    def points(self, run_key: str, attempt: int, points: Sequence[CurvePoint]) -> None:
        """Curve points from a running job; kept until its run exists if they arrive first."""
        if run_key in self.run_ids:
            self._guard(f"curves of {run_key}", self.store.log_points, self.run_ids[run_key], points)
        else:
            self.early.setdefault(run_key, []).extend(points)
        self._count((run_key, attempt))

    # -- from the driver ------------------------------------------------------------------------------------------
    def end(self, spec: RunSpec, result: RunResult, expected: int) -> None:
        """A run's final result, applied once the executor's `expected` messages for this attempt are in."""
        self._wait_for(("end", spec, result, expected))

    def retry(self, spec: RunSpec, failed: RunResult, expected: int) -> None:
        """A failed attempt that will run again: its error and traceback become attempt tags."""
        self._wait_for(("retry", spec, failed, expected))

    def close_launch(self, status: str, metrics: Mapping[str, float], tags: Mapping[str, str],
                     force: bool = False) -> tuple[bool, list[str]]:
        """End the parent run once every end is applied: (closed, failed writes). With `force`, apply what still
        waits as it is (the driver's deadline passed: an executor's messages were lost with it)."""
        if self.waiting and not force:
            return False, []
        for kind, spec, result, _ in list(self.waiting.values()):
            self._apply(kind, spec, result)
        self.waiting.clear()
        if self.parent_id is not None:
            self._guard("end parent", self.store.end_parent, self.parent_id, status, metrics, tags)
        return True, list(self.errors)

    # -- internals ------------------------------------------------------------------------------------------------
    def _open_child(self, spec: RunSpec, where: Mapping[str, Any]) -> None:
        if spec.run_key in self.run_ids:  # a retry's new attempt
            self.store.log(self.run_ids[spec.run_key], tags={"attempt": str(spec.attempt), "status": "RUNNING",
                                                             "node": str(where.get("node", "")),
                                                             "ray_node": str(where.get("ray_node", ""))})
            return
        self.run_ids[spec.run_key] = self.store.create_child(self.parent_id, self.sweep, spec, where)
        early = self.early.pop(spec.run_key, [])
        if early:
            self.store.log_points(self.run_ids[spec.run_key], early)

    def _count(self, attempt: Attempt) -> None:
        self.received[attempt] = self.received.get(attempt, 0) + 1
        pending = self.waiting.get(attempt)
        if pending is not None and self.received[attempt] >= pending[3]:
            del self.waiting[attempt]
            self._apply(*pending[:3])

    def _wait_for(self, pending: tuple[str, RunSpec, RunResult, int]) -> None:
        kind, spec, result, expected = pending
        attempt = (spec.run_key, spec.attempt)
        if self.received.get(attempt, 0) >= expected:
            self._apply(kind, spec, result)
        else:
            self.waiting[attempt] = pending

    def _apply(self, kind: str, spec: RunSpec, result: RunResult) -> None:
        self.ended.add((spec.run_key, spec.attempt))
        if spec.run_key not in self.run_ids:
            if result.status == KILLED:
                return  # interrupted before it started: it never ran, and runs again on resume
            # Its executor died before the start reached us: the run still gets a child run showing why.
            where = {"node": result.tags.get("node", ""), "started_at_ms": result.started_at_ms}
            self._guard(f"start {spec.name}", self._open_child, spec, where)
        run_id = self.run_ids.get(spec.run_key)
        if run_id is None:
            return
        if kind == "end":
            self._guard(f"end {spec.name}", self.store.end_child, run_id, result)
            return
        self._guard(f"retry {spec.name}", self.store.log_points, run_id, result.curve_tail)
        self._guard(f"retry {spec.name}", self.store.log, run_id, None, None,
                    {f"attempt_{spec.attempt}.error": result.error or "",
                     f"attempt_{spec.attempt}.traceback": result.traceback or ""})
