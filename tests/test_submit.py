"""`orchestrator submit` before it reaches a cluster: what it would run, and input it refuses (no cluster needed;
tests/test_cluster.py submits to a real one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.test_cli import user_dir as cli_user_dir

USER_SWEEP = """\
# @package sweep
defaults:
  - override /job@_global_.job: synthetic
name: mine
params:
  job:
    n_params: [1.0e6, 1.0e7]
"""


def orchestrator(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120, check=False)


def user_dir(tmp_path: Path) -> Path:
    return cli_user_dir(tmp_path, USER_SWEEP)


def test_a_dry_run_shows_the_job_it_would_submit_with_the_tracking_store_made_absolute(tmp_path):
    cwd = user_dir(tmp_path)
    result = orchestrator(cwd, "submit", "+sweep=mine", "--rerun-failed", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mine: 2 runs (grid)" in result.stdout
    # The job runs in a temporary copy of this directory: a relative SQLite store there would vanish with it.
    assert (f"would submit: python -m orchestrator run +sweep=mine --rerun-failed "
            f"tracking.uri=sqlite:///{cwd / 'mlflow.db'}") in result.stdout
    assert f"working dir: {cwd} (without .venv, .git," in result.stdout
    assert not (cwd / "mlflow.db").exists()


def test_submitting_without_an_address_exits_2_and_says_how_to_give_one(tmp_path):
    result = orchestrator(user_dir(tmp_path), "submit", "+sweep=mine")
    assert result.returncode == 2
    assert "--address: give the cluster's job API, e.g. --address http://<head-node>:8265" in result.stderr


def test_a_bad_sweep_exits_2_naming_the_field_before_any_cluster_is_contacted(tmp_path):
    # Nothing listens on port 9: a bad sweep must fail on its own input, not on the connection.
    result = orchestrator(user_dir(tmp_path), "submit", "+sweep=mine", "+sweep.kind=spiral",
                          "--address", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "sweep.kind: unknown kind 'spiral'" in result.stderr


def test_an_unreachable_cluster_exits_1_with_the_address_it_tried(tmp_path):
    result = orchestrator(tmp_path, "logs", "raysubmit_x", "--address", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot reach the Ray job API at http://127.0.0.1:9" in result.stderr


def test_the_job_commands_import_no_ray_until_they_run():
    probe = "import sys, orchestrator.cli.submit, orchestrator.cli.jobs; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
