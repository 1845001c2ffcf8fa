"""The embedded Ray of `orchestrator run` listens on loopback only: during a real sweep, every listening TCP socket of
every process of that Ray (the driver, GCS, raylet, agents, the writer and the executors) is bound to 127.0.0.1/::1.

The sweep runs as a subprocess with its own embedded Ray (the pytest process keeps the session's); its runs wait at a
barrier until the sockets have been listed, so the executors are alive and serving while they are.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from tests.processes import process_tree

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
RUNS = 2
# Generous deadline for Ray to start and the runs to reach the barrier; nothing asserts how long anything took.
DEADLINE_S = 120


def _address(hex_ip: str) -> IP:
    """An address as /proc/net/tcp{,6} writes it (32-bit words in little-endian order); IPv4-mapped IPv6 as IPv4."""
    ip = ipaddress.ip_address(b"".join(bytes.fromhex(hex_ip[i:i + 8])[::-1] for i in range(0, len(hex_ip), 8)))
    return (ip.ipv4_mapped or ip) if isinstance(ip, ipaddress.IPv6Address) else ip


def _listening() -> dict[int, tuple[IP, int]]:
    """Socket inode -> (ip, port) of every listening TCP socket in this network namespace."""
    sockets = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ip, port = fields[1].split(":")
                sockets[int(fields[9])] = (_address(ip), int(port, 16))
    return sockets


def listening_sockets(root: int) -> list[tuple[int, str, IP, int]]:
    """(pid, process name, ip, port) of every listening TCP socket owned by `root` or its descendants."""
    listening, found = _listening(), []
    for pid in process_tree(root):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:  # the process ended meanwhile
            continue
        inodes = {int(link[8:-1]) for link in links if link.startswith("socket:[")}
        found += [(pid, name, *listening[inode]) for inode in sorted(inodes & listening.keys())]
    return found


def test_the_embedded_ray_listens_on_loopback_only(tmp_path, tracking_uri):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    # `parties` is one more than the runs: the test is the last party, and lets the runs finish once it has looked.
    args = ["+sweep=synthetic_demo", "~sweep.params", f"+sweep.params.job.index=[{','.join(map(str, range(RUNS)))}]",
            "job._target_=tests.testjobs.together", f"+job.barrier_dir={barrier}", f"+job.parties={RUNS + 1}",
            "resources.gpus=1", f"cluster.num_gpus={RUNS}", f"tracking.uri={tracking_uri}"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # start an embedded Ray, join none
    log = tmp_path / "run.log"
    with log.open("w") as out:
        sweep = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", *args], cwd=tmp_path, env=env,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while len(list(barrier.iterdir())) < RUNS and sweep.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        sockets = listening_sockets(sweep.pid)
        (barrier / "test").touch()
        sweep.wait(timeout=DEADLINE_S)
    finally:
        sweep.kill()
    assert sweep.returncode == 0, log.read_text()

    assert [(name, pid, str(ip), port) for pid, name, ip, port in sockets if not ip.is_loopback] == []
    # The listing was taken while the executors ran: each run's executor is among the listeners, as are Ray's servers.
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("synthetic-demo")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * RUNS
    listeners = {pid for pid, *_ in sockets}
    assert {int(r.data.metrics["pid"]) for r in runs} <= listeners
    assert {"gcs_server", "raylet"} <= {name for _, name, *_ in sockets}
