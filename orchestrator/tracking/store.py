"""One MLflow experiment per sweep: a parent run per launch, a child run per run_key, read back for resume.

The only module that talks to MLflow's client. Used from a single thread (the writer), so a SQLite store never sees
concurrent writers.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Sequence

from orchestrator.errors import TrackingError
from orchestrator.records import FINISHED, CurvePoint, RunResult, RunSpec
from orchestrator.masking import is_secret
from orchestrator.tracking.flatten import metric_name_for, number, params_of, tag_value

# log_batch accepts at most this many of each per call.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
ROLE = "orchestrator.role"


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowStore:
    """Reads and writes one sweep's experiment."""

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.uri = uri
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=uri)
        self._experiment_id: str | None = None

    # -- reading --------------------------------------------------------------------------------------------------
    def experiment_id(self, create: bool = False) -> str | None:
        if self._experiment_id is None:
            found = self.client.get_experiment_by_name(self.experiment)
            if found is not None:
                self._experiment_id = found.experiment_id
            elif create:
                self._experiment_id = self.client.create_experiment(self.experiment, self._artifact_location())
        return self._experiment_id

    def _artifact_location(self) -> str | None:
        """Artifacts of a SQLite store go next to the database file (mlartifacts/<experiment>), not into ./mlruns of
        whatever directory the writer process happens to run in; other stores keep their server's default."""
        from pathlib import Path

        prefix = "sqlite:///"
        if not self.uri.startswith(prefix):
            return None
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.experiment)
        return (Path(self.uri[len(prefix):]).resolve().parent / "mlartifacts" / folder).as_uri()

    def child_runs(self, filter_string: str = "") -> list[Any]:
        """Every child run of the sweep (all launches), newest first."""
        exp = self.experiment_id()
        if exp is None:
            return []
        query = f"tags.`{ROLE}` = 'child'" + (f" and {filter_string}" if filter_string else "")
        runs, token = [], None
        while True:
            page = self.client.search_runs([exp], query, max_results=10000, page_token=token,
                                           order_by=["attributes.start_time DESC"])
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def statuses(self) -> dict[str, str]:
        """Best status per run_key over all launches: FINISHED if any run of it finished, else the newest."""
        best: dict[str, str] = {}
        for run in self.child_runs():
            key = run.data.tags.get("run_key")
            if key and (key not in best or run.info.status == FINISHED):
                best[key] = run.info.status
        return best

    # -- writing --------------------------------------------------------------------------------------------------
    def create_parent(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                      start_time_ms: int | None = None) -> str:
        exp = self.experiment_id(create=True)
        run = self.client.create_run(exp, run_name=name, tags={ROLE: "parent", **tags},
                                     start_time=start_time_ms or _now_ms())
        self.log(run.info.run_id, params=params_of(params))
        return run.info.run_id

    def create_child(self, parent_id: str, sweep: str, spec: RunSpec, where: Mapping[str, Any]) -> str:
        tags = {ROLE: "child", "mlflow.parentRunId": parent_id, "run_key": spec.run_key, "sweep": sweep,
                "attempt": str(spec.attempt), "status": "RUNNING", "node": str(where.get("node", "")),
                "ray_node": str(where.get("ray_node", "")),
                "device": ",".join(f"gpu:{g}" for g in where.get("gpu_ids", [])) or "cpu"}
        run = self.client.create_run(self.experiment_id(create=True), run_name=spec.name, tags=tags,
                                     start_time=int(where.get("started_at_ms") or _now_ms()))
        params = {**params_of(spec.job), **params_of(vars(spec.resources), "resources.")}
        metrics = {metric_name_for(p): number(v) for p, v in spec.varied.items() if not is_secret(p)}
        self.log(run.info.run_id, params=params, metrics={k: v for k, v in metrics.items() if v is not None})
        return run.info.run_id

    def log_points(self, run_id: str, points: Sequence[CurvePoint]) -> None:
        from mlflow.entities import Metric

        for chunk in _chunks([Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points], MAX_METRICS):
            self.client.log_batch(run_id, metrics=chunk)

    def end_child(self, run_id: str, result: RunResult) -> None:
        tags = {**result.tags, "status": result.status, "attempt": str(result.attempt)}
        if result.error:
            tags["error"] = result.error
        if result.traceback:
            tags["traceback"] = result.traceback
        self.log_points(run_id, result.curve_tail)
        self.log(run_id, metrics=dict(result.metrics), tags=tags)
        self.client.set_terminated(run_id, result.status, end_time=result.ended_at_ms or _now_ms())

    def end_parent(self, run_id: str, status: str, metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
        self.log(run_id, metrics=dict(metrics), tags=dict(tags))
        self.client.set_terminated(run_id, status)

    def reopen(self, run_id: str) -> None:
        """A terminated parent run running again, for a launch that continues it."""
        self.client.update_run(run_id, status="RUNNING")

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_files(self, run_id: str, files: Mapping[str, bytes], folder: str) -> None:
        """Log in-memory files (JSON, CSV, PNG) as artifacts of a run, under `folder/`."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            self.client.log_artifacts(run_id, tmp, folder)

    def log(self, run_id: str, params: Mapping[str, str] | None = None, metrics: Mapping[str, float] | None = None,
            tags: Mapping[str, Any] | None = None) -> None:
        """Everything in as few log_batch calls as MLflow's limits allow."""
        from mlflow.entities import Metric, Param, RunTag

        now = _now_ms()
        all_params = [Param(k, v) for k, v in (params or {}).items()]
        all_metrics = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        all_tags = [RunTag(k, tag_value(v)) for k, v in (tags or {}).items()]
        while all_params or all_metrics or all_tags:
            p, all_params = all_params[:MAX_PARAMS], all_params[MAX_PARAMS:]
            m, all_metrics = all_metrics[:MAX_METRICS], all_metrics[MAX_METRICS:]
            t, all_tags = all_tags[:MAX_TAGS], all_tags[MAX_TAGS:]
            try:
                self.client.log_batch(run_id, metrics=m, params=p, tags=t)
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                raise TrackingError(f"MLflow at {self.uri} refused a write to run {run_id}: {exc}") from exc
