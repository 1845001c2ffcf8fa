"""A launch's writers, sharded by run_key: the driver's handle on one or more `WriterCore` actors.

One writer is the default and the only choice for SQLite (one writer at a time per file). Against an `mlflow server`
(`tracking.writer_shards: N`), a run's messages all go to the shard of its run_key, so each shard sees its runs'
start, points and end in the order it keeps for one writer; the first shard owns the launch's parent run and its
heartbeats, the others attach to it. Each shard writes the index file of its runs; the first lists them all on the
parent when every shard wrote one.
"""

from __future__ import annotations

import zlib
from typing import Any, Mapping

from orchestrator.errors import ConfigError


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

    def __init__(self, actors: list[Any]) -> None:
        self.actors = actors

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
