"""GPU power limits: a run's boards are set to its limit before the job starts and restored however the run ends.

    resources: {power_limit_w: 250}      # or power_limit_frac: 0.7, a fraction of each board's default limit
    params: {resources: {power_limit_frac: [0.5, 0.6, 0.7, 0.8, 1.0]}}   # a sweep over limits: one run per limit

Before a sweep starts, `check_limits` reads every GPU node's boards through NVML (`probe_node`, one task per node):
a limit outside a board's range is an error naming the range; so is missing permission to set limits (root or
CAP_SYS_ADMIN), unless the sweep says `power_limit_required: false`, when runs go on at the default limit, tagged
`power_limit_status=not_permitted`.

How a node keeps track (a JSON record per board in `records_dir()`, changed under a file lock):
- `hold`: the first run on a board writes the limit the board has now (`original_mw`) and its own process as holder,
  then sets its limit. A run sharing the board (fractional GPUs) with the same limit joins the holders; one with a
  different limit is refused (the scheduler never puts those on one board at once; see execution/scheduler.py).
- `Held.release`: the last holder sets the original limit back and removes the record.
- `restore_left_behind`: holders whose process is gone are dropped, and a board none holds gets its original limit
  back. Every executor runs it as it starts and the driver runs it on each GPU node when a launch ends, so a run whose
  process died (timeout, executor killed, node agent restart) leaves no board limited once anything runs again there.
A holder is a process id with its start time (from /proc where there is one), so a reused pid is not taken for it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from orchestrator.energy.errors import EnergyError
from orchestrator.errors import ConfigError, OrchestratorError

RECORDS_ENV = "ORCHESTRATOR_POWER_RECORDS"
# Seconds `hold` waits for the holders of a different limit to go (a killed executor may take a moment to exit).
CONFLICT_WAIT_S = 10.0
NO_PERMISSION = "nvml_no_permission"
NOT_REQUIRED_HINT = ("set sweep.power_limit_required=false to run at the boards' default limits (runs are tagged "
                     "power_limit_status=not_permitted)")
PERMISSION_HINT = ("setting GPU power limits needs root (or CAP_SYS_ADMIN) where the Ray workers run; or "
                   + NOT_REQUIRED_HINT)


class PowerLimitError(OrchestratorError):
    """A run's power limit could not be set (no permission, no NVML, a board held at another limit)."""


@dataclass(frozen=True)
class BoardLimits:
    """What one board allows, as NVML says (W)."""

    uuid: str
    name: str
    default_w: float
    min_w: float
    max_w: float
    now_w: float
    # None when this process may set limits; else why not ("nvml_no_permission: ...").
    not_settable: str | None = None


@dataclass(frozen=True)
class NodeLimits:
    node: str
    boards: tuple[BoardLimits, ...] = ()
    # Why the node's boards could not be read at all (no NVML), else None.
    error: str | None = None


def target_mw(request: tuple[str, float], default_mw: float) -> int:
    """The limit a request ("w", watts) or ("frac", fraction of the default) means on a board, in mW."""
    kind, value = request
    return int(round(value * 1000.0 if kind == "w" else value * default_mw))


def request_field(request: tuple[str, float]) -> str:
    return "resources.power_limit_w" if request[0] == "w" else "resources.power_limit_frac"


# -- before a sweep: what the nodes allow --------------------------------------------------------------------------
def probe_node() -> NodeLimits:
    """This node's boards: limits, range, and whether this process may set them (it sets each to the limit it has,
    which changes nothing where permitted)."""
    node = socket.gethostname()
    try:
        from orchestrator.energy import _nvml

        boards = []
        for board in _nvml.boards():
            now = _nvml.power_limit_mw(board.handle)
            low, high = _nvml.power_limit_range_mw(board.handle)
            default = _nvml.default_power_limit_mw(board.handle)
            try:
                _nvml.set_power_limit_mw(board.handle, now)
                reason = None
            except EnergyError as err:
                reason = str(err)
            boards.append(BoardLimits(board.uuid, board.name, default / 1000, low / 1000, high / 1000, now / 1000,
                                      reason))
        return NodeLimits(node, tuple(boards))
    except ImportError as err:
        return NodeLimits(node, error=f"nvml_not_installed: cannot import pynvml ({err})")
    except EnergyError as err:
        return NodeLimits(node, error=str(err))


def check_limits(requests: Iterable[tuple[str, float]], nodes: Sequence[NodeLimits], required: bool) -> None:
    """ConfigError, naming the field and what is allowed, for a limit some board cannot take, or (when `required`) for
    a node where limits cannot be set."""
    requests = sorted(set(requests))
    if not requests:
        return
    field_ = request_field(requests[0])
    if not nodes:
        raise ConfigError(field_, "a GPU power limit needs GPU nodes, and the cluster has none")
    for node in nodes:
        if node.error is not None and required:
            raise ConfigError(field_, f"cannot read GPU power limits on node {node.node}: {node.error}; "
                                      f"{NOT_REQUIRED_HINT}")
        for board in node.boards:
            for request in requests:
                limit_w = target_mw(request, board.default_w * 1000) / 1000
                if not board.min_w <= limit_w <= board.max_w:
                    asked = f"{request[1]:g} W" if request[0] == "w" else (
                        f"{request[1]:g} of the default {board.default_w:g} W = {limit_w:g} W")
                    raise ConfigError(request_field(request),
                                      f"{asked} is outside what {board.name} ({board.uuid}) on node {node.node} "
                                      f"allows: {board.min_w:g} to {board.max_w:g} W")
            if board.not_settable is not None and required:
                raise ConfigError(field_, f"cannot set power limits on {board.name} ({board.uuid}) on node "
                                          f"{node.node}: {board.not_settable}; {PERMISSION_HINT}")


def probe_cluster(node_ids: Sequence[str]) -> list[NodeLimits]:
    """`probe_node` on each of these Ray nodes."""
    return _on_each_node(probe_node, node_ids)


def restore_on_nodes(node_ids: Sequence[str]) -> list[str]:
    """`restore_left_behind` on each of these Ray nodes; what each restored ("node: board uuid")."""
    return [item for restored in _on_each_node(restore_left_behind, node_ids, 5.0) for item in restored]


def _on_each_node(fn: Any, node_ids: Sequence[str], *args: Any) -> list[Any]:
    """fn(*args) on each Ray node, as a zero-CPU task pinned there; the results in node order."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(fn)
    return ray.get([task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(*args)
                    for n in node_ids])


# -- on a node: holding limits -------------------------------------------------------------------------------------
def records_dir() -> Path:
    """Where this node keeps its records: $ORCHESTRATOR_POWER_RECORDS, else <tmp>/orchestrator-power-limits-<uid>."""
    return Path(os.environ.get(RECORDS_ENV) or Path(tempfile.gettempdir()) / f"orchestrator-power-limits-{os.getuid()}")


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where /proc does not say."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(holder: Mapping[str, Any]) -> bool:
    pid = int(holder["pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started = _start_time(pid)
    return not holder.get("started") or not started or started == holder["started"]


@contextmanager
def _records() -> Iterator[Path]:
    folder = records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


def _write(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


@dataclass
class Held:
    """The limits one run holds; `release` gives them back (the last holder of a board restores it)."""

    run_key: str
    boards: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """power_limit_w (only where set: the limit the run ran under) and power_limit_default_w, as final metrics,
        so `load_sweep(...).runs` and the power analysis read them."""
        out = {}
        if self.tags.get("power_limit_default_w"):
            out["power_limit_default_w"] = float(self.tags["power_limit_default_w"])
        if self.tags.get("power_limit_status") == "set":
            out["power_limit_w"] = float(self.tags["power_limit_w"])
        return out

    def release(self) -> None:
        if not self.boards:
            return
        from orchestrator.energy import _nvml

        me = str(os.getpid())
        with _records() as folder:
            for uuid in self.boards:
                path = folder / f"{uuid}.json"
                record = _read(path)
                if record is None:
                    continue
                record["holders"] = [h for h in record["holders"] if not (str(h["pid"]) == me
                                                                           and h["run_key"] == self.run_key)]
                if record["holders"]:
                    _write(path, record)
                else:
                    _nvml.set_power_limit_mw(_nvml.handle_by_uuid(uuid), int(record["original_mw"]))
                    path.unlink()
        self.boards = []


def hold(request: tuple[str, float], run_key: str, required: bool = True,
         visible_devices: str | None = None, device_order: str | None = None) -> Held:
    """Set the limit `request` asks on the boards of this process's GPUs (CUDA_VISIBLE_DEVICES unless given).
    Raises PowerLimitError when it cannot be set, unless not `required` and the reason is permission (then the run
    goes on at the default limit and `Held.tags` say so)."""
    from orchestrator.energy import _nvml, _resolve
    from orchestrator.energy.devices import parse_visible_devices

    visible = os.environ.get("CUDA_VISIBLE_DEVICES") if visible_devices is None else visible_devices
    order = os.environ.get("CUDA_DEVICE_ORDER") if device_order is None else device_order
    tokens = parse_visible_devices(visible)
    if not tokens:
        raise PowerLimitError(f"{request_field(request)}: the run holds no GPU (CUDA_VISIBLE_DEVICES={visible!r})")
    held = Held(run_key)
    try:
        uuids = list(dict.fromkeys(d.board_uuid for d in _resolve.open_devices(tokens, order)))
        for uuid in uuids:
            handle = _nvml.handle_by_uuid(uuid)
            default = _nvml.default_power_limit_mw(handle)
            limit = target_mw(request, default)
            held.tags.update(power_limit_w=f"{limit / 1000:g}", power_limit_default_w=f"{default / 1000:g}")
            _hold_board(handle, uuid, limit, run_key)
            held.boards.append(uuid)
        held.tags["power_limit_status"] = "set"
        return held
    except EnergyError as err:
        held.release()
        if err.code == NO_PERMISSION and not required:
            held.tags.update(power_limit_status="not_permitted", power_limit_w=held.tags.get(
                "power_limit_default_w", ""))
            return held
        hint = f"; {PERMISSION_HINT}" if err.code == NO_PERMISSION else ""
        raise PowerLimitError(f"{request_field(request)}: {err}{hint}") from err
    except BaseException:
        held.release()
        raise


def _hold_board(handle: Any, uuid: str, limit_mw: int, run_key: str) -> None:
    from orchestrator.energy import _nvml

    me = {"pid": os.getpid(), "started": _start_time(os.getpid()), "run_key": run_key}
    deadline = time.monotonic() + CONFLICT_WAIT_S
    while True:
        with _records() as folder:
            path = folder / f"{uuid}.json"
            record = _read(path)
            if record is not None:
                record["holders"] = [h for h in record["holders"] if _alive(h)]
                if not record["holders"]:  # left behind by a run that died: put the board back first
                    _nvml.set_power_limit_mw(handle, int(record["original_mw"]))
                    path.unlink()
                    record = None
            if record is None:
                record = {"board": uuid, "original_mw": _nvml.power_limit_mw(handle), "limit_mw": limit_mw,
                          "holders": [me]}
                _write(path, record)  # written before the limit changes, so a crash in between is still restored
                try:
                    _nvml.set_power_limit_mw(handle, limit_mw)
                except BaseException:
                    path.unlink()  # nothing was changed
                    raise
                return
            if int(record["limit_mw"]) == limit_mw:
                record["holders"].append(me)
                _write(path, record)
                return
        if time.monotonic() > deadline:
            raise PowerLimitError(f"board {uuid} is held at {int(record['limit_mw']) / 1000:g} W by run(s) "
                                  f"{', '.join(h['run_key'] for h in record['holders'])}; this run asks "
                                  f"{limit_mw / 1000:g} W, and runs on one board share its limit")
        time.sleep(0.2)


def restore_left_behind(wait_s: float = 0.0) -> list[str]:
    """Give back the original limit of every board whose holders are all gone; the boards restored. With `wait_s`,
    wait up to that long for holders still alive (a killed process may take a moment to exit)."""
    folder = records_dir()
    if not folder.is_dir() or not any(folder.glob("*.json")):
        return []  # nothing held here: NVML is not even loaded
    from orchestrator.energy import _nvml

    deadline, restored = time.monotonic() + wait_s, []
    while True:
        with _records() as folder:
            waiting = False
            for path in sorted(folder.glob("*.json")):
                record = _read(path)
                if record is None:
                    continue
                alive = [h for h in record["holders"] if _alive(h)]
                if alive:
                    waiting = True
                    if len(alive) < len(record["holders"]):
                        _write(path, {**record, "holders": alive})
                    continue
                _nvml.set_power_limit_mw(_nvml.handle_by_uuid(record["board"]), int(record["original_mw"]))
                path.unlink()
                restored.append(f"{socket.gethostname()}: {record['board']}")
        if not waiting or time.monotonic() >= deadline:
            return restored
        time.sleep(0.2)
