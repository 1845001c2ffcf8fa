"""Writes that wait out an outage: ops go to MLflow in order; while the server is unreachable they are kept in memory
and in the launch's journal, and replayed in order, from the first one kept, once it answers again."""

from __future__ import annotations

import logging
import time
from typing import ContextManager

from orchestrator.environ import scoped_env
from orchestrator.tracking.journal import Journal
from orchestrator.tracking.ops import Op, apply, apply_in_order, describe
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
    """Applies one launch's ops in order, online or, during an outage, later."""

    def __init__(self, store: MlflowStore, journal: Journal) -> None:
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

    @property
    def offline(self) -> bool:
        return self.down_since is not None

    def submit(self, op: Op) -> None:
        """Apply `op` now, or, while the server is unreachable, keep it with those before it."""
        if op["op"] == "create":
            self.names[op["target"]] = op["name"]
        if op["target"] in self.lost:
            return
        if not self.offline:
            try:
                apply(self.store, self.ids, op)
                return
            except TrackingUnreachable as exc:
                self._go_offline(exc)
            except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
                self._failed(op, exc)
                return
        self._keep(op)

    def try_now(self, op: Op) -> None:
        """Apply `op` if the server is reachable; never keep it (a late heartbeat is worth nothing)."""
        if self.offline:
            return
        try:
            apply(self.store, self.ids, op)
        except TrackingUnreachable as exc:
            self._go_offline(exc)
        except Exception as exc:  # noqa: BLE001 - one failed write must not stop the others
            log.warning("tracking write failed (%s): %s", describe(op, self.names), str(exc))

    def poll(self) -> None:
        """While offline, at most every `PROBE_EVERY_S`: if the server answers, replay what waits, then go online."""
        if not self.offline or time.monotonic() - self._probed_at < PROBE_EVERY_S:
            return
        self._probed_at = time.monotonic()
        if not self.store.ping():
            return
        done = apply_in_order(self.store, self.ids, self.queue, self._failed)
        del self.queue[:done]
        if not self.queue:
            log.warning("MLflow at %s answers again: the %d writes kept during the outage are in", self.store.uri, done)
            self.journal.delete()
            self.down_since = None

    def outage(self) -> str | None:
        """What waits for the server, while it is unreachable."""
        if self.down_since is None:
            return None
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.down_since))
        kept = f"lost ({self._journal_error})" if self._journal_error else f"kept in {self.journal.path}"
        return f"MLflow at {self.store.uri} unreachable since {since}: {len(self.queue)} writes {kept}"

    def leave_for_later(self) -> str:
        """Stop waiting: leave the journal on disk for the next launch (`replay_journals`) and say so."""
        message = f"{self.outage()}; {JOURNALED} that tracks to {self.store.uri}"
        self.journal.keep()
        self.queue.clear()
        self.down_since = None
        return message

    def _go_offline(self, exc: Exception) -> None:
        log.warning("%s; keeping writes in %s until it answers", str(exc), self.journal.path)
        self.down_since, self._probed_at = time.time(), time.monotonic()

    def _keep(self, op: Op) -> None:
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
        log.error("tracking write failed (%s): %s", describe(op, self.names), str(exc))
        self.errors.append(f"{describe(op, self.names)}: {exc}")
