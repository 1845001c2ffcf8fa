"""The single writer: every tracking write of a launch goes through one process and one MLflow client.

`WriterCore` runs as a Ray actor on the driver's node. Executors send it a run's start and the curve points its job
streams; the driver sends the run's end. They are different callers, so their messages may arrive in any order. Each
executor therefore counts the messages it sent for an attempt, and the driver passes that count with the end: the
writer applies an end (or a retry) only once it has all of that attempt's messages, and `close_launch` reports
whether anything is still outstanding, so the driver can wait for it. Nothing is dropped or applied out of order, and
the driver's dispatch never waits on the store.

Messages become ops addressed by run_key, not by MLflow run id (`ops`), applied in order by an `OutageBuffer`: when
the MLflow server is unreachable, that op and every later one are kept in memory and in a journal file on local disk,
and replayed once the server answers again (asked at most every 2 s, on incoming messages and `close_launch` polls).
`close_launch` waits for the server up to `outage_grace_s`; past that it leaves the journal for the next launch's
`replay_journals` and says so in its errors.

Executors never touch MLflow, and a SQLite file never sees concurrent writers (32 processes writing one SQLite file
directly gave "database is locked" on 2 of 32 runs here; writing from the driver's own thread held its GIL and slowed
dispatch 4x).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Sequence

from orchestrator.records import KILLED, CurvePoint, RunResult, RunSpec
from orchestrator.tracking import index, ops
from orchestrator.tracking.buffer import FAIL_FAST_HTTP, OutageBuffer
from orchestrator.tracking.journal import Journal, journal_dir, journal_name
from orchestrator.tracking.orphans import HEARTBEAT_TAG

Attempt = tuple[str, int]
# Seconds `close_launch` keeps answering not-closed while the server is unreachable, waiting for it to come back.
OUTAGE_GRACE_S = 300.0


class WriterCore:
    """Writes one launch at a time: its parent run, a child run per run_key, their curves and results.

    Runs in a process of its own: it sets MLflow's HTTP retries low (`FAIL_FAST_HTTP`) so an outage shows in seconds."""

    def __init__(self, uri: str, journal_folder: str | None = None, secrets: list[str] | None = None,
                 credentials: Mapping[str, str] | None = None, background: bool = False,
                 niceness: int | None = None) -> None:
        """`credentials`: the driver's MLflow credentials (`tracking.auth.tracking_credentials`), sent from here on.
        `background`: writes go out from a thread of their own, coalesced (`OutageBuffer`), as the actor runs them;
        in the foreground every message is written before its call returns (in-process use and tests).
        `niceness`: the driver's, taken where this process may (ahead of executors on its node:
        execution/priority.py)."""
        from orchestrator.execution.priority import renice
        from orchestrator.tracking.auth import use_credentials

        self.niceness = renice(niceness) if niceness is not None else None

        os.environ.update(FAIL_FAST_HTTP)
        # MLflow prints a "View run ... at: <url>" line for every run it ends on a server: 10,000 lines on the driver.
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
        use_credentials(credentials or {})
        self.uri, self.background = uri, background
        # Values of the driver's secret-named environment variables, never written (this process's env may differ).
        self.secrets = secrets
        self.journal_folder = Path(journal_folder) if journal_folder else journal_dir(uri)
        self.buffer: OutageBuffer | None = None
        self._reset("")

    def _reset(self, sweep: str) -> None:
        self.sweep = sweep
        # Run_keys given a child run, messages received per attempt, points that came before their run's start.
        self.children: set[str] = set()
        self.received: dict[Attempt, int] = {}
        self.early: dict[str, list[CurvePoint]] = {}
        # Ends and retries waiting for the rest of their attempt's messages: (kind, spec, result, expected count).
        self.waiting: dict[Attempt, tuple[str, RunSpec, RunResult, int]] = {}
        self.ended: set[Attempt] = set()
        # The latest attempt of each run_key whose start was applied.
        self.started: dict[str, int] = {}
        self.closing_since: float | None = None
        # The launch's index file and the ones its parent listed before (None: the launch is not indexed).
        self.index_file = ""
        self.index_before: list[str] | None = None
        self.index_written: str | None = None
        # False for a shard that writes runs of a launch whose parent another shard owns.
        self.owns_parent = True
        # Store calls and their seconds spent writing the launch's notes (`describe`).
        self.notes_calls, self.notes_seconds = 0, 0.0

    def open_launch(self, experiment: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                    texts: Mapping[str, str], started_at_ms: int, resume: str | None = None) -> str | None:
        """Create the launch's parent run (started when the driver started the launch) and its artifacts; or, given
        `resume`, the parent run of an earlier launch, continue that one (running again, its params kept). Returns
        the parent's run id; None if the server became unreachable before it was created."""
        from orchestrator.tracking.store import MlflowStore

        if self.buffer is not None:
            self.buffer.stop()
            if self.buffer.offline:
                self.buffer.leave_for_later()  # the last launch never closed
        journal = Journal(self.journal_folder / journal_name(experiment, started_at_ms), self.uri, experiment)
        self.buffer = OutageBuffer(MlflowStore(self.uri, experiment, self.secrets), journal, self.background)
        self.buffer.on_back = self._back_online
        self._reset(experiment)
        self.index_file = index.file_name(started_at_ms)
        if resume is not None:
            self.buffer.ids[ops.PARENT] = resume
            self.buffer.submit(ops.reopen())
            # Its children so far are indexed (or not); this launch's join them when it closes with every write in.
            self.index_before = self._indexed_so_far(resume)
            if self.index_before is not None:
                self.buffer.submit(ops.log(ops.PARENT, tags={index.OPEN_TAG: "1"}))
            return resume
        self.index_before = []
        self.buffer.submit(ops.create_parent(uuid.uuid4().hex, name, params, tags, started_at_ms))
        for path, text in texts.items():
            self.buffer.submit(ops.log_text(text, path))
        self.buffer.drain()
        return self.buffer.ids.get(ops.PARENT)

    def attach_launch(self, experiment: str, parent_id: str, started_at_ms: int, shard: int) -> None:
        """Write this shard's runs of a launch whose parent run another shard created (`tracking/shards.py`)."""
        from orchestrator.tracking.store import MlflowStore

        if self.buffer is not None:
            self.buffer.stop()
        journal = Journal(self.journal_folder / journal_name(experiment, started_at_ms), self.uri, experiment)
        self.buffer = OutageBuffer(MlflowStore(self.uri, experiment, self.secrets), journal, self.background)
        self._reset(experiment)
        self.buffer.ids[ops.PARENT] = parent_id
        self.owns_parent = False
        self.index_file, self.index_before = index.file_name(started_at_ms, shard), []

    def close_shard(self, force: bool = False) -> tuple[bool, list[str], str | None]:
        """A shard's part of closing: every end applied and its index file written; (closed, failed writes, the
        index file or None)."""
        closed, errors = self.close_launch("", {}, {}, force)
        return closed, errors, self.index_written

    # -- from executors -------------------------------------------------------------------------------------------
    def start(self, spec: RunSpec, where: Mapping[str, Any], *opened: Any) -> None:
        """An attempt began on an executor (`opened`: this launch's parent run id, resolved before this runs)."""
        self._poll()
        attempt = (spec.run_key, spec.attempt)
        # A start that comes after a later attempt's (executors are different callers: their messages race) is only
        # counted: its tags would overwrite the running attempt's.
        if attempt not in self.ended and spec.attempt >= self.started.get(spec.run_key, 0):
            self.started[spec.run_key] = spec.attempt
            self._open_child(spec, where)
        self._count(attempt)

    def points(self, run_key: str, attempt: int, points: Sequence[CurvePoint]) -> None:
        """Curve points from a running job; kept until its run exists if they arrive first."""
        self._poll()
        if run_key in self.children:
            self._live().submit(ops.log_points(run_key, points))
        else:
            self.early.setdefault(run_key, []).extend(points)
        self._count((run_key, attempt))

    # -- from the driver ------------------------------------------------------------------------------------------
    def end(self, spec: RunSpec, result: RunResult, expected: int) -> None:
        """A run's final result, applied once the executor's `expected` messages for this attempt are in."""
        self._poll()
        self._wait_for(("end", spec, result, expected))

    def retry(self, spec: RunSpec, failed: RunResult, expected: int) -> None:
        """A failed attempt that will run again: its error and traceback become attempt tags."""
        self._poll()
        self._wait_for(("retry", spec, failed, expected))

    def launch_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """How a closed-loop search stands (budget spent, hypervolume, interval widths), on the parent run at
        `step` = runs ended, so the MLflow UI charts it converging."""
        self._poll()
        self._live().submit(ops.log(ops.PARENT, metrics=metrics, step=step))

    def heartbeat(self) -> None:
        """Tell later launches this launch's driver is alive (tag on the parent run); skipped while offline."""
        if self.buffer is None or self.closing_since is not None:
            return
        self.buffer.poll()
        self._beat()

    def _poll(self) -> None:
        """Try an unreachable server again (in the foreground; the background thread asks by itself)."""
        if self._live().poll():
            self._back_online()

    def _back_online(self) -> None:
        """The moment the server answers again, beat at once: no heartbeat went out while it was down, and another
        host's launch must not take this live driver for a dead one."""
        if self.closing_since is None:
            self._beat()

    def _beat(self) -> None:
        assert self.buffer is not None
        if ops.PARENT in self.buffer.ids:
            self.buffer.try_now(ops.log(ops.PARENT, tags={HEARTBEAT_TAG: str(int(time.time()))}))

    def lag(self) -> float:
        """Seconds the oldest run end not yet written has waited (0 in the foreground, or before a launch opens)."""
        return 0.0 if self.buffer is None else self.buffer.lag()

    def stats(self) -> dict[str, int]:
        """How the launch's writes went: ops received and applied, store write calls (their seconds and CPU seconds;
        the notes' apart), curve points in and out, the most ops ever waiting to be written (the backlog), and this
        process's niceness (None: left as started)."""
        if self.buffer is None:
            return {}
        store = self.buffer.store
        return {**self.buffer.stats, "store_calls": store.write_calls, "store_seconds": store.write_seconds,
                "store_cpu_seconds": store.write_cpu_seconds, "notes_calls": self.notes_calls,
                "notes_seconds": self.notes_seconds, "kept": len(self.buffer.queue), "niceness": self.niceness}

    def outage(self) -> str | None:
        """While the server is unreachable: since when, and how many writes wait where (else None)."""
        return self.buffer.outage() if self.buffer is not None else None

    def close_launch(self, status: str, metrics: Mapping[str, float], tags: Mapping[str, str], force: bool = False,
                     outage_grace_s: float = OUTAGE_GRACE_S,
                     index_files: list[str] | None = ()) -> tuple[bool, list[str]]:
        """End the parent run once every end is applied: (closed, failed writes). With `force`, apply what still
        waits as it is (the driver's deadline passed: an executor's messages were lost with it). While the server is
        unreachable, answer not-closed for up to `outage_grace_s` after the first call, then leave the writes in the
        journal for the next launch, with one error saying where they are."""
        if self.buffer is None:
            return True, []
        self.buffer.poll()
        if self.waiting and not force:
            return False, []
        for kind, spec, result, _ in list(self.waiting.values()):
            self._apply(kind, spec, result)
        self.waiting.clear()
        if not self.buffer.drain(timeout_s=0.5):
            return False, []  # writes still going out: the driver asks again
        if self.closing_since is None:
            self.closing_since = time.monotonic()
            # The other shards' index files (None: one of them has none, so the launch is not indexed).
            listing = None if self.index_before is None or index_files is None else [*self.index_before,
                                                                                       *index_files]
            self.index_written = self.buffer.write_index(self.index_file, listing if self.owns_parent else None)
            if self.owns_parent:
                for op in ops.end_parent(status, metrics, tags):
                    self.buffer.submit(op)
            self.buffer.drain()
        if self.buffer.offline:
            if time.monotonic() - self.closing_since < outage_grace_s:
                return False, []
            self.buffer.errors.append(self.buffer.leave_for_later())
        return True, list(self.buffer.errors)

    def describe(self, run_tags: Sequence[tuple[str, Mapping[str, str]]],
                 experiment_tags: Mapping[str, str]) -> list[str]:
        """Write a finished launch's descriptions (its notes: tracking/notes.py), tags on runs by MLflow run id and
        on the sweep's experiment, while the driver builds the launch's report. Returns the writes that failed: a
        description is never worth failing a launch for."""
        from orchestrator.tracking.store import MlflowStore

        self._live()  # a launch is open: its experiment is the sweep's
        # A store of their own, so the launch's store calls stay its runs' and the notes are counted apart.
        store = MlflowStore(self.uri, self.sweep, self.secrets)
        failed: list[str] = []
        for key, value in experiment_tags.items():
            try:
                store.set_experiment_tag(key, value)
            except Exception as exc:  # noqa: BLE001 - reported to the driver, which logs it
                failed.append(f"experiment tag {key}: {exc}")
        for run_id, tags in run_tags:
            try:
                store.log(run_id, tags=tags)
            except Exception as exc:  # noqa: BLE001 - as above
                failed.append(f"tags {', '.join(tags)} of run {run_id}: {exc}")
        self.notes_calls += store.write_calls
        self.notes_seconds += store.write_seconds
        return failed

    # -- internals ------------------------------------------------------------------------------------------------
    def _indexed_so_far(self, parent_id: str) -> list[str] | None:
        """The index files a continued launch's parent lists (None: its children are read from the runs)."""
        try:
            return index.files_of(self._live().store.run_tags(parent_id))
        except Exception:  # noqa: BLE001 - unknown means unindexed: readers fall back to the runs
            return None

    def _live(self) -> OutageBuffer:
        assert self.buffer is not None, "open_launch comes first"
        return self.buffer

    def _open_child(self, spec: RunSpec, where: Mapping[str, Any]) -> None:
        if spec.run_key in self.children:  # a retry's new attempt
            self._live().submit(ops.log(spec.run_key, tags={
                "attempt": str(spec.attempt), "status": "RUNNING", "node": str(where.get("node", "")),
                "ray_node": str(where.get("ray_node", ""))}))
            return
        self.children.add(spec.run_key)
        if self.closing_since is not None and self.owns_parent:
            # A start that came after the launch closed (its executor's message was late): the launch's index file
            # does not have this run, so readers read the launch's runs from MLflow.
            self._live().submit(ops.log(ops.PARENT, tags={index.OPEN_TAG: "1"}))
        self._live().submit(ops.create_child(self.sweep, spec, where))
        early = self.early.pop(spec.run_key, [])
        if early:
            self._live().submit(ops.log_points(spec.run_key, early))

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
        if spec.run_key not in self.children:
            if result.status == KILLED:
                return  # interrupted before it started: it never ran, and runs again on resume
            # Its executor died before the start reached us: the run still gets a child run showing why.
            self._open_child(spec, {"node": result.tags.get("node", ""), "started_at_ms": result.started_at_ms})
        if kind == "end":
            for op in ops.end_child(result):
                self._live().submit(op)
            return
        if result.curve_tail:
            self._live().submit(ops.log_points(spec.run_key, result.curve_tail))
        prefix = f"attempt_{spec.attempt}."
        self._live().submit(ops.log(spec.run_key, tags={prefix + "error": result.error or "",
                                                        prefix + "traceback": result.traceback or "",
                                                        prefix + "cause": result.tags.get("cause", "")}))
