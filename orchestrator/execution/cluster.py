"""Connect to Ray (embedded or an existing cluster) and check that runs can ever be placed.

This is the only module that starts or joins Ray; what it learns is returned as a plain `ClusterInfo`.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from orchestrator.errors import InfeasibleResourcesError
from orchestrator.execution.priority import niceness
from orchestrator.records import Resources


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    gpus: float
    cpus: float
    memory_bytes: float


@dataclass(frozen=True)
class ClusterInfo:
    nodes: tuple[NodeInfo, ...]

    @property
    def total_gpus(self) -> float:
        return sum(n.gpus for n in self.nodes)

    @property
    def total_cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)


LOOPBACK = "127.0.0.1"


def _local_init_args(cluster: Mapping[str, Any]) -> dict[str, Any]:
    num_gpus = cluster.get("num_gpus")
    num_cpus = cluster.get("num_cpus")
    if num_cpus is None and num_gpus:
        # Logical GPUs on a small machine: give each declared GPU at least one logical CPU so runs can be packed.
        num_cpus = max(os.cpu_count() or 1, int(num_gpus))
    # Every server of the embedded Ray (GCS, raylet, workers, agents, metrics) binds to loopback only when the node's IP
    # is loopback (otherwise to all interfaces or the network address); nothing outside this machine needs them.
    # Workers start at the driver's priority, not Ray's lower default: executors lower their own, the tracking writer
    # keeps it (execution/priority.py).
    return {"num_gpus": num_gpus, "num_cpus": num_cpus, "include_dashboard": bool(cluster.get("include_dashboard")),
            "dashboard_host": LOOPBACK, "_node_ip_address": LOOPBACK,
            "_system_config": {"worker_niceness": niceness()}}


@contextmanager
def _loopback_node_ip() -> Iterator[None]:
    """Let ray.init keep the loopback node IP it is given. It replaces 127.0.0.1 with the machine's network address
    unless Ray clusters are off for the platform, as they are on macOS and Windows; that switch
    (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER) is read once when Ray is imported, so an environment variable cannot turn it off
    here and the module attribute is set instead, for the start only: a later ray.init that joins a cluster is as
    before."""
    from ray._private import ray_constants

    enabled = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = enabled


@contextmanager
def _keeping_sigterm_handler() -> Iterator[None]:
    """ray.init installs a native SIGTERM handler that aborts the process; a Python handler the application set (the
    CLI's, which stops the launch like Ctrl-C so its runs are marked KILLED) is put back afterwards."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


def connect(cluster: Mapping[str, Any]) -> ClusterInfo:
    """Start the embedded Ray (or join `cluster.address`) unless this process is already connected.

    Without an address, RAY_ADDRESS is joined when set (as it is for a driver that `orchestrator submit` or `ray job
    submit` started on a cluster); otherwise a fresh local Ray starts, even where `ray start` runs a cluster on this
    machine (join that one with cluster.address=auto)."""
    import ray

    if not ray.is_initialized():
        address = cluster.get("address") or os.environ.get("RAY_ADDRESS") or None
        kwargs = {"address": "local", **_local_init_args(cluster)} if address is None else {"address": address}
        if address is None:
            _quiet_token_notice()
        with _keeping_sigterm_handler(), (_loopback_node_ip() if address is None else nullcontext()):
            ray.init(log_to_driver=True, logging_level="WARNING", configure_logging=True, **kwargs)
    return describe(ray.nodes())


def _quiet_token_notice() -> None:
    """Ray warns on every start that token authentication is on. For the embedded Ray (loopback only, its token made
    and kept by Ray) there is nothing to do about it, so the one line is dropped; Ray's other warnings still show."""
    import logging

    class DropNotice(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith("Token authentication is enabled for this Ray cluster")

    chatty = logging.getLogger("ray._private.authentication.authentication_token_setup")
    if not any(isinstance(f, logging.Filter) and type(f).__name__ == "DropNotice" for f in chatty.filters):
        chatty.addFilter(DropNotice())


def describe(nodes: Iterable[Mapping[str, Any]]) -> ClusterInfo:
    """ClusterInfo of the alive nodes in `ray.nodes()` output."""
    alive = []
    for node in nodes:
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        alive.append(NodeInfo(node["NodeID"], node.get("NodeManagerAddress", "?"), res.get("GPU", 0.0),
                              res.get("CPU", 0.0), res.get("memory", 0.0)))
    return ClusterInfo(tuple(alive))


def fits(resources: Resources, node: NodeInfo) -> bool:
    gpus = resources.gpus or 0.0
    need_gpu = gpus if gpus >= 1 else (1.0 if gpus > 0 else 0.0)
    memory = resources.memory_bytes or 0
    return node.gpus >= need_gpu and node.cpus >= resources.cpus and node.memory_bytes >= memory


def check_feasible(resources: Resources, info: ClusterInfo) -> None:
    """Raise at once, before any run starts, when no node could ever hold one run of this shape."""
    if any(fits(resources, node) for node in info.nodes):
        return
    largest = max(info.nodes, key=lambda n: (n.gpus, n.cpus), default=None)
    have = "no alive nodes" if largest is None else (
        f"the largest node has {largest.gpus:g} GPUs, {largest.cpus:g} CPUs, {largest.memory_bytes / 1024**3:.1f} GiB")
    raise InfeasibleResourcesError(
        "resources",
        f"a run asks for gpus={resources.gpus:g}, cpus={resources.cpus:g}"
        + (f", memory_gb={resources.memory_bytes / 1024**3:g}" if resources.memory_bytes else "")
        + f" but no node can ever provide that ({have}). Lower the request or add a larger node"
        + " (cluster.num_gpus declares logical GPUs for the embedded Ray).",
    )


def capacity(resources: Resources, info: ClusterInfo) -> int:
    """How many runs of this shape fit on the cluster at once."""
    total = 0
    for node in info.nodes:
        limits = []
        if resources.gpus:
            limits.append(int(node.gpus // resources.gpus + 1e-9))
        if resources.cpus:
            limits.append(int(node.cpus // resources.cpus + 1e-9))
        if resources.memory_bytes:
            limits.append(int(node.memory_bytes // resources.memory_bytes))
        total += min(limits) if limits else 64
    return total
