"""MLflow on PostgreSQL, as a team's tracking server is: a sweep tracked straight into PostgreSQL (`postgresql://`),
resumed after an interruption, and through an outage of an `mlflow server` whose store is PostgreSQL. A real
PostgreSQL (pgserver, else Debian's) started by the tests (`postgres` in conftest.py); the same assertions as the
SQLite tests, whose bodies are reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from orchestrator.tracking.buffer import FAIL_FAST_HTTP
from orchestrator.tracking.journal import ENV_DIR
from tests import test_engine, test_tracking_outage
from tests.mlflow_server import MlflowServer


@pytest.fixture
def compose(compose: Callable[..., Any]) -> Callable[..., Any]:
    """A unix-socket URI has `?host=<folder>` in it, and Hydra's override grammar reads that `=` unless the value is
    quoted, as on a command line: `'tracking.uri="postgresql://user@/db?host=/run/postgresql"'`."""
    def quoted(*overrides: str) -> Any:
        return compose(*(f'tracking.uri="{o.split("=", 1)[1]}"' if o.startswith("tracking.uri=") else o
                         for o in overrides))

    return quoted


@pytest.fixture
def tracking_uri(postgres_uri: str, tmp_path: Path) -> str:
    """A fresh PostgreSQL database with the sweep's experiment made beforehand, its artifacts under tmp_path: straight
    to a database, MLflow's default artifact root is ./mlruns of the writer's working directory (here, the repo)."""
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=postgres_uri).create_experiment("synthetic-demo", (tmp_path / "artifacts").as_uri())
    return postgres_uri


def test_a_sweep_tracked_straight_into_postgresql_lands_as_finished_child_runs(ray_cluster, compose, tracking_uri):
    assert tracking_uri.startswith("postgresql://")
    test_engine.test_a_grid_sweep_lands_as_finished_child_runs_with_params_curves_and_metrics(ray_cluster, compose,
                                                                                              tracking_uri)


def test_an_interrupted_sweep_on_postgresql_resumes_with_only_the_missing_runs(ray_cluster, compose, tracking_uri):
    test_engine.test_an_interrupted_sweep_resumes_with_only_the_missing_runs(ray_cluster, compose, tracking_uri)


@pytest.fixture
def server_on_postgres(tmp_path: Path, postgres_uri: str) -> Iterator[MlflowServer]:
    running = MlflowServer(tmp_path / "server", backend_uri=postgres_uri)
    running.folder.mkdir()
    running.start()
    yield running
    running.stop()


def test_a_sweep_through_an_outage_of_a_server_on_postgresql_loses_nothing(ray_cluster, compose, server_on_postgres,
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path):
    """The server stops for 6 s mid-sweep and comes back on the same PostgreSQL: every run, curve and total once.
    Runs of 3 s rather than 1 s: on a busy machine the first run shows as FINISHED seconds after it ended, and some
    must still end while the server is down."""
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "journals"))
    for name, value in FAIL_FAST_HTTP.items():
        monkeypatch.setenv(name, value)

    def slower(*overrides: str) -> Any:
        return compose(*("sweep.params.job.sleep_s=3.0" if o == "sweep.params.job.sleep_s=1.0" else o
                         for o in overrides))

    test_tracking_outage.test_a_sweep_through_a_tracking_outage_ends_ok_with_every_run_curve_and_total_written_once(
        ray_cluster, slower, server_on_postgres)
