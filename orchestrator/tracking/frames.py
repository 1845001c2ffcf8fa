"""A sweep's runs as read back from MLflow: frozen `TrackedRun` records, and the DataFrames built from them.

Column rules of `runs_frame`:
- identity columns first: run_key, run_name, status, run_id, parent_run_id, start_time (UTC timestamp);
- then every final metric as a float column (NaN where a run lacks it), the `sweep.<path>` swept values included;
- then every param: numbers where every value in its column reads as one, else strings; JSON `null` (how a None
  in the job config is stored) is missing either way;
- a param that shares its name with a metric or an identity column is renamed `param.<name>`, a metric that
  shares its name with an identity column `metric.<name>`.
Rows are ordered by start time, oldest first, on a fresh RangeIndex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from orchestrator.records import FINISHED

IDENTITY = ("run_key", "run_name", "status", "run_id", "parent_run_id", "start_time")
PARENT_IDENTITY = ("parent_run_id", "run_name", "status", "start_time", "end_time")
# How a None in the job config is stored as a param (tracking.flatten.param_value).
JSON_NULL = "null"


@dataclass(frozen=True)
class TrackedRun:
    """One MLflow run of a sweep, as plain values."""

    run_id: str
    run_name: str
    # The run's identity across launches (None for a run the orchestrator did not write).
    run_key: str | None
    # MLflow's status: FINISHED, FAILED, KILLED, RUNNING, SCHEDULED.
    status: str
    parent_run_id: str | None
    start_time_ms: int
    end_time_ms: int | None
    params: Mapping[str, str]
    metrics: Mapping[str, float]


def tracked_run(run: Any) -> TrackedRun:
    """The plain values of an `mlflow.entities.Run`."""
    info, tags = run.info, run.data.tags
    return TrackedRun(info.run_id, info.run_name or tags.get("mlflow.runName", ""), tags.get("run_key"),
                      info.status, tags.get("mlflow.parentRunId"), info.start_time or 0, info.end_time,
                      dict(run.data.params), dict(run.data.metrics))


def newest_finished(runs: Iterable[TrackedRun]) -> list[TrackedRun]:
    """The newest FINISHED run of each run_key; runs without a run_key are kept one each."""
    best: dict[str, TrackedRun] = {}
    for run in runs:
        key = run.run_key or run.run_id
        if run.status == FINISHED and (key not in best or run.start_time_ms > best[key].start_time_ms):
            best[key] = run
    return list(best.values())


def runs_frame(runs: Sequence[TrackedRun]) -> pd.DataFrame:
    """One row per run under the column rules above."""
    runs = sorted(runs, key=lambda r: (r.start_time_ms, r.run_key or "", r.run_id))
    identity = pd.DataFrame({
        "run_key": _text([r.run_key for r in runs]),
        "run_name": _text([r.run_name for r in runs]),
        "status": _text([r.status for r in runs]),
        "run_id": _text([r.run_id for r in runs]),
        "parent_run_id": _text([r.parent_run_id for r in runs]),
        "start_time": _timestamps([r.start_time_ms for r in runs]),
    })
    metrics = _renamed(_metrics(runs), "metric.", set(IDENTITY))
    params = _params(runs).apply(_typed)
    params = _renamed(params, "param.", set(IDENTITY) | set(metrics.columns))
    return pd.concat([identity, metrics, params], axis=1)


def parents_frame(parents: Sequence[TrackedRun]) -> pd.DataFrame:
    """One row per launch, oldest first: parent_run_id, run_name, status, start_time, end_time, then its metrics."""
    parents = sorted(parents, key=lambda r: (r.start_time_ms, r.run_id))
    identity = pd.DataFrame({
        "parent_run_id": _text([r.run_id for r in parents]),
        "run_name": _text([r.run_name for r in parents]),
        "status": _text([r.status for r in parents]),
        "start_time": _timestamps([r.start_time_ms for r in parents]),
        "end_time": _timestamps([r.end_time_ms for r in parents]),
    })
    return pd.concat([identity, _renamed(_metrics(parents), "metric.", set(PARENT_IDENTITY))], axis=1)


def _metrics(runs: Sequence[TrackedRun]) -> pd.DataFrame:
    table = pd.DataFrame([dict(r.metrics) for r in runs], index=range(len(runs)), dtype=float)
    return table[sorted(table.columns)]


def _params(runs: Sequence[TrackedRun]) -> pd.DataFrame:
    table = pd.DataFrame([dict(r.params) for r in runs], index=range(len(runs)))
    return table[sorted(table.columns)]


def _typed(column: pd.Series) -> pd.Series:
    """Numbers where every present value reads as one, else the strings; JSON null is missing."""
    column = column.where(column != JSON_NULL)
    try:
        return pd.to_numeric(column)
    except (ValueError, TypeError):
        return column


def _renamed(table: pd.DataFrame, prefix: str, taken: set[str]) -> pd.DataFrame:
    return table.rename(columns={c: f"{prefix}{c}" for c in table.columns if c in taken})


def _text(values: list[str | None]) -> pd.Series:
    """Strings as pandas' default string dtype (object when there are none), None as missing."""
    return pd.Series(values, dtype=object).infer_objects()


def _timestamps(ms: list[int | None]) -> pd.Series:
    return pd.to_datetime(pd.Series(ms, dtype="float64"), unit="ms", utc=True)
