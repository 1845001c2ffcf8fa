"""deploy/kuberay/rayjob.yaml: a RayJob that KubeRay accepts the shape of, and that runs what `orchestrator submit`
would send for the same overrides (no Kubernetes here: the manifest is parsed and compared)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli.submit import check, job_command, runtime_env

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kuberay" / "rayjob.yaml"
RUN = ["python", "-m", "orchestrator", "run"]


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    (document,) = list(yaml.safe_load_all(MANIFEST.read_text()))
    assert (document["apiVersion"], document["kind"]) == ("ray.io/v1", "RayJob")
    return document


def containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = job["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"], *(g["template"] for g in cluster["workerGroupSpecs"])]
    return [c for pod in pods for c in pod["spec"]["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_cluster_goes_when_the_sweep_ends_and_its_head_runs_no_work(job):
    spec = job["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    # rayStartParams are strings in KubeRay's schema.
    assert spec["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def test_the_workers_hold_gpus_and_every_node_runs_the_same_image(job):
    groups = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert groups and all(int(c["resources"]["limits"]["nvidia.com/gpu"]) > 0
                          for g in groups for c in g["template"]["spec"]["containers"])
    assert len({c["image"] for c in containers(job)}) == 1


def test_the_ray_token_and_mlflow_credentials_come_from_secrets_not_the_manifest(job):
    auth = job["spec"]["rayClusterSpec"]["authOptions"]
    assert auth["mode"] == "token" and auth["secretName"]
    assert all("RAY_AUTH_TOKEN" not in env_of(c) for c in containers(job))  # KubeRay injects it from the Secret
    head, *workers = containers(job)
    # The driver, on the head, reads them and hands them to its tracking writer; the GPU workers never see them.
    credentials = {k: env_of(head).get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    assert all(isinstance(v, dict) and "secretKeyRef" in v for v in credentials.values()), credentials
    assert not any(set(credentials) & set(env_of(w)) for w in workers)


def test_the_entrypoint_and_tracking_are_what_orchestrator_submit_would_send(job, tmp_path):
    entrypoint = job["spec"]["entrypoint"]
    words = shlex.split(entrypoint)
    assert words[:4] == RUN
    run_argv = words[4:]
    cfg = check(run_argv, tmp_path)  # composes and plans the sweep: a bad override would raise ConfigError here
    uri, command = job_command(cfg, run_argv)
    assert command == entrypoint
    assert {env_of(c)["MLFLOW_TRACKING_URI"] for c in containers(job)} == {uri}
    assert uri.startswith("http")  # a file store would live and die with the head pod
    working_dir = containers(job)[0]["workingDir"]
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"]) == runtime_env(Path(working_dir))
