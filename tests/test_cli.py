"""The `orchestrator` command as a user runs it: a real subprocess, its own embedded Ray, MLflow in its cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlflow.tracking import MlflowClient

USER_SWEEP = """\
# @package sweep
defaults:
  - override /job@_global_.job: synthetic
name: mine
params:
  job:
    n_params: [1.0e6, 1.0e7, 1.0e8]
    fail: [false]
"""


def orchestrator(cwd: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def user_dir(tmp_path: Path, sweep_yaml: str = USER_SWEEP) -> Path:
    """A user's project directory with its own conf/sweep/mine.yaml."""
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "mine.yaml").write_text(sweep_yaml)
    return tmp_path


def test_dry_run_finds_the_users_own_sweep_and_writes_nothing(tmp_path):
    cwd = user_dir(tmp_path)
    result = orchestrator(cwd, "run", "+sweep=mine", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "mine: 3 runs (grid)" in result.stdout and "n_params=1e7" in result.stdout
    assert not (cwd / "mlflow.db").exists()


def test_bad_input_exits_2_naming_the_field_before_anything_is_written(tmp_path):
    cwd = user_dir(tmp_path)
    result = orchestrator(cwd, "run", "+sweep=mine", "+sweep.kind=spiral")
    assert result.returncode == 2
    assert "sweep.kind: unknown kind 'spiral'; allowed: grid, zip, random, isoflop, adaptive" in result.stderr
    assert not (cwd / "mlflow.db").exists()


def test_a_sweep_with_a_failing_run_reports_it_and_exits_non_zero_then_resumes(tmp_path):
    cwd = user_dir(tmp_path)
    result = orchestrator(cwd, "run", "+sweep=mine", "~sweep.params.job.fail", "+sweep.params.job.fail=[false,true]",
                          "cluster.num_gpus=2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3 finished, 3 failed" in result.stdout
    assert "RuntimeError: synthetic job asked to fail" in result.stdout
    assert f"mlflow ui --backend-store-uri sqlite:///{cwd / 'mlflow.db'} --host 127.0.0.1" in result.stdout
    # The sweep's saved view (its job names a primary metric), opened on the model-training UI.
    assert "#/experiments/1/runs?viewStateShareKey=orchestrator-mine&workflowType=machine_learning" in result.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("mine").experiment_id],
                              "tags.`orchestrator.role` = 'child'")
    assert sorted(r.info.status for r in runs) == ["FAILED"] * 3 + ["FINISHED"] * 3

    status = orchestrator(cwd, "status", "mine")
    assert status.returncode == 0 and "FINISHED  3" in status.stdout and "FAILED    3" in status.stdout
