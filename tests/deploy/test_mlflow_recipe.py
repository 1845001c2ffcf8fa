"""deploy/mlflow/: the tracking server recipe names its pieces right, checked with MLflow's own parsers (no Docker or
PostgreSQL here; tests/test_postgres.py runs the server on a real PostgreSQL)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

RECIPE = Path(__file__).resolve().parents[2] / "deploy" / "mlflow"
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def example_env() -> dict[str, str]:
    lines = (line.strip() for line in (RECIPE / "env.example").read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def interpolated(text: str, env: dict[str, str]) -> str:
    """docker compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from `env`; a required variable missing fails."""
    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        assert kind == "-", f"${{{name}}} is required but env.example does not set it"
        return rest

    return VARIABLE.sub(value, text)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    env = {k: v or f"example-{k.lower()}" for k, v in example_env().items()}
    return yaml.safe_load(interpolated((RECIPE / "docker-compose.yaml").read_text(), env))


def test_every_variable_the_compose_file_requires_is_in_env_example():
    required = {m.group(1) for m in VARIABLE.finditer((RECIPE / "docker-compose.yaml").read_text())
                if m.group(2) != "-"}
    assert required <= set(example_env()), required - set(example_env())


def test_the_server_runs_on_postgresql_with_an_artifact_store_basic_auth_and_workers(compose):
    from mlflow.cli import server

    mlflow = compose["services"]["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    # MLflow's own command line accepts every option as written (an unknown or misspelled one raises here).
    params = server.make_context("server", command[2:]).params
    assert urlsplit(params["backend_store_uri"]).scheme == "postgresql"
    assert params["artifacts_destination"] and params["app_name"] == "basic-auth"
    assert int(params["workers"]) > 1
    assert mlflow["environment"]["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert "postgres" in mlflow["depends_on"]
    database = urlsplit(params["backend_store_uri"]).path[1:]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_DB"] == database


def test_the_auth_config_is_read_by_mlflow_and_holds_no_secret(compose, monkeypatch):
    from mlflow.server.auth.config import read_auth_config

    mlflow = compose["services"]["mlflow"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in mlflow["volumes"] if v.startswith("./")}
    ini = RECIPE / mounted[mlflow["environment"]["MLFLOW_AUTH_CONFIG_PATH"]]
    assert ini.name == "basic_auth.ini"
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(ini))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "from-the-environment")
    config = read_auth_config()
    database = urlsplit(config.database_uri)
    assert database.scheme == "postgresql" and database.password is None
    assert config.admin_password == "from-the-environment"
    parser = configparser.ConfigParser()
    parser.read(ini)
    assert "admin_password" not in parser["mlflow"]
    # The auth database is created beside the tracking store's on first start.
    sql = (RECIPE / "initdb" / "01-auth-database.sql").read_text()
    assert f"CREATE DATABASE {database.path[1:]}" in sql
