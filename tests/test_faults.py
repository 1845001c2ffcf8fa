"""Fault injection: whatever dies mid-sweep, every run_key ends with exactly one FINISHED child, none lost or doubled."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from orchestrator.launch import launch
from tests.test_engine import SYN, runs_of


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def running_executors() -> list[int]:
    """PIDs of this session's executor processes that are running a job right now (Ray titles them
    `ray::RayExecutor.run_tracked`); workers of other Ray instances on the machine are left alone."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
            if entry.name.isdigit() and b"RayExecutor.run_tracked" in title and _ppid(_ppid(int(entry.name))) == os.getpid():
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def exactly_one_finished_per_key(uri: str, sweep: str, keys: int) -> list:
    children = runs_of(uri, sweep)
    finished = Counter(c.data.tags["run_key"] for c in children if c.info.status == "FINISHED")
    assert len(finished) == keys and set(finished.values()) == {1}
    return children


def test_a_run_that_always_kills_its_executor_fails_after_retries_on_loss_plus_one_attempts(ray_cluster, compose,
                                                                                              tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.crash_always",
                             "~sweep", "+sweep.name=segfault", "execution.retries_on_loss=2", "execution.retries=5"))
    (result,) = summary.results.values()
    assert result.status == "FAILED" and result.attempt == 3 and result.tags["cause"] == "executor_lost"
    (child,) = runs_of(tracking_uri, "segfault")
    assert child.info.status == "FAILED" and child.data.tags["attempt"] == "3"
    assert "executor lost" in child.data.tags["attempt_1.error"] and "executor lost" in child.data.tags["attempt_2.error"]
    assert child.data.tags["attempt_1.cause"] == child.data.tags["attempt_2.cause"] == "executor_lost"
    assert child.data.tags["cause"] == "executor_lost"


def test_executors_killed_at_random_moments_lose_no_run_and_run_none_twice(ray_cluster, compose, tracking_uri):
    rng, kills, done = random.Random(7), [], threading.Event()

    def killer() -> None:
        while len(kills) < 4 and not done.wait(rng.uniform(0.3, 1.2)):
            victims = running_executors()
            if victims:
                pid = rng.choice(victims)
                os.kill(pid, signal.SIGKILL)
                kills.append(pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.where",
                                 "~sweep.params", f"+sweep.params.job.index=[{','.join(map(str, range(24)))}]",
                                 "++job.sleep_s=1.0", "resources.gpus=1", "execution.max_concurrent=4",
                                 "execution.retries_on_loss=4"))
    finally:
        done.set()
        thread.join()
    assert len(kills) == 4
    assert summary.ok and summary.count("FINISHED") == 24
    children = exactly_one_finished_per_key(tracking_uri, "synthetic-demo", 24)
    assert len(children) == 24  # one child per run_key: a retried attempt continues its run, it is not a new one
    retried = [c for c in children if int(c.data.tags["attempt"]) > 1]
    assert len(retried) >= 1 and all("executor lost" in c.data.tags["attempt_1.error"] for c in retried)


def _poll(condition, deadline_s: float = 180.0, what: str = ""):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_sweep_whose_driver_was_killed_resumes_running_only_what_is_missing(tracking_uri, tmp_path):
    """The driver (with its embedded Ray) is SIGKILLed mid-sweep; `orchestrator resume` marks the runs it left RUNNING
    as KILLED (cause driver_lost), reruns them, and does not rerun what had finished."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    index = ",".join(map(str, range(12)))
    command = [sys.executable, "-m", "orchestrator", "run", *SYN, "job._target_=tests.testjobs.where", "~sweep.params",
               f"+sweep.params.job.index=[{index}]", "++job.sleep_s=1.5", "resources.gpus=1", "cluster.num_gpus=2",
               f"tracking.uri={tracking_uri}"]
    with open(tmp_path / "driver.log", "wb") as log:
        driver = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
        try:
            def midway() -> bool:
                statuses = Counter(c.info.status for c in runs_of(tracking_uri, "synthetic-demo"))
                return statuses["FINISHED"] >= 2 and statuses["RUNNING"] >= 1
            _poll(midway, what="the first launch to be midway")
        finally:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()
    # Ray's own processes are not in the driver's process group: its writer may still apply a few queued writes
    # for a moment. What the dead launch left is the store once that settles.
    before, settled = runs_of(tracking_uri, "synthetic-demo"), 0
    for _ in range(60):
        time.sleep(0.5)
        now = runs_of(tracking_uri, "synthetic-demo")
        same = {(r.info.run_id, r.info.status) for r in now} == {(r.info.run_id, r.info.status) for r in before}
        before, settled = now, settled + 1 if same else 0
        if settled >= 6:
            break
    finished_before = {c.data.tags["run_key"] for c in before if c.info.status == "FINISHED"}
    left_running = {c.info.run_id for c in before if c.info.status == "RUNNING"}
    assert left_running

    resumed = subprocess.run([sys.executable, "-m", "orchestrator", "resume", "synthetic-demo", "--tracking-uri",
                              tracking_uri], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    children = exactly_one_finished_per_key(tracking_uri, "synthetic-demo", 12)
    orphans = [c for c in children if c.info.run_id in left_running]
    assert {c.info.status for c in orphans} == {"KILLED"}
    assert all(c.data.tags["cause"] == "driver_lost" and "driver lost" in c.data.tags["error"] for c in orphans)
    first, second = sorted(runs_of(tracking_uri, "synthetic-demo", role="parent"), key=lambda r: r.info.start_time)
    assert first.info.status == "KILLED" and first.data.tags["cause"] == "driver_lost"
    assert second.info.status == "FINISHED"
    rerun = [c for c in children if c.data.tags["mlflow.parentRunId"] == second.info.run_id]
    assert {c.data.tags["run_key"] for c in rerun}.isdisjoint(finished_before)
    assert len(rerun) == 12 - len(finished_before)


def test_sigterm_stops_a_driver_like_ctrl_c_leaving_no_run_running(tracking_uri, tmp_path):
    """`orchestrator stop` / `ray job stop` send SIGTERM: the launch ends KILLED, its running runs KILLED, none RUNNING."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "orchestrator", "run", *SYN, "job._target_=tests.testjobs.where", "~sweep.params",
               "+sweep.params.job.index=[0,1,2,3]", "++job.sleep_s=60", "resources.gpus=1", "cluster.num_gpus=2",
               f"tracking.uri={tracking_uri}"]
    driver = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        _poll(lambda: sum(c.info.status == "RUNNING" for c in runs_of(tracking_uri, "synthetic-demo")) == 2,
              what="two running runs")
        driver.send_signal(signal.SIGTERM)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 130, out.decode()[-2000:]
    children = runs_of(tracking_uri, "synthetic-demo")
    assert sorted(c.info.status for c in children) == ["KILLED", "KILLED"]
    assert all(c.data.tags["cause"] == "interrupted" for c in children)
    (parent,) = runs_of(tracking_uri, "synthetic-demo", role="parent")
    assert parent.info.status == "KILLED"


def test_launching_a_sweep_another_live_driver_is_running_is_refused(ray_cluster, compose, tracking_uri):
    from orchestrator.errors import SweepBusyError
    from orchestrator.tracking.orphans import driver_tags
    from orchestrator.tracking.store import MlflowStore

    store = MlflowStore(tracking_uri, "synthetic-demo")
    live = store.create_parent("launch elsewhere", {}, {"sweep": "synthetic-demo", **driver_tags()})
    cfg = compose(*SYN, f"tracking.uri={tracking_uri}")
    with pytest.raises(SweepBusyError, match="another driver .*this machine, pid"):
        launch(cfg)
    assert runs_of(tracking_uri, "synthetic-demo") == []
    assert store.client.get_run(live).info.status == "RUNNING"


def test_a_launch_whose_tracking_server_is_down_stops_before_any_run_naming_the_uri(ray_cluster, compose):
    """Without the test's fail-fast settings: the driver's own reads give up in seconds, not MLflow's two minutes."""
    from orchestrator.errors import TrackingError
    from tests.mlflow_server import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    started = []

    class Starts:
        def on_start(self, spec, where):
            started.append(spec)

    with pytest.raises(TrackingError, match=f"MLflow tracking server at {uri} is unreachable"):
        launch(compose(*SYN, f"tracking.uri={uri}"), events=Starts())
    assert started == []
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # the fail-fast setting does not leak into the process


def test_runs_waiting_for_a_kind_of_node_that_was_lost_are_reported_once(caplog):
    from collections import deque

    from orchestrator.execution.cluster import ClusterInfo, NodeInfo
    from orchestrator.execution.scheduler import Scheduler, SchedulerOptions
    from orchestrator.records import Resources, RunSpec

    cpu_only = ClusterInfo((NodeInfo("head", "127.0.0.1", gpus=0.0, cpus=4.0, memory_bytes=8e9),))
    scheduler = Scheduler(cpu_only, events=None, options=SchedulerOptions(), writer=None)
    one_gpu, cpu = Resources(gpus=1.0), Resources(gpus=0.0)
    scheduler.queues = {one_gpu: deque([RunSpec("a", {}, one_gpu, "a"), RunSpec("b", {}, one_gpu, "b")]),
                        cpu: deque([RunSpec("c", {}, cpu, "c")])}
    scheduler._warn_unplaceable()
    scheduler._warn_unplaceable()
    (record,) = [r for r in caplog.records if "wait for a node" in r.getMessage()]
    assert "2 runs wait for a node that can hold gpus=1, cpus=1" in record.getMessage()
