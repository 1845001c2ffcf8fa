"""The outage journal: a launch's tracking writes kept on local disk while its MLflow server is unreachable.

One JSON-lines file per launch in a folder per tracking URI (`journal_dir`): a header line (URI, experiment, the run
ids known when the outage began, the parent's included), then one op per line (`orchestrator.tracking.ops`), flushed
as written. The writer that owns a file holds an exclusive lock on it and deletes it once the server has taken every
op. A file left behind (the driver died, or gave up waiting for the server) is applied by `replay_journals`, which
the next launch on that URI calls before reading which runs are done.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import IO, Any, Mapping

from orchestrator.errors import TrackingError
from orchestrator.tracking.ops import Op, apply_in_order, describe

log = logging.getLogger(__name__)
ENV_DIR = "ORCHESTRATOR_JOURNAL_DIR"
# At most this long between fsyncs of an open journal (every op is flushed to the OS at once).
FSYNC_EVERY_S = 1.0


def journal_dir(uri: str) -> Path:
    """Where journals for `uri` go: $ORCHESTRATOR_JOURNAL_DIR (default ~/.cache/orchestrator/journal)/<uri hash>."""
    base = os.environ.get(ENV_DIR) or Path.home() / ".cache" / "orchestrator" / "journal"
    return Path(base) / hashlib.sha256(uri.encode()).hexdigest()[:16]


def journal_name(experiment: str, started_at_ms: int) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)
    return f"{safe}-{started_at_ms}-{os.getpid()}.jsonl"


class Journal:
    """One launch's journal file, created with the first op kept and locked while this process writes it."""

    def __init__(self, path: Path, uri: str, experiment: str) -> None:
        self.path, self.uri, self.experiment = path, uri, experiment
        self._file: IO[str] | None = None
        self._synced_at = 0.0

    def append(self, op: Op, ids: Mapping[str, str]) -> None:
        if self._file is None:
            self._open(ids)
        assert self._file is not None
        self._file.write(json.dumps(op, default=str) + "\n")
        self._file.flush()
        if time.monotonic() - self._synced_at > FSYNC_EVERY_S:
            os.fsync(self._file.fileno())
            self._synced_at = time.monotonic()

    def _open(self, ids: Mapping[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.close()
            raise
        header = {"journal": 1, "uri": self.uri, "experiment": self.experiment, "ids": dict(ids),
                  "created_at_s": time.time()}
        file.write(json.dumps(header) + "\n")
        self._file = file

    def delete(self) -> None:
        """Every op reached the server: the file goes."""
        if self._file is not None:
            self.path.unlink(missing_ok=True)
            self._close()

    def keep(self) -> None:
        """Leave the file on disk, synced and unlocked, for `replay_journals`."""
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._close()

    def _close(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None


def read_journal(path: Path) -> tuple[dict[str, Any], list[Op]]:
    """A journal's header and ops; a last line cut short by a crash is left out."""
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number < len(lines) - 1:
                raise
    return records[0], records[1:]


def replay_journals(uri: str, folder: Path | None = None) -> int:
    """Apply the journals earlier launches left for `uri` (in `folder`, default `journal_dir(uri)`), oldest first,
    and delete each one applied; returns how many ops were replayed (an op MLflow rejects is logged and dropped). A
    journal a live writer still holds is left to it. Raises `TrackingError`, keeping the journal, if the server does
    not answer."""
    applied = 0
    for path in sorted((folder or journal_dir(uri)).glob("*.jsonl")):
        try:
            with path.open("r+", encoding="utf-8") as held:
                if _claim(held):
                    applied += _replay_file(uri, path)
                    path.unlink()
        except FileNotFoundError:
            continue  # its writer applied it and deleted it meanwhile
    return applied


def _claim(held: IO[str]) -> bool:
    """Lock the open file; False while a live writer holds it, or when it was deleted since it was listed."""
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return os.fstat(held.fileno()).st_nlink > 0


def _replay_file(uri: str, path: Path) -> int:
    from orchestrator.tracking.store import MlflowStore

    header, ops = read_journal(path)
    if header.get("uri") != uri:
        raise TrackingError(f"journal {path} is for {header.get('uri')}, not {uri}; move it to its own folder")
    ids: dict[str, str] = dict(header.get("ids", {}))

    def failed(op: Op, exc: Exception) -> None:
        log.warning("journal %s: %s failed and was dropped: %s", path, describe(op, {}), str(exc))

    store = MlflowStore(uri, header["experiment"])
    done = apply_in_order(store, ids, ops, failed) if store.ping() else 0
    if done < len(ops):
        raise TrackingError(f"MLflow tracking server at {uri} is unreachable: {len(ops) - done} writes of an earlier "
                            f"launch are still kept in {path}; they are replayed by the next launch on {uri}")
    return done
