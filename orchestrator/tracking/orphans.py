"""Launches whose driver died: their parent run and the child runs they left RUNNING are marked KILLED.

A driver tags its launch's parent run with its host and pid, and the scheduler refreshes a heartbeat tag on it every
`HEARTBEAT_S` (30 s). When a sweep is launched again, each earlier launch still RUNNING is judged: on this host its
driver is alive only if its process still exists (and has beaten recently); on another host, only if it has beaten in
the last `STALE_S`. A dead driver's runs are marked (status KILLED, cause driver_lost) and rerun by the new launch; a
live driver's launch makes the new one stop with `SweepBusyError` instead of running the same runs twice.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import SweepBusyError
from orchestrator.records import KILLED

HEARTBEAT_TAG = "orchestrator.heartbeat_s"
# Seconds without a heartbeat after which a driver on another host counts as gone (it beats every 30 s).
STALE_S = 120.0


def driver_tags() -> dict[str, str]:
    """Tags identifying this process as the driver of a launch, with its first heartbeat."""
    return {"driver.host": socket.gethostname(), "driver.pid": str(os.getpid()), HEARTBEAT_TAG: str(int(time.time()))}


@dataclass(frozen=True)
class OpenLaunch:
    """A parent run still RUNNING, and what is known of its driver."""

    run_id: str
    name: str
    host: str
    pid: int
    heartbeat_s: float

    @classmethod
    def of(cls, run: Any) -> OpenLaunch:
        tags = run.data.tags
        pid = tags.get("driver.pid", "")
        beat = tags.get(HEARTBEAT_TAG, "")
        return cls(run.info.run_id, run.info.run_name or "", tags.get("driver.host", ""),
                   int(pid) if pid.isdigit() else 0, float(beat) if beat.isdigit() else 0.0)

    def age_s(self, now_s: float) -> float:
        return now_s - self.heartbeat_s

    def alive(self, now_s: float, host: str) -> bool:
        fresh = self.age_s(now_s) < STALE_S
        if self.host == host:
            return fresh and self.pid > 0 and _process_exists(self.pid)
        return fresh


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def open_launches(store: Any) -> list[OpenLaunch]:
    """The sweep's launches still RUNNING, newest first."""
    runs = store.parent_runs("attributes.status = 'RUNNING'", newest_first=True, max_results=1000)
    return [OpenLaunch.of(run) for run in runs]


def settle_dead_drivers(store: Any, sweep: str) -> list[OpenLaunch]:
    """Mark every launch of `sweep` whose driver is gone, and its RUNNING children, KILLED (cause driver_lost);
    returns those launches. Raises `SweepBusyError` (marking nothing) while a live driver runs the sweep."""
    now, host = time.time(), socket.gethostname()
    launches = open_launches(store)
    live = [launch for launch in launches if launch.alive(now, host)]
    if live:
        raise SweepBusyError(_busy_message(sweep, live[0], now, host))
    for launch in launches:
        _mark_lost(store, launch)
    return launches


def _busy_message(sweep: str, launch: OpenLaunch, now_s: float, host: str) -> str:
    where = "this machine" if launch.host == host else f"host {launch.host}"
    wait = max(STALE_S - launch.age_s(now_s), 0.0)
    return (f"sweep {sweep!r} is being run right now by another driver ({where}, pid {launch.pid}, launch "
            f"{launch.name!r}, last heartbeat {launch.age_s(now_s):.0f} s ago); launching it again would run its runs "
            f"twice. Wait for it to end or stop it; if that driver is gone, its launch counts as dead "
            f"{STALE_S:.0f} s after its last heartbeat (in about {wait:.0f} s), and launching again then resumes it.")


def _mark_lost(store: Any, launch: OpenLaunch) -> None:
    error = (f"driver lost: the driver of launch {launch.name!r} (host {launch.host or '?'}, pid {launch.pid}) "
             f"died while this run was running; a later launch reran it")
    tags = {"status": KILLED, "cause": "driver_lost", "error": error}
    for child in store.child_runs(f"tags.`mlflow.parentRunId` = '{launch.run_id}' and attributes.status = 'RUNNING'"):
        store.log(child.info.run_id, tags=tags)
        store.terminate(child.info.run_id, KILLED)
    store.log(launch.run_id, tags={"status": KILLED, "cause": "driver_lost"})
    store.terminate(launch.run_id, KILLED)
