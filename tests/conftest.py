"""Shared fixtures: one real Ray for the whole session (8 logical GPUs), a pre-migrated MLflow SQLite template."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# Test jobs live in tests/testjobs.py; the driver and Ray's workers import them as `tests.testjobs`.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
LOGICAL_GPUS = 8


@pytest.fixture(scope="session")
def ray_cluster() -> Any:
    """Real local Ray with logical GPUs; starting Ray costs 5-10 s here, so it is shared by every test."""
    import ray

    if not ray.is_initialized():
        ray.init(num_gpus=LOGICAL_GPUS, num_cpus=LOGICAL_GPUS, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite DB (creating one costs ~7 s); each test gets a copy."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_uri(tmp_path: Path, _mlflow_template: Path) -> str:
    db = tmp_path / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    return f"sqlite:///{db}"


@pytest.fixture
def compose() -> Callable[..., Any]:
    """Compose the shipped configs exactly as `orchestrator run` does, with Hydra overrides."""
    from orchestrator.project import compose as compose_run_config

    def _compose(*overrides: str) -> Any:
        # report.html takes seconds to build per launch; tests/test_html_report.py and the browser test turn it on.
        return compose_run_config(["tracking.report=false", *overrides])

    return _compose


@pytest.fixture(scope="session")
def law_sweep(tmp_path_factory: pytest.TempPathFactory, _mlflow_template: Path) -> Any:
    """A sweep of two launches over an 8 x 8 (N, D) grid from a known law (tests/tracked_sweeps.py); read only."""
    from tests.tracked_sweeps import write_law_sweep

    db = tmp_path_factory.mktemp("law-sweep") / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    return write_law_sweep(f"sqlite:///{db}")


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real PostgreSQL (tests/postgres.py: pgserver, else Debian's) with MLflow's tables in a template database
    (migrating costs ~20 s here, once); skipped, saying why, only where neither can start."""
    from tests.postgres import PostgresUnavailable, start_postgres

    try:
        server = start_postgres(tmp_path_factory.mktemp("postgres"))
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        server.migrate_template()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_uri(postgres: Any) -> str:
    """A fresh, migrated PostgreSQL database for one test: `postgresql://postgres@/<db>?host=<socket folder>`."""
    return postgres.database()
