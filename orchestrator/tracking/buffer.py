"""Writes that wait out an outage: ops go to MLflow in order; while the server is unreachable they are kept in memory
and in the launch's journal, and replayed in order, from the first one kept, once it answers again."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, ContextManager

from orchestrator.environ import scoped_env
from orchestrator.tracking import index
from orchestrator.tracking.index import IndexRows
from orchestrator.tracking.journal import Journal
from orchestrator.tracking.ops import PARENT, Op, apply, apply_in_order, coalesce, describe
from orchestrator.tracking.store import MlflowStore, TrackingUnreachable

log = logging.getLogger(__name__)
# MLflow's REST client retries a refused connection or a 5xx 7 times with exponential backoff (~2 min) by default;
# the writer fails fast instead, keeps the write, and asks again every `PROBE_EVERY_S`.
FAIL_FAST_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PROBE_EVERY_S = 2.0
# Ends the error line of writes left in a journal (the driver skips analysis then: its data is not in MLflow yet).
JOURNALED = "they are replayed by the next launch"


def fail_fast_http() -> ContextManager[None]:
    """MLflow's REST client fails fast inside this block (for the driver's reads at launch start), then as before."""
    return scoped_env(FAIL_FAST_HTTP)


class OutageBuffer:
    """Applies one launch's ops in order, online or, during an outage, later.

    In the foreground (the default) `submit` writes at once. In the `background`, as the writer actor runs it, a
    thread applies what was submitted: whatever arrived while it was writing goes out together, coalesced per run
    (`ops.coalesce`), so a busy store gets fewer, larger writes instead of a growing queue, and the caller never waits
    on the store. `drain` waits until everything submitted is written (or kept for later)."""

    def __init__(self, store: MlflowStore, journal: Journal, background: bool = False) -> None:
        self.store, self.journal = store, journal
        # Run id of each target; run name of each, for messages; targets whose run could not be created.
        self.ids: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.lost: set[str] = set()
        self.queue: list[Op] = []
        self.errors: list[str] = []
        self.down_since: float | None = None
        self._probed_at = 0.0
        self._journal_error: str | None = None
        # Called by the background thread when the server answers again after an outage.
        self.on_back: Callable[[], None] = lambda: None
        # The launch's child runs as written, for the sweep index (orchestrator/tracking/index.py).
        self.index = IndexRows()
        self.stats = {"ops": 0, "writes": 0, "points_in": 0, "points_out": 0, "backlog_max": 0}
        self._lock = threading.RLock()  # held while ops are applied
        self._arrived = threading.Condition()
        self._incoming: list[Op] = []
        # When each child run's end not yet written arrived (monotonic seconds, oldest first), and how many of them
        # the batch being written holds.
        self._ends: deque[float] = deque()
        self._batch_ends = 0
        self._busy = self._stopping = False
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="tracking-writes", daemon=True)
            self._thread.start()

    @property
    def offline(self) -> bool:
        return self.down_since is not None

    @property
    def background(self) -> bool:
        return self._thread is not None

    def submit(self, op: Op) -> None:
        """Apply `op` (now, or in the background), or, while the server is unreachable, keep it with those before it.
        An op marked `droppable` (a heartbeat) is never kept: late, it is worth nothing."""
        if op["op"] == "create":
            self.names[op["target"]] = op["name"]
        self.stats["points_in"] += _points(op)
        if self._thread is None:
            with self._lock:
                self._apply_all([(op, [op])])
            return
        with self._arrived:
            self._incoming.append(op)
            if _is_end(op):
                self._ends.append(time.monotonic())
            self.stats["backlog_max"] = max(self.stats["backlog_max"], len(self._incoming))
            self._arrived.notify()

    def try_now(self, op: Op) -> None:
        """Apply `op` if the server is reachable; never keep it (a late heartbeat is worth nothing)."""
        if not self.offline:
            self.submit({**op, "droppable": True})

    def lag(self) -> float:
        """How far behind the writes are: seconds the oldest run end not yet written has waited. Ends, not curve
        points: points of running runs fold into one write per run and cycle (their backlog stays one cycle's worth),
        while ends that wait grow with every run that ends. While the server is unreachable ends are kept, not
        waiting."""
        with self._arrived:
            return time.monotonic() - self._ends[0] if self._ends else 0.0

    def drain(self, timeout_s: float | None = None) -> bool:
        """Wait until everything submitted is applied or kept; whether it is (False: `timeout_s` passed first)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._arrived:
            while self._incoming or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._arrived.wait(left)
        return True

    def stop(self) -> None:
        """Write what was submitted, then end the background thread."""
        if self._thread is not None:
            self.drain()
            with self._arrived:
                self._stopping = True
                self._arrived.notify_all()
            self._thread.join()

    def poll(self) -> bool:
        """While offline, at most every `PROBE_EVERY_S`: if the server answers, replay what waits, then go online;
        whether this call found it back. (In the background the thread polls by itself.)"""
        if self._thread is not None:
            return False
        with self._lock:
            return self._poll()

    def _poll(self) -> bool:
        if not self.offline or time.monotonic() - self._probed_at < PROBE_EVERY_S:
            return False
        self._probed_at = time.monotonic()
        if not self.store.ping():
            return False
        done = apply_in_order(self.store, self.ids, self.queue, self._failed)
        del self.queue[:done]
        if self.queue:
            return False
        log.warning("MLflow at %s answers again: the %d writes kept during the outage are in", self.store.uri, done)
        self.journal.delete()
        self.down_since = None
        return True

    def outage(self) -> str | None:
        """What waits for the server, while it is unreachable."""
        if self.down_since is None:
            return None
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.down_since))
        kept = f"lost ({self._journal_error})" if self._journal_error else f"kept in {self.journal.path}"
        return f"MLflow at {self.store.uri} unreachable since {since}: {len(self.queue)} writes {kept}"

    def leave_for_later(self) -> str:
        """Stop waiting: leave the journal on disk for the next launch (`replay_journals`) and say so."""
        with self._lock:
            message = f"{self.outage()}; {JOURNALED} that tracks to {self.store.uri}"
            self.journal.keep()
            self.queue.clear()
            self.down_since = None
            return message

    def write_index(self, name: str, listing: list[str] | None) -> str | None:
        """Log the index file of this writer's runs on the launch's parent run, when every one of its writes went
        straight in (else readers read its runs from MLflow), and with a `listing` (the parent's other index files)
        list them all on the parent. The file's path, or None when none was written; a failure here only costs
        readers time."""
        with self._lock:
            parent = self.ids.get(PARENT)
            if parent is None or not self.index.complete or self.offline or self.errors:
                return None
            try:
                self.store.log_files(parent, {name: self.index.encode(self.store.redact)}, index.FOLDER)
                if listing is not None:
                    self.store.log(parent, tags={index.INDEX_TAG: index.listed(listing, name), index.OPEN_TAG: "0"})
                return f"{index.FOLDER}/{name}"
            except Exception as exc:  # noqa: BLE001 - the runs are in MLflow; readers fall back to them
                log.warning("could not write the sweep index of this launch: %s", exc)
                return None

    # -- the background thread ----------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._arrived:
                while not self._incoming and not self._stopping:
                    if not self._arrived.wait(PROBE_EVERY_S if self.offline else None) and self.offline:
                        break  # time to ask the server again
                if self._stopping and not self._incoming:
                    return
                batch, self._incoming = self._incoming, []
                self._busy, self._batch_ends = True, sum(map(_is_end, batch))
            try:
                with self._lock:
                    back = self._poll()
                    for unit in coalesce(batch):
                        self._apply_all([unit])
                        self._written_ends(sum(map(_is_end, unit[1])))
                if back:
                    self.on_back()
            except Exception:  # noqa: BLE001 - the thread must outlive any one bad write
                log.exception("tracking writes failed")
            finally:
                with self._arrived:
                    self._written_ends(self._batch_ends)  # those of a batch cut short by an error: not waiting
                    self._busy = False
                    self._arrived.notify_all()

    def _written_ends(self, count: int) -> None:
        """`count` ends of the batch were applied (or kept, or dropped): they wait no longer."""
        with self._arrived:
            for _ in range(min(count, self._batch_ends, len(self._ends))):
                self._ends.popleft()
            self._batch_ends -= count

    def _apply_all(self, units: list[tuple[Op, list[Op]]]) -> None:
        """Apply each (write, the ops it stands for) in order; from the first the server does not answer, keep the
        ops. A coalesced write MLflow refuses is applied again op by op, so the error names the op at fault."""
        for write, parts in units:
            if write["target"] in self.lost:
                continue
            if self.offline:
                for op in parts:
                    self._keep(op)
                continue
            try:
                apply(self.store, self.ids, write)
            except TrackingUnreachable as exc:
                self._go_offline(exc)
                for op in parts:
                    self._keep(op)
                continue
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
                if len(parts) > 1:
                    self._apply_all([(op, [op]) for op in parts])
                elif not write.get("droppable"):
                    self._failed(write, exc)
                else:
                    log.warning("tracking write failed (%s): %s", describe(write, self.names), str(exc))
                continue
            for op in parts:
                if op["target"] != PARENT:
                    self.index.record(op, self.ids.get(op["target"]), self.ids.get(PARENT))
            self.stats["ops"] += len(parts)
            self.stats["writes"] += 1
            self.stats["points_out"] += sum(_points(op) for op in parts)

    def _go_offline(self, exc: Exception) -> None:
        log.warning("%s; keeping writes in %s until it answers", str(exc), self.journal.path)
        self.down_since, self._probed_at = time.time(), time.monotonic()

    def _keep(self, op: Op) -> None:
        if op.get("droppable") or op["target"] in self.lost:
            return
        self.index.complete = False
        self.queue.append(op)
        try:
            self.journal.append(op, self.ids)
        except OSError as exc:
            self._journal_error = self._journal_error or f"the journal {self.journal.path} could not be written: {exc}"

    def _failed(self, op: Op, exc: Exception) -> None:
        if op["target"] in self.lost:
            return
        if op["op"] == "create":
            self.lost.add(op["target"])
        self.index.complete = False
        log.error("tracking write failed (%s): %s", describe(op, self.names), str(exc))
        self.errors.append(f"{describe(op, self.names)}: {exc}")


def _is_end(op: Op) -> bool:
    return op["op"] == "end" and op["target"] != PARENT


def _points(op: Op) -> int:
    return len(op["points"]) if op["op"] == "points" else 0
