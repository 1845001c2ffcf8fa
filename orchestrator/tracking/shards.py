"""A launch's writers, sharded by run_key: the driver's handle on one or more `WriterCore` actors.

One writer is the default and the only choice for SQLite (one writer at a time per file). Against an `mlflow server`
(`tracking.writer_shards: N`), a run's messages all go to the shard of its run_key, so each shard sees its runs'
start, points and end in the order it keeps for one writer; the first shard owns the launch's parent run and its
heartbeats, the others attach to it. Each shard writes the index file of its runs; the first lists them all on the
parent when every shard wrote one.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any, Mapping

from orchestrator.errors import ConfigError

log = logging.getLogger(__name__)
# Seconds a writer may fall behind before new runs wait (`tracking.max_lag_s`).
MAX_WRITER_LAG_S = 30.0


def check_shards(uri: str, shards: Any) -> int:
    """`tracking.writer_shards`, checked against the store (ConfigError before anything runs)."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ConfigError("tracking.writer_shards", f"expected a whole number >= 1, got {shards!r}")
    if shards > 1 and not uri.startswith(("http://", "https://")):
        raise ConfigError("tracking.writer_shards", f"{shards} writers need an MLflow server (http://...); {uri} "
                          "takes one writer at a time (SQLite locks the file), so use 1")
    return shards


class ShardedWriter:
    """The writer actors of one launch; `of(run_key)` is the one a run's messages go to."""

    def __init__(self, actors: list[Any], uri: str = "") -> None:
        self.actors = actors
        self.uri = uri

    @property
    def primary(self) -> Any:
        return self.actors[0]

    def of(self, run_key: str) -> Any:
        return self.actors[zlib.crc32(run_key.encode()) % len(self.actors)] if len(self.actors) > 1 else self.actors[0]

    def open(self, experiment: str, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
             texts: Mapping[str, str], started_at_ms: int, resume: str | None = None) -> Any:
        """Open the launch on every shard; the ref of the parent run id (the first shard creates it). Without a
        parent id (the server unreachable at the start) every run goes to the first shard."""
        import ray

        parent_ref = self.primary.open_launch.remote(experiment, name, params, tags, texts, started_at_ms, resume)
        if len(self.actors) > 1:
            parent = ray.get(parent_ref)
            if parent is None:
                self.actors = self.actors[:1]
            else:
                ray.get([a.attach_launch.remote(experiment, parent, started_at_ms, shard)
                         for shard, a in enumerate(self.actors[1:], start=1)])
        return parent_ref

    def close(self, status: str, metrics: Mapping[str, float], force: bool) -> tuple[bool, list[str]]:
        """Close the other shards first (their runs' ends written, their index files), then the parent's."""
        import ray

        errors: list[str] = []
        files: list[str] | None = []
        for actor in self.actors[1:]:
            closed, failed, written = ray.get(actor.close_shard.remote(force))
            if not closed:
                return False, []
            errors += failed
            files = None if files is None or written is None else [*files, written]
        closed, failed = ray.get(self.primary.close_launch.remote(status, metrics, {"status": status}, force,
                                                                   index_files=files))
        return closed, errors + list(failed)


class WriterPace:
    """Backpressure on the launch from its writers: `hold()` is true while some shard is more than `max_lag_s`
    behind (the oldest run end it has not written has waited that long), and until it is back under half that. The
    scheduler then sends no new run (running ones go on), so the writers' backlog, what a crash of the driver's node
    could lose, and the wait at the end of the launch stay bounded, and the CPU the new runs would take goes to the
    writes. An outage does not hold runs: writes the server cannot take are kept in the journal, not waiting.

    The shards are asked at most every `poll_s`, without blocking. A writer answers after the messages sent to it
    before the question (Ray keeps a caller's order), so its lag is what it reports plus how long the answer took; and
    while an answer has not come, the lag is at least the time since the question was sent."""

    def __init__(self, writer: ShardedWriter, max_lag_s: float | None, poll_s: float = 0.25) -> None:
        self.writer, self.max_lag_s, self.poll_s = writer, max_lag_s, poll_s
        self.lag = 0.0
        self.holding = False
        # How many times new runs were held.
        self.holds = 0
        self._asked: list[Any] | None = None
        self._asked_at = float("-inf")

    def hold(self) -> bool:
        import time

        import ray

        if self.max_lag_s is None:
            return False
        now = time.monotonic()
        if self._asked is not None:
            ready, _ = ray.wait(self._asked, num_returns=len(self._asked), timeout=0)
            if len(ready) == len(self._asked):
                try:
                    self.lag, self._asked = max(ray.get(self._asked)) + now - self._asked_at, None
                except Exception as exc:  # noqa: BLE001 - a writer that died is the launch's close to report
                    log.warning("stopped pacing runs by the tracking writer: %s", exc)
                    self.max_lag_s, self.lag, self._asked = None, 0.0, None
                    return False
            else:
                self.lag = max(self.lag, now - self._asked_at)
        if self._asked is None and now - self._asked_at >= self.poll_s:
            self._asked, self._asked_at = [a.lag.remote() for a in self.writer.actors], now
        held = self.lag > (self.max_lag_s / 2 if self.holding else self.max_lag_s)
        if held and not self.holding:
            self.holds += 1
            if self.holds == 1:
                log.warning("new runs wait while the tracking writer catches up: the oldest run end it has not "
                            "written waited %.0f s (tracking.max_lag_s=%g); runs end faster than %s takes them "
                            "(docs/scale.md)",
                            self.lag, self.max_lag_s, self.writer.uri or "the store")
        self.holding = held
        return held
