"""Sweeps on a real two-node Ray cluster with token auth (tests/cluster_harness.py): both nodes get runs, a sweep
submitted as a Ray job lands in MLflow, and losing a node mid-sweep loses no run and duplicates none.

Drivers run as `python -m orchestrator ...` subprocesses with the cluster's token; the pytest process keeps its own Ray.
The node-loss test runs last: it removes the second node (a later test would start it again).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.cluster_harness import ROOT, TwoNodeCluster, ensure_two_nodes, start_cluster, wait_for

# Runs of one logical GPU each (the two nodes hold 4 + 4 of them at once), of tests.testjobs.where.
SWEEP = ("+sweep=synthetic_demo", "resources.gpus=1", "~sweep.params")
WHERE = (*SWEEP, "job._target_=tests.testjobs.where")
ALL_GPUS = 8
# Generous deadlines for whole sweeps and jobs on a 2-core machine; nothing asserts how long anything took.
SWEEP_DEADLINE_S = 240


@pytest.fixture(scope="module")
def cluster() -> Any:
    cluster = start_cluster()
    yield cluster
    cluster.stop()


def indices(n: int) -> str:
    return f"+sweep.params.job.index=[{','.join(str(i) for i in range(n))}]"


def together(barrier: Path) -> tuple[str, ...]:
    """Runs that wait until 8 of them run at once: only both nodes' GPUs together hold 8, so both nodes get runs
    however fast either node starts its executors."""
    barrier.mkdir()
    return (*SWEEP, "job._target_=tests.testjobs.together", f"+job.barrier_dir={barrier}", f"+job.parties={ALL_GPUS}")


def orchestrator(cluster: TwoNodeCluster, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The command as a user on a machine with the cluster's token runs it."""
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env={**cluster.env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=SWEEP_DEADLINE_S)


def children(uri: str, sweep: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'", max_results=1000)


def assert_one_finished_child_per_run_key(runs: list[Any], expected: int) -> None:
    per_key = Counter(r.data.tags["run_key"] for r in runs)
    assert len(per_key) == expected and set(per_key.values()) == {1}, per_key
    assert {r.info.status for r in runs} == {"FINISHED"}, Counter(r.info.status for r in runs)


def submission_id(stdout: str) -> str:
    match = re.search(r"submitted (raysubmit_\w+)", stdout)
    assert match, stdout
    return match.group(1)


def test_a_sweep_run_against_the_cluster_spreads_its_runs_over_both_nodes(cluster, tracking_uri, tmp_path):
    ensure_two_nodes(cluster)
    result = orchestrator(cluster, "run", *together(tmp_path / "barrier"), indices(ALL_GPUS), "name=both-nodes",
                          f"tracking.uri={tracking_uri}", f"cluster.address={cluster.gcs_address}")
    assert result.returncode == 0, result.stdout + result.stderr
    runs = children(tracking_uri, "both-nodes")
    assert_one_finished_child_per_run_key(runs, ALL_GPUS)
    assert {r.data.tags["ray_node"] for r in runs} == cluster.alive_node_ids()
    assert all(r.data.tags["device"].startswith("gpu:") for r in runs)


def test_a_submitted_sweep_runs_on_the_cluster_and_its_results_land_in_the_submitters_store(cluster, tmp_path,
                                                                                              _mlflow_template):
    # No tracking.uri given: the default sqlite:///mlflow.db is made absolute against the submitter's directory,
    # not left to land in the job's temporary copy of the project (a pre-migrated copy saves the job ~7 s).
    shutil.copy(_mlflow_template, tmp_path / "mlflow.db")
    result = orchestrator(cluster, "submit", *WHERE, indices(4), "job.sleep_s=0.5", "name=submitted",
                          "--working-dir", str(ROOT), "--address", cluster.dashboard_url, "--follow", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert f"tracking: {uri}" in result.stdout
    assert "4 finished, 0 failed" in result.stdout  # the driver's report, streamed back
    sid = submission_id(result.stdout)
    assert f"job {sid} SUCCEEDED" in result.stdout and cluster.jobs()[sid] == "SUCCEEDED"
    assert_one_finished_child_per_run_key(children(uri, "submitted"), 4)

    logs = orchestrator(cluster, "logs", sid, "--address", cluster.dashboard_url)
    assert logs.returncode == 0 and "4 finished, 0 failed" in logs.stdout


def test_a_submitted_sweep_can_be_stopped(cluster, tracking_uri):
    result = orchestrator(cluster, "submit", *WHERE, indices(2), "job.sleep_s=300", "name=stopped",
                          f"tracking.uri={tracking_uri}", "--address", cluster.dashboard_url)
    assert result.returncode == 0, result.stdout + result.stderr
    sid = submission_id(result.stdout)
    assert f"orchestrator stop {sid} --address {cluster.dashboard_url}" in result.stdout
    wait_for("the submitted sweep's runs to start", lambda: len(children(tracking_uri, "stopped")) == 2,
             SWEEP_DEADLINE_S)

    stopped = orchestrator(cluster, "stop", sid, "--address", cluster.dashboard_url)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"job {sid} STOPPED" in stopped.stdout and cluster.jobs()[sid] == "STOPPED"
    assert [r.info.status for r in children(tracking_uri, "stopped")] == ["KILLED", "KILLED"]  # resumable


def test_a_bad_override_exits_2_naming_the_field_and_submits_nothing(cluster):
    before = cluster.jobs()
    result = orchestrator(cluster, "submit", *WHERE, indices(2), "execution.retries=-1",
                          "--address", cluster.dashboard_url)
    assert result.returncode == 2
    assert "execution.retries: expected a whole number >= 0, got -1" in result.stderr
    assert cluster.jobs() == before


def test_submitting_without_the_clusters_token_says_how_to_authenticate(cluster, tmp_path):
    wrong = tmp_path / "token"
    wrong.write_text("0" * 64)
    env = {**cluster.env, "RAY_AUTH_TOKEN_PATH": str(wrong)}
    result = subprocess.run([sys.executable, "-m", "orchestrator", "submit", *WHERE, indices(2),
                             "--address", cluster.dashboard_url], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=SWEEP_DEADLINE_S)
    assert result.returncode == 1
    assert "RAY_AUTH_MODE=token" in result.stderr and "RAY_AUTH_TOKEN_PATH" in result.stderr


def running_on(uri: str, sweep: str, node_id: str) -> list[Any]:
    return [r for r in children(uri, sweep) if r.info.status == "RUNNING" and r.data.tags.get("ray_node") == node_id]


def met(barrier: Path) -> bool:
    return len(list(barrier.iterdir())) >= ALL_GPUS


def test_losing_a_node_mid_sweep_reruns_its_runs_elsewhere_and_loses_none(cluster, tracking_uri, tmp_path):
    ensure_two_nodes(cluster)
    lost, barrier, release = cluster.node_id(head=False), tmp_path / "barrier", tmp_path / "release"
    driver = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", *together(barrier), indices(2 * ALL_GPUS),
         f"+job.release_file={release}", "+job.barrier_timeout_s=180", "name=node-loss",
         f"tracking.uri={tracking_uri}", f"cluster.address={cluster.gcs_address}"],
        cwd=ROOT, env={**cluster.env, "COLUMNS": "200"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Past the barrier (so the head's runs wait for no lost run), runs are held running on the second node until
        # it is killed: however late MLflow shows them running, they cannot have finished first.
        wait_for("runs on the second node", lambda: met(barrier) and running_on(tracking_uri, "node-loss", lost),
                 SWEEP_DEADLINE_S, 0.2)
        cluster.nodes["worker"].kill()
        release.touch()
        output, _ = driver.communicate(timeout=SWEEP_DEADLINE_S)
    finally:
        driver.kill()
    assert lost not in cluster.alive_node_ids()
    assert driver.returncode == 0, output
    runs = children(tracking_uri, "node-loss")
    assert_one_finished_child_per_run_key(runs, 2 * ALL_GPUS)
    retried = [r for r in runs if int(r.data.tags["attempt"]) >= 2]
    assert retried, "no run was retried after its node was lost"
    assert all("executor lost" in r.data.tags["attempt_1.error"] for r in retried)
