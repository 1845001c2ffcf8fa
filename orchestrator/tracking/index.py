"""The sweep index: what each launch wrote to its child runs, kept as one small artifact on the launch's parent run.

Reading a sweep back through `search_runs` costs ~4.4 ms per run (every param, metric and tag of every run of every
launch): 44 s for a 10,000-run sweep, paid by every relaunch, `orchestrator status` and `load_sweep`. The writer
already holds what it wrote, so when a launch closes with every write in, it logs its children as rows
(`orchestrator/index-<ms>.json.gz` on the parent run) and lists the file in the parent's `orchestrator.index` tag.
A reader then lists the launches (a handful of runs), downloads their index files, and reads through `search_runs`
only the children of launches without a usable index: one still running or that died, one continued (`open`), one
whose runs were changed after it closed (recost marks it). MLflow stays the source of truth: anything short of a
complete index falls back to reading the runs themselves.

Rows hold what `search_runs` gives (ids, name, status, times, params, latest metrics, tags) except the long markdown
notes (`mlflow.note.content`), which are descriptions for the UI and are left out of every read.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

INDEX_TAG = "orchestrator.index"
# "1" while a continued launch writes children its index files do not list yet, or after its runs were changed.
OPEN_TAG = "orchestrator.index.open"
FOLDER = "orchestrator"
NOTE = "mlflow.note.content"
FORMAT = 1


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None


@dataclass(frozen=True)
class RunData:
    params: Mapping[str, str]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class IndexedRun:
    """A child run as its index row has it, shaped like `mlflow.entities.Run` (`.info`, `.data`) for the readers."""

    info: RunInfo
    data: RunData


@dataclass
class _Row:
    run_id: str
    name: str
    start_ms: int
    status: str = "RUNNING"
    end_ms: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Per metric: (step, timestamp, value) of its latest point, MLflow's order for latest_metrics.
    latest: dict[str, tuple[int, int, float]] = field(default_factory=dict)

    def point(self, key: str, value: float, step: int, timestamp_ms: int) -> None:
        candidate = (int(step), int(timestamp_ms), float(value))
        if key not in self.latest or candidate > self.latest[key]:
            self.latest[key] = candidate


class IndexRows:
    """The rows of one launch's child runs, learnt from the ops the writer applied (`record`)."""

    def __init__(self) -> None:
        self.rows: dict[str, _Row] = {}
        # False once a write went anywhere but straight into the store (an outage, a failure): no index then.
        self.complete = True

    def record(self, op: Mapping[str, Any], run_id: str | None, parent_id: str | None) -> None:
        kind = op["op"]
        if run_id is None:
            self.complete = False
            return
        row = self.rows.get(run_id)
        if kind == "create":
            row = self.rows[run_id] = _Row(run_id, op["name"], int(op["start_ms"]))
            row.tags.update({k: str(v) for k, v in op["tags"].items() if k != NOTE})
            row.tags.update({"mlflow.runName": op["name"], **({"mlflow.parentRunId": parent_id} if parent_id else {})})
            row.params.update({k: str(v) for k, v in op["params"].items()})
            for key, value in op["metrics"].items():
                row.point(key, value, 0, op["start_ms"])
            return
        if row is None:
            self.complete = False  # a run created before this writer knew it (a continued launch's retry)
            return
        if kind == "log":
            row.params.update({k: str(v) for k, v in op["params"].items()})
            row.tags.update({k: str(v) for k, v in op["tags"].items() if k != NOTE})
            for key, value in op["metrics"].items():
                row.point(key, value, op.get("step", 0), op["timestamp_ms"])
        elif kind == "points":
            for key, value, step, timestamp_ms in op["points"]:
                row.point(key, value, step, timestamp_ms)
        elif kind == "end":
            row.status, row.end_ms = op["status"], int(op["end_ms"])
        else:
            self.complete = False

    def encode(self, redact: Callable[[str], str] = lambda text: text) -> bytes:
        """The rows as an index file, every name and text value passed through `redact` as the store does."""
        def texts(values: Mapping[str, str]) -> dict[str, str]:
            return {redact(k): redact(v) for k, v in values.items()}

        rows = [{"id": r.run_id, "name": redact(r.name), "status": r.status, "start": r.start_ms, "end": r.end_ms,
                 "params": texts(r.params), "tags": texts(r.tags), "metrics": {k: v[2] for k, v in r.latest.items()}}
                for r in self.rows.values()]
        return gzip.compress(json.dumps({"format": FORMAT, "runs": rows}, separators=(",", ":")).encode(), 5)


def decode(data: bytes) -> list[IndexedRun]:
    """The runs of one index file (ValueError for a file this version cannot read)."""
    content = json.loads(gzip.decompress(data))
    if content.get("format") != FORMAT:
        raise ValueError(f"index format {content.get('format')!r}, this version reads {FORMAT}")
    return [IndexedRun(RunInfo(r["id"], r["name"], r["status"], r["start"], r["end"]),
                       RunData(r["params"], r["metrics"], r["tags"])) for r in content["runs"]]


def files_of(tags: Mapping[str, str]) -> list[str] | None:
    """The index files a parent run lists, or None when its children must be read from the runs themselves."""
    raw = tags.get(INDEX_TAG)
    if not raw or tags.get(OPEN_TAG) == "1":
        return None
    try:
        files = json.loads(raw)
    except ValueError:
        return None
    return [str(f) for f in files] if isinstance(files, list) else None


def file_name(started_at_ms: int, shard: int = 0) -> str:
    return f"index-{started_at_ms}" + (f"-{shard}" if shard else "") + ".json.gz"


def listed(files: Sequence[str], new: str) -> str:
    """The parent's tag value: its index files so far and the new one (paths under the run's artifacts)."""
    return json.dumps([*files, f"{FOLDER}/{new}"])
