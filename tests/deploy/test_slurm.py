"""deploy/slurm/orchestrator.sbatch, run as SLURM's batch step would run it, under stand-ins for `srun` and
`scontrol` (tests/deploy/fake_slurm/) on a two-"node" allocation on this machine: it starts a real two-node Ray
cluster with token auth, runs a sweep against it that lands in MLflow, and leaves no Ray process behind.

Every process the script starts carries a marker in its environment (Ray's workers inherit it from their raylet), so
teardown finds and ends exactly those, even when the script failed or hung. On this shared 2-core machine a run takes
1.5-3.5 minutes, most of it Ray starting two nodes under load.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from tests.mlflow_server import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "slurm" / "orchestrator.sbatch"
FAKE_SLURM = Path(__file__).resolve().parent / "fake_slurm"
NODES = ("n1", "n2")
# Runs of one logical GPU each on nodes of one GPU: the first two wait for each other (and the test) at a barrier, so
# they provably ran at once, one per node, however fast either node starts its executor.
RUNS = 4
DEADLINE_S = 360
PROCESS_EXIT_S = 20.0
NODE_PORT_OPTIONS = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                     "--metrics-export-port")


def sweep(barrier: Path) -> list[str]:
    return ["+sweep=synthetic_demo", "~sweep.params", f"+sweep.params.job.index=[{','.join(map(str, range(RUNS)))}]",
            "job._target_=tests.testjobs.together", f"+job.barrier_dir={barrier}", f"+job.parties={len(NODES) + 1}",
            "resources.gpus=1", "name=slurm-demo", "tracking.report=false"]


def allocation_env(root: Path, tracking_uri: str, marker: str) -> dict[str, str]:
    """The environment of a batch step on a two-node allocation of one GPU and two CPUs per node, the venv active
    and the stand-ins first on PATH; ports a real cluster leaves at their defaults are free ones here, as both
    "nodes" share this machine."""
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE",
               "RAY_TMPDIR")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    path = [str(FAKE_SLURM), str(Path(sys.executable).parent), env.get("PATH", "")]
    pythonpath = [str(ROOT), env.get("PYTHONPATH", "")]
    return {**env, "PATH": os.pathsep.join(p for p in path if p),
            "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p),
            "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": ",".join(NODES), "SLURM_JOB_NUM_NODES": str(len(NODES)),
            "SLURM_NNODES": str(len(NODES)), "SLURM_CPUS_PER_TASK": "2", "SLURM_GPUS_PER_TASK": "1",
            "SLURM_SUBMIT_DIR": str(root), "FAKE_SLURM_NODES": ",".join(NODES), "FAKE_SLURM_ROOT": str(root / "nodes"),
            "MLFLOW_TRACKING_URI": tracking_uri, "RAY_PORT": str(free_port()), "RAY_NODES_TIMEOUT_S": "180",
            # Agent ports fixed at start; the stand-in srun gives each node free ones in place of these zeros.
            "RAY_START_ARGS": " ".join(f"{option}=0" for option in NODE_PORT_OPTIONS)
            + " --min-worker-port=0 --max-worker-port=0",
            # No dashboard: its dozen processes cost this 2-core machine more than the rest of the head together.
            "RAY_HEAD_ARGS": f"--include-dashboard=false --ray-client-server-port={free_port()}",
            "COLUMNS": "200", "ORC_SLURM_TEST_MARKER": marker}


def marked_pids(marker: str) -> set[int]:
    """Processes whose environment carries this test's marker: everything the script started, Ray's included."""
    needle = f"ORC_SLURM_TEST_MARKER={marker}".encode()
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.add(int(entry.name))
            except OSError:
                pass
    return pids


def end_marked(marker: str) -> set[int]:
    """SIGKILL what is left of the script's processes; returns the pids that were still running."""
    left = marked_pids(marker)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + PROCESS_EXIT_S
    while marked_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@dataclass
class SlurmJob:
    result: subprocess.CompletedProcess
    tracking_uri: str
    # The token the job's Ray processes were given, and what the head's GCS answered mid-sweep to a client with it,
    # without a token and with a wrong one.
    token: str | None
    with_token: str
    without_token: str
    wrong_token: str
    # Processes of the job still running once the script had exited.
    left: set[int]


PROBE = """
import sys
from ray._raylet import GcsClient
try:
    GcsClient(address=sys.argv[1]).internal_kv_get(b"probe", namespace=None, timeout=10)
    print("admitted")
except Exception as e:
    print(type(e).__name__, e)
"""


def gcs_probes(address: str, tokens: list[str | None]) -> list[str]:
    """What the cluster's GCS answers a client with each token (None: none), asked at once: "admitted" or the error."""
    def probe(token: str | None) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_MODE": "disabled"})
        return subprocess.Popen([sys.executable, "-c", PROBE, address], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    probes = [probe(t) for t in tokens]
    try:
        return [p.communicate(timeout=120)[0].strip() for p in probes]
    finally:
        for p in probes:
            p.kill()


def job_token(marker: str) -> str | None:
    """The Ray token the script made for the job, as its Ray processes received it (their environment)."""
    for pid in marked_pids(marker):
        try:
            variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for variable in variables:
            if variable.startswith(b"RAY_AUTH_TOKEN="):
                return variable.split(b"=", 1)[1].decode()
    return None


def wait_for_line(log: Path, text: str, process: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline and process.poll() is None:
        if text in log.read_text(errors="replace"):
            return True
        time.sleep(0.5)
    return False


def run_script(root: Path, uri: str, marker: str) -> SlurmJob:
    """The script run once on the fake allocation. Its sweep's first runs wait at a barrier for one party more than
    there are nodes: the test, which meanwhile asks the cluster whether it admits clients with the job's token,
    without a token and with a wrong one."""
    barrier, log = root / "barrier", root / "job.out"
    shutil.rmtree(barrier, ignore_errors=True)
    barrier.mkdir()
    env = allocation_env(root, uri, marker)
    address = f"127.0.0.1:{env['RAY_PORT']}"
    deadline, token, probes = time.monotonic() + DEADLINE_S, None, ["", "", ""]
    try:
        with open(log, "w") as out:
            process = subprocess.Popen(["bash", str(SCRIPT), *sweep(barrier)], cwd=root, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        try:
            if wait_for_line(log, f"{len(NODES)} of {len(NODES)} nodes up", process, deadline):
                token = job_token(marker)
                probes = gcs_probes(address, [token, None, "0" * 64]) if token else probes
            (barrier / "test").touch()
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        # The script's own teardown must have ended its Ray nodes (a few seconds' grace for processes still exiting).
        grace = time.monotonic() + PROCESS_EXIT_S
        while marked_pids(marker) and time.monotonic() < grace:
            time.sleep(0.2)
    finally:
        left = end_marked(marker)
    result = subprocess.CompletedProcess(process.args, process.returncode, log.read_text(errors="replace"))
    return SlurmJob(result, uri, token, *probes, left)


def ray_aborted_a_node_start(job: SlurmJob) -> bool:
    """Ray itself gave up starting a node before the sweep began: it aborts a raylet whose agents (Python processes)
    take more than about 15 s to start, which happens on this 2-core machine when other work loads it."""
    output = job.result.stdout
    return job.result.returncode != 0 and f"{len(NODES)} of {len(NODES)} nodes up" not in output and any(
        sign in output for sign in ("timed out during startup", "Timed out waiting for file"))


@pytest.fixture(scope="module")
def slurm_job(_mlflow_template: Path) -> Any:
    """The script's run; run again once if Ray aborted a node's start (nothing of the sweep had run)."""
    root = Path(tempfile.mkdtemp(prefix="sl", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    shutil.copy(_mlflow_template, root / "mlflow.db")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    job = run_script(root, uri, uuid.uuid4().hex)
    if ray_aborted_a_node_start(job):
        job = run_script(root, uri, uuid.uuid4().hex)
    yield job
    shutil.rmtree(root, ignore_errors=True)


def children(uri: str, sweep_name: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep_name)
    assert experiment is not None, f"no experiment {sweep_name!r} in {uri}"
    return client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'", max_results=100)


def test_the_sbatch_script_runs_the_sweep_to_mlflow_on_a_cluster_of_every_allocated_node(slurm_job):
    output = slurm_job.result.stdout
    assert slurm_job.result.returncode == 0, output[-6000:]
    assert f"{len(NODES)} of {len(NODES)} nodes up" in output
    runs = children(slurm_job.tracking_uri, "slurm-demo")
    assert Counter(r.info.status for r in runs) == {"FINISHED": RUNS}, output[-3000:]
    # Each run records the Ray node its executor ran on: both allocated nodes were in the cluster and ran runs.
    assert len({r.data.tags["ray_node"] for r in runs}) == len(NODES)


def test_the_cluster_admits_only_clients_with_the_token_made_for_the_job(slurm_job):
    token = slurm_job.token
    assert token and re.fullmatch(r"[0-9a-f]{64}", token), slurm_job.result.stdout[-3000:]
    assert slurm_job.with_token == "admitted"
    for refused in (slurm_job.without_token, slurm_job.wrong_token):
        assert "AuthenticationError" in refused and "token is missing or incorrect" in refused, refused
    assert token not in slurm_job.result.stdout


def test_no_process_of_the_job_outlives_the_script(slurm_job):
    assert not slurm_job.left, f"still running after the script exited: {sorted(slurm_job.left)}\n" \
                               f"{slurm_job.result.stdout[-3000:]}"
