"""One MLflow experiment per sweep: a parent run per launch, a child run per run_key, read back for resume.

The only module that talks to MLflow's client, and where its errors become the project's: an unreachable server
(refused or reset connection, timeout, 5xx after the client's retries) is `TrackingUnreachable`, any other failed
write `TrackingError`. Used from a single thread (the writer), so a SQLite store never sees concurrent writers.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Mapping, Sequence

from orchestrator.environ import scoped_env
from orchestrator.errors import TrackingError
from orchestrator.masking import redact, secret_env_values
from orchestrator.records import FINISHED, KILLED, PRUNED, CurvePoint
from orchestrator.tracking import index
from orchestrator.tracking.flatten import params_of, tag_value

# log_batch accepts at most this many of each per call.
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
ROLE = "orchestrator.role"


class TrackingUnreachable(TrackingError):
    """The MLflow tracking server did not answer (down, restarting, overloaded): a write may be tried again later."""


def run_status(run: Any) -> str:
    """A child run's status as the orchestrator sees it: MLflow's, except PRUNED for a run stopped early."""
    return PRUNED if run.info.status == KILLED and run.data.tags.get("status") == PRUNED else run.info.status


def best_statuses(runs: Iterable[Any]) -> dict[str, str]:
    """Best status per run_key of child runs given newest first (see `MlflowStore.statuses`)."""
    rank = {FINISHED: 2, PRUNED: 1}
    best: dict[str, str] = {}
    for run in runs:
        key, status = run.data.tags.get("run_key"), run_status(run)
        if key and (key not in best or rank.get(status, 0) > rank.get(best[key], 0)):
            best[key] = status
    return best


def _newest_first(runs: list[Any]) -> list[Any]:
    """Runs by start time, newest first; runs started in the same millisecond by run id (MLflow leaves ties in any
    order)."""
    return sorted(runs, key=lambda r: (r.info.start_time or 0, r.info.run_id), reverse=True)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_unreachable(exc: BaseException) -> bool:
    """MLflow's REST client wraps a refused/reset connection, a timeout, or 5xx answers past its retries in a plain
    MlflowException; the requests error it came from stays in the exception's context."""
    import requests

    outage = (requests.ConnectionError, requests.Timeout, requests.exceptions.RetryError,
              requests.exceptions.ChunkedEncodingError, ConnectionError, TimeoutError)
    return any(isinstance(e, outage) for e in _chain(exc))


def _reason(exc: BaseException) -> str:
    """'[Errno 111] Connection refused' rather than three nested connection-pool reprs, where there is one."""
    text = str(exc).strip()
    found = re.search(r"\[Errno -?\d+\][^\"')]*", text)
    return found.group(0).strip() if found else text.splitlines()[0][:300] if text else type(exc).__name__


class MlflowStore:
    """Reads and writes one sweep's experiment."""

    def __init__(self, uri: str, experiment: str, secrets: list[str] | None = None) -> None:
        """`secrets`: values never to write (default: this process's secret-named environment variables)."""
        import logging

        from mlflow.tracking import MlflowClient

        # MLflow says at INFO that it creates and migrates a new SQLite store's tables: nothing for the user to do.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        self.uri = uri
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=uri)
        self._experiment_id: str | None = None
        # Calls that wrote to the store (each create_run, log_batch, set_terminated, ...): for the scale benchmark.
        self.write_calls = 0
        # Their wall-clock time and the calling thread's CPU time in them.
        self.write_seconds = self.write_cpu_seconds = 0.0
        self._secrets = secret_env_values() if secrets is None else secrets

    @contextmanager
    def _vendor(self, write: str | None = None) -> Iterator[None]:
        """Translate MLflow's errors: unreachable and refused credentials always (`auth.TrackingAuthError`); any other
        only for a `write` (reads keep MLflow's)."""
        from orchestrator.tracking.auth import auth_refusal

        self.write_calls += write is not None
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        except TrackingError:
            raise
        except Exception as exc:  # translated at the boundary
            if is_unreachable(exc):
                raise TrackingUnreachable(f"MLflow tracking server at {self.uri} is unreachable: {_reason(exc)}") from exc
            refused = auth_refusal(exc, self.uri)
            if refused is not None:
                raise refused from exc
            if write is None:
                raise
            raise TrackingError(f"MLflow at {self.uri} refused {write}: {exc}") from exc
        finally:
            if write is not None:
                self.write_seconds += time.perf_counter() - wall
                self.write_cpu_seconds += time.thread_time() - cpu

    # -- reading --------------------------------------------------------------------------------------------------
    def experiment_id(self, create: bool = False) -> str | None:
        if self._experiment_id is None:
            with self._vendor("to create the experiment" if create else None):
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

    def child_runs(self, filter_string: str = "", use_index: bool = True) -> list[Any]:
        """Every child run of the sweep (all launches), newest first. Without a filter, read through the sweep index
        (orchestrator/tracking/index.py) where launches left one, and from the runs themselves for the rest; runs
        from the index carry no markdown note tag."""
        exp = self.experiment_id()
        if exp is None:
            return []
        if filter_string or not use_index:
            return _newest_first(self._search(
                [exp], f"tags.`{ROLE}` = 'child'" + (f" and {filter_string}" if filter_string else "")))
        runs: list[Any] = []
        for parent in self.parent_runs():
            found = self._indexed(parent.info.run_id, index.files_of(parent.data.tags))
            runs.extend(found if found is not None else self._search(
                [exp], f"tags.`{ROLE}` = 'child' and tags.`mlflow.parentRunId` = '{parent.info.run_id}'"))
        return _newest_first(runs)

    def _indexed(self, parent_id: str, files: list[str] | None) -> list[Any] | None:
        """The runs a launch's index files hold; None when it has none, or one cannot be read."""
        if files is None:
            return None
        import tempfile
        from pathlib import Path

        runs: list[Any] = []
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for name in files:
                    with self._vendor(), scoped_env({"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}):
                        local = self.client.download_artifacts(parent_id, name, tmp)
                    runs.extend(index.decode(Path(local).read_bytes()))
        except TrackingUnreachable:
            raise
        except Exception:  # noqa: BLE001 - a missing or unreadable index: read the runs instead
            return None
        return runs

    def _search(self, experiments: list[str], query: str) -> list[Any]:
        runs, token = [], None
        while True:
            with self._vendor():
                page = self.client.search_runs(experiments, query, max_results=10000, page_token=token,
                                               order_by=["attributes.start_time DESC"])
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def index_changed(self, parent_id: str) -> None:
        """Say that a launch's child runs were changed after its index file was written (`orchestrator recost`):
        from now on readers read that launch's runs from MLflow (orchestrator/tracking/index.py)."""
        self.log(parent_id, tags={index.OPEN_TAG: "1"})

    def run_tags(self, run_id: str) -> dict[str, str]:
        with self._vendor():
            return dict(self.client.get_run(run_id).data.tags)

    def statuses(self) -> dict[str, str]:
        """Best status per run_key over all launches: FINISHED if any run of it finished, else PRUNED if one was
        stopped early (stored KILLED, tagged status=PRUNED; never rerun), else the newest."""
        return best_statuses(self.child_runs())

    def find_run(self, tags: Mapping[str, str]) -> str | None:
        """The id of the oldest run of the sweep carrying all these tags, if any."""
        exp = self.experiment_id()
        if exp is None:
            return None
        query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
        with self._vendor():
            found = self.client.search_runs([exp], query, max_results=1, order_by=["attributes.start_time ASC"])
        return found[0].info.run_id if found else None

    def ping(self) -> bool:
        """Whether the store answers now (an error answer counts as no answer)."""
        try:
            self.client.search_experiments(max_results=1)
            return True
        except Exception:  # noqa: BLE001 - any failure means not now
            return False

    # -- sweep-level reads and writes (used outside the writer) ---------------------------------------------------
    def experiment_stage(self) -> str | None:
        """The lifecycle stage of the sweep's experiment: "active", "deleted" (restorable in MLflow), or None."""
        with self._vendor():
            found = self.client.get_experiment_by_name(self.experiment)
        return None if found is None else str(found.lifecycle_stage)

    def experiment_names(self) -> list[str]:
        """The sweeps in this store, sorted: its active experiments' names, MLflow's Default (id 0) left out."""
        with self._vendor():
            found = self.client.search_experiments()
        return sorted(e.name for e in found if e.experiment_id != "0")

    def experiment_tags(self) -> dict[str, str]:
        """The tags of the sweep's experiment (none if it has no experiment yet)."""
        exp = self.experiment_id()
        if exp is None:
            return {}
        with self._vendor():
            return dict(self.client.get_experiment(exp).tags)

    def set_experiment_tag(self, key: str, value: str) -> None:
        """Set a tag of the sweep's existing experiment (its notes, its saved view)."""
        exp = self.experiment_id()
        if exp is None:
            raise TrackingError(f"MLflow at {self.uri} has no experiment {self.experiment!r} to set tag {key!r} on")
        with self._vendor(f"tag {key!r} of experiment {self.experiment!r}"):
            self.client.set_experiment_tag(exp, key, self.redact(value))

    def parent_runs(self, filter_string: str = "", newest_first: bool = False, max_results: int = 10000) -> list[Any]:
        """The sweep's launches (parent runs) matching `filter_string`, oldest first unless `newest_first`; one page
        of at most `max_results` (a sweep has far fewer launches than children)."""
        exp = self.experiment_id()
        if exp is None:
            return []
        query = f"tags.`{ROLE}` = 'parent'" + (f" and {filter_string}" if filter_string else "")
        order = "DESC" if newest_first else "ASC"
        with self._vendor():
            return list(self.client.search_runs([exp], query, max_results=max_results,
                                                order_by=[f"attributes.start_time {order}"]))

    def metric_history(self, run_id: str, key: str) -> list[Any]:
        """Every value of metric `key` logged on the run (`mlflow.entities.Metric`s with step and timestamp)."""
        with self._vendor():
            return list(self.client.get_metric_history(run_id, key))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._vendor(f"to delete tag {key!r} of run {run_id}"):
            self.client.delete_tag(run_id, key)

    # -- writing --------------------------------------------------------------------------------------------------
    def create_run(self, name: str, tags: Mapping[str, str], start_time_ms: int) -> str:
        exp = self.experiment_id(create=True)
        with self._vendor(f"to create run {name!r}"):
            return self.client.create_run(exp, run_name=self.redact(name),
                                          tags={k: self.redact(str(v)) for k, v in tags.items()},
                                          start_time=start_time_ms).info.run_id

    def create_parent(self, name: str, params: Mapping[str, Any], tags: Mapping[str, str],
                      start_time_ms: int | None = None) -> str:
        """A launch's parent run, written at once (the writer's go through `ops`, which can wait out an outage)."""
        run_id = self.create_run(name, {ROLE: "parent", **tags}, start_time_ms or _now_ms())
        self.log(run_id, params=params_of(params))
        return run_id

    def log_points(self, run_id: str, points: Sequence[CurvePoint]) -> None:
        from mlflow.entities import Metric

        for chunk in _chunks([Metric(p.key, p.value, p.timestamp_ms, p.step) for p in points], MAX_METRICS):
            with self._vendor(f"curve points of run {run_id}"):
                self.client.log_batch(run_id, metrics=chunk)

    def write(self, run_id: str, params: Mapping[str, Any], points: Sequence[CurvePoint],
              tags: Mapping[str, Any]) -> None:
        """Params, metric points (each with its own step and time) and tags in as few log_batch calls as MLflow's
        limits allow: one for a run's whole start-to-end when it fits."""
        from mlflow.entities import Metric, Param, RunTag

        all_params = [Param(k, self.redact(str(v))) for k, v in params.items()]
        all_metrics = [Metric(p.key, float(p.value), p.timestamp_ms, p.step) for p in points]
        all_tags = [RunTag(k, self.redact(tag_value(v))) for k, v in tags.items()]
        while all_params or all_metrics or all_tags:
            p, all_params = all_params[:MAX_PARAMS], all_params[MAX_PARAMS:]
            m, all_metrics = all_metrics[:MAX_METRICS], all_metrics[MAX_METRICS:]
            t, all_tags = all_tags[:MAX_TAGS], all_tags[MAX_TAGS:]
            with self._vendor(f"a write to run {run_id}"):
                self.client.log_batch(run_id, metrics=m, params=p, tags=t)

    def terminate(self, run_id: str, status: str, end_time_ms: int | None = None) -> None:
        with self._vendor(f"to end run {run_id}"):
            self.client.set_terminated(run_id, status, end_time=end_time_ms or _now_ms())

    def reopen(self, run_id: str) -> None:
        """A terminated parent run running again, for a launch that continues it."""
        with self._vendor(f"to reopen run {run_id}"):
            self.client.update_run(run_id, status="RUNNING")

    def log_text(self, run_id: str, text: str, path: str) -> None:
        with self._vendor(f"artifact {path} of run {run_id}"):
            self.client.log_text(run_id, self.redact(text), path)

    def redact(self, text: str) -> str:
        """The last guard: a value of a secret-named environment variable (HF_TOKEN, ...) never reaches the store,
        whatever key carries it (`auth: ${oc.env:HF_TOKEN}`, an error message, a command line), nor the password of
        a URL (`postgresql://user:***@host/db`)."""
        return redact(text, self._secrets)

    def log_files(self, run_id: str, files: Mapping[str, bytes], folder: str) -> None:
        """Log in-memory files (JSON, CSV, PNG) as artifacts of a run, under `folder/`."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            with self._vendor(f"artifacts {folder}/ of run {run_id}"):
                self.client.log_artifacts(run_id, tmp, folder or None)

    def log(self, run_id: str, params: Mapping[str, str] | None = None, metrics: Mapping[str, float] | None = None,
            tags: Mapping[str, Any] | None = None, timestamp_ms: int | None = None, step: int = 0) -> None:
        """Everything in as few log_batch calls as MLflow's limits allow; metrics at `timestamp_ms` (default now) and
        `step`, so logging the same values again adds no point to their history."""
        now = timestamp_ms or _now_ms()
        points = [CurvePoint(k, float(v), step, now) for k, v in (metrics or {}).items()]
        self.write(run_id, params or {}, points, tags or {})
