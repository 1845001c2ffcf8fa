"""A real two-node Ray cluster on this machine, with token auth, for tests that need more than one node.

Each node is one `ray start --block` in its own process group, so `RayNode.kill()` removes exactly that node (its
raylet and agents; its workers exit when their raylet dies) the way a machine failure would, and the head survives.
`ray stop` is never called: it would also stop the session Ray the pytest process runs.

Anything that joins this cluster as a driver runs in a subprocess with `cluster.env` (the pytest process is already
connected to its own Ray); the job and state APIs are plain HTTP, reached here with `cluster.headers`.
Ray replaces a loopback --node-ip-address with the host's address (services.resolve_ip_for_localhost), so the nodes
register under that address; the dashboard and job API listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tests.mlflow_server import free_port
from tests.processes import process_tree

ROOT = Path(__file__).resolve().parents[1]
GPUS_PER_NODE = CPUS_PER_NODE = 4
# Generous: a head starts in ~8 s and a second node in ~8 s on a 2-core machine.
START_DEADLINE_S = 120.0
# The head declares a node dead after this many missed health checks of this period (Ray's defaults, 3 s x 5, take
# ~20 s; a test cluster can afford to notice in ~4 s).
HEALTH_CHECK_PERIOD_MS, HEALTH_CHECK_FAILURES = 1000, 3
# Seconds a stopped job's driver has between SIGTERM and SIGKILL (Ray's default, 3 s, is tight on a loaded 2-core box).
JOB_STOP_WAIT_S = 30
# Seconds teardown waits for a killed node's worker processes to exit on their own before killing them.
WORKER_EXIT_S = 20.0


def wait_for(what: str, probe: Callable[[], Any], deadline_s: float, interval_s: float = 0.5) -> Any:
    """Poll `probe` until it returns something truthy; TimeoutError naming `what` after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {deadline_s:.0f} s for {what}")
        time.sleep(interval_s)


@dataclass
class RayNode:
    """One `ray start --block` process group and its log."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        """SIGKILL everything this `ray start` started, nothing else, as a lost machine would: its process group and
        every descendant (the raylet starts the executors' worker processes in process groups of their own, and
        they outlive their raylet long enough to run more tasks)."""
        descendants = process_tree(self.process.pid) - {self.process.pid}
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for pid in descendants:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class TwoNodeCluster:
    """Where the cluster is, how to reach it, and its nodes ("head", "worker")."""

    temp_dir: Path
    token: str
    gcs_port: int
    dashboard_port: int
    env: dict[str, str]
    nodes: dict[str, RayNode] = field(default_factory=dict)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        import requests

        r = requests.get(f"{self.dashboard_url}{path}", params=params, headers=self.headers, timeout=10)
        r.raise_for_status()
        return r.json()

    def node_states(self) -> dict[str, dict[str, Any]]:
        """{node_id: state-API record} of every node the cluster has known, alive or dead."""
        return {n["node_id"]: n for n in self.get("/api/v0/nodes", limit=100, detail="true")["data"]["result"]["result"]}

    def alive_node_ids(self) -> set[str]:
        return {i for i, n in self.node_states().items() if n["state"] == "ALIVE"}

    def node_id(self, head: bool) -> str:
        alive = self.node_states().items()
        return next(i for i, n in alive if n["is_head_node"] == head and n["state"] == "ALIVE")

    def jobs(self) -> dict[str, str]:
        """{submission_id: status} of every job submitted to the cluster."""
        return {j["submission_id"]: j["status"] for j in self.get("/api/jobs/") if j.get("submission_id")}

    def worker_pids(self) -> set[int]:
        workers = self.get("/api/v0/workers", limit=10000, detail="true")["data"]["result"]["result"]
        return {int(w["pid"]) for w in workers if w.get("is_alive") and w.get("worker_type") == "WORKER"}

    def stop(self) -> None:
        """Kill both nodes, then any of their worker processes still exiting; remove the temp dir."""
        try:
            pids = self.worker_pids()
        except Exception:  # noqa: BLE001 - the head is already gone: its workers exit with their raylet
            pids = set()
        for node in self.nodes.values():
            node.kill()
        deadline = time.monotonic() + WORKER_EXIT_S
        while pids and time.monotonic() < deadline:
            pids = {p for p in pids if _alive(p)}
            time.sleep(0.2)
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")


def node_env(token_path: Path) -> dict[str, str]:
    """This process's environment plus token auth with this cluster's token, the venv's `python` first on PATH (the
    job API runs `python -m orchestrator run` with it), and the repo importable (tests.testjobs)."""
    dropped = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    path = [str(Path(sys.executable).parent), env.get("PATH", "")]
    pythonpath = [str(ROOT), env.get("PYTHONPATH", "")]
    return {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path), "RAY_USAGE_STATS_ENABLED": "0",
            "PATH": os.pathsep.join(p for p in path if p), "PYTHONPATH": os.pathsep.join(p for p in pythonpath if p)}


def _node_args(temp_dir: Path) -> list[str]:
    """What both nodes take: resources, a temp dir of the node's own (as on separate machines: nodes sharing one
    replace each other's copies of a job's working dir), and free ports for what would clash on one host."""
    return ["--block", "--num-gpus", str(GPUS_PER_NODE), "--num-cpus", str(CPUS_PER_NODE), "--temp-dir", str(temp_dir),
            "--disable-usage-stats", "--min-worker-port", "0", "--max-worker-port", "0",
            "--dashboard-agent-listen-port", str(free_port()), "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()), "--metrics-export-port", str(free_port())]


def _start(name: str, args: list[str], cluster: TwoNodeCluster, env: dict[str, str]) -> RayNode:
    log_path = cluster.temp_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *args], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    cluster.nodes[name] = RayNode(name, process, log_path)
    return cluster.nodes[name]


def _has_alive_nodes(cluster: TwoNodeCluster, wanted: int) -> bool:
    for node in cluster.nodes.values():
        if not node.running:
            raise RuntimeError(f"ray node {node.name!r} exited with {node.process.returncode}:\n{node.log_tail()}")
    try:
        return len(cluster.alive_node_ids()) >= wanted
    except Exception:  # noqa: BLE001 - the dashboard is still starting
        return False


def start_head(cluster: TwoNodeCluster) -> RayNode:
    args = ["--head", "--port", str(cluster.gcs_port), "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(cluster.dashboard_port), "--include-dashboard", "true",
            "--ray-client-server-port", str(free_port()), *_node_args(cluster.temp_dir / "h")]
    env = {**cluster.env, "RAY_health_check_period_ms": str(HEALTH_CHECK_PERIOD_MS),
           "RAY_health_check_failure_threshold": str(HEALTH_CHECK_FAILURES),
           "RAY_JOB_STOP_WAIT_TIME_S": str(JOB_STOP_WAIT_S)}
    head = _start("head", args, cluster, env)
    wait_for("the head node and its dashboard", lambda: _has_alive_nodes(cluster, 1), START_DEADLINE_S)
    return head


def start_worker(cluster: TwoNodeCluster) -> RayNode:
    """(Re)start the second node; returns once the cluster has two alive nodes."""
    worker = _start("worker", ["--address", cluster.gcs_address, *_node_args(cluster.temp_dir / "w")], cluster,
                    cluster.env)
    wait_for("the second node to join", lambda: _has_alive_nodes(cluster, 2), START_DEADLINE_S)
    return worker


def ensure_two_nodes(cluster: TwoNodeCluster) -> None:
    """Restart the second node if a test removed it."""
    if not cluster.nodes["worker"].running or len(cluster.alive_node_ids()) < 2:
        cluster.nodes["worker"].kill()
        start_worker(cluster)


def start_cluster() -> TwoNodeCluster:
    """A head and a second node, each with 4 logical GPUs and 4 CPUs, token auth on with a fresh token."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    token = secrets.token_hex(32)
    (temp_dir / "auth_token").write_text(token)
    cluster = TwoNodeCluster(temp_dir, token, free_port(), free_port(), node_env(temp_dir / "auth_token"))
    try:
        start_head(cluster)
        start_worker(cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster
