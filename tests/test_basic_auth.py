"""An MLflow server with basic authentication (`mlflow server --app-name basic-auth`), as a team runs it: a sweep runs
with MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD, no run, log or artifact holds them, and wrong credentials stop
a launch before anything runs or is written. One real server and one sweep for the module."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.launch import launch
from orchestrator.tracking.auth import PASSWORD, USERNAME, TrackingAuthError
from tests.mlflow_server import MlflowServer

SYN = ("job=synthetic", "+sweep=synthetic_demo", "~sweep.params", "+sweep.params.job.n_params=[1e6,1e7,1e8]",
       "job.sleep_s=0.05")
ADMIN, USER = "orc-admin", "sweeper-7f3a"
SWEEP = "synthetic-demo"


class AuthServer(MlflowServer):
    """`mlflow server --app-name basic-auth`: users in their own SQLite file, an admin made at first start, and a user
    `USER` made by the admin (READ by default, MANAGE on what it creates)."""

    def __init__(self, folder: Path) -> None:
        self.admin_password, self.user_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        config = folder / "basic_auth.ini"
        config.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{folder / 'auth.db'}\n"
                          f"admin_username = {ADMIN}\nadmin_password = {self.admin_password}\n"
                          "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
                          # Otherwise every request hashes the password again (PBKDF2): ~1 s each on a busy 2 cores.
                          "auth_cache_ttl_seconds = 60\n")
        super().__init__(folder, args=("--app-name", "basic-auth"),
                         env={"MLFLOW_AUTH_CONFIG_PATH": str(config),
                              "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)})

    def as_admin(self) -> dict[str, str]:
        return {USERNAME: ADMIN, PASSWORD: self.admin_password}

    def as_user(self) -> dict[str, str]:
        return {USERNAME: USER, PASSWORD: self.user_password}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, _mlflow_template: Path) -> Iterator[AuthServer]:
    folder = tmp_path_factory.mktemp("mlflow-auth")
    shutil.copy(_mlflow_template, folder / "mlflow.db")
    running = AuthServer(folder)
    running.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in running.as_admin().items():
                env.setenv(name, value)
            from mlflow.server import get_app_client

            get_app_client("basic-auth", tracking_uri=running.uri).create_user(USER, running.user_password)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sweep(server: AuthServer, ray_cluster: Any) -> Any:
    """The sweep launched by `USER` with its credentials in the driver's environment only (the session's Ray was
    started without them, so the writer actor has them only if the driver hands them over)."""
    from orchestrator.project import compose

    with pytest.MonkeyPatch.context() as env:
        for name, value in server.as_user().items():
            env.setenv(name, value)
        return launch(compose(["tracking.report=false", *SYN, f"tracking.uri={server.uri}"]))


def client_as(server: AuthServer, credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    return MlflowClient(tracking_uri=server.uri)


def test_a_sweep_with_credentials_in_the_environment_lands_as_finished_runs(server, sweep, monkeypatch):
    assert sweep.ok and sweep.count("FINISHED") == 3, sweep.tracking_errors
    client = client_as(server, server.as_user(), monkeypatch)
    experiment = client.get_experiment_by_name(SWEEP)
    runs = client.search_runs([experiment.experiment_id])
    roles = sorted(r.data.tags["orchestrator.role"] for r in runs)
    assert roles == ["child", "child", "child", "parent"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert all("val_loss" in r.data.metrics for r in runs if r.data.tags["orchestrator.role"] == "child")


def test_no_param_tag_artifact_or_log_of_the_sweep_holds_the_credentials(server, sweep, monkeypatch, tmp_path):
    import ray

    client = client_as(server, server.as_admin(), monkeypatch)
    runs = client.search_runs([client.get_experiment_by_name(SWEEP).experiment_id])
    written = []
    for run in runs:
        written += [*run.data.params.items(), *run.data.tags.items(), run.info.run_name]
        folder = tmp_path / run.info.run_id
        folder.mkdir()
        client.download_artifacts(run.info.run_id, "", str(folder))
        written += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()]
    assert any("config.yaml" in str(p) for p in tmp_path.rglob("*")), "the launch logged no config to check"
    text = "\n".join(map(str, written))
    assert server.user_password not in text and USER not in text
    logs = Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"
    for path in (p for p in logs.rglob("*") if p.is_file()):
        assert server.user_password.encode() not in path.read_bytes(), path


def test_wrong_credentials_exit_2_before_any_run_naming_the_user_and_writing_nothing(server, ray_cluster, tmp_path):
    """As a user runs it (a subprocess, joining the session's Ray to save starting one): one line, exit status 2."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING_")},
           "RAY_ADDRESS": ray_cluster.get_runtime_context().gcs_address,
           USERNAME: USER, PASSWORD: "not-" + server.user_password}
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", *SYN, "name=never-written",
                           f"tracking.uri={server.uri}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert (f"error: MLflow at {server.uri} refused the credentials of user '{USER}' (401): check "
            f"{USERNAME}/{PASSWORD}") in done.stderr
    assert env[PASSWORD] not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "planned" not in done.stdout
    with pytest.MonkeyPatch.context() as patch:
        admin = client_as(server, server.as_admin(), patch)
        assert admin.get_experiment_by_name("never-written") is None


def test_no_credentials_at_all_say_which_variables_to_set(server, ray_cluster, compose, monkeypatch):
    for name in (USERNAME, PASSWORD, "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(TrackingAuthError, match=rf"MLflow at {server.uri} requires credentials \(401\): set "
                                                rf"{USERNAME} and {PASSWORD}"):
        launch(compose(*SYN, "name=never-written-either", f"tracking.uri={server.uri}"))
