"""While the MLflow server is unreachable, tracking writes wait in memory and in a local journal; nothing is lost,
nothing is written twice, and the sweep does not crash. Real `mlflow server` processes, stopped and started again."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.errors import TrackingError
from orchestrator.records import CurvePoint, Resources, RunResult, RunSpec
from orchestrator.tracking import ops
from orchestrator.tracking.buffer import FAIL_FAST_HTTP
from orchestrator.tracking.journal import ENV_DIR, journal_dir, read_journal, replay_journals
from orchestrator.tracking.store import MlflowStore
from orchestrator.tracking.writer import WriterCore
from tests.mlflow_server import MlflowServer, free_port

SYN = ("job=synthetic", "+sweep=synthetic_demo")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, _mlflow_template: Path) -> Iterator[MlflowServer]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(_mlflow_template, folder / "mlflow.db")
    running = MlflowServer(folder).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fail_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Journals under tmp_path, and this process's MLflow client failing in seconds as the writer's does (the writer
    sets these in its own process; monkeypatch restores them after each test)."""
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "journals"))
    for name, value in FAIL_FAST_HTTP.items():
        monkeypatch.setenv(name, value)


def children(uri: str, experiment: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], "tags.`orchestrator.role` = 'child'")


def parents(uri: str, experiment: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return client.search_runs([exp.experiment_id], "tags.`orchestrator.role` = 'parent'")


def steps(uri: str, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key))


def spec(key: str, lr: float) -> RunSpec:
    return RunSpec(key, {"_target_": "orchestrator.jobs.synthetic.train", "lr": lr}, Resources(), f"lr={lr}", {"job.lr": lr},
                   payload=object())  # a Hydra task function would not survive JSON: it must never be journaled


def result(key: str, points: int) -> RunResult:
    now = int(time.time() * 1000)
    tail = tuple(CurvePoint("loss", 1.0 / (s + 1), s, now + s) for s in range(3, points))
    return RunResult(key, "FINISHED", {"val_loss": 0.5}, tail, {"node": "here"}, started_at_ms=now, ended_at_ms=now)


def curve(start: int, stop: int) -> list[CurvePoint]:
    now = int(time.time() * 1000)
    return [CurvePoint("loss", 1.0 / (s + 1), s, now + s) for s in range(start, stop)]


WHERE = {"node": "here", "ray_node": "", "gpu_ids": [], "started_at_ms": 1}


def two_runs(uri: str, experiment: str, server_down: Callable[[], None]) -> WriterCore:
    """Run a starts while the server is up; then it goes down, and a ends and b runs from start to end."""
    writer = WriterCore(uri, str(journal_dir(uri)))
    writer.open_launch(experiment, "launch 1", {"sweep.kind": "grid"}, {"sweep": experiment}, {"config.yaml": "a: 1\n"},
                       int(time.time() * 1000))
    writer.start(spec("a", 0.1), WHERE)
    server_down()
    writer.points("a", 1, curve(0, 3))
    writer.end(spec("a", 0.1), result("a", 5), 2)
    writer.start(spec("b", 0.2), WHERE)
    writer.points("b", 1, curve(0, 3))
    writer.end(spec("b", 0.2), result("b", 5), 2)
    return writer


def driver_dying_in_an_outage(uri: str, experiment: str) -> None:
    """In a process of its own: say when the server should go down, wait for it, write, then die without cleanup."""
    def server_down() -> None:
        print("stop the server", flush=True)
        sys.stdin.readline()

    two_runs(uri, experiment, server_down)
    os._exit(0)


def test_writes_kept_through_an_outage_by_a_driver_that_died_are_replayed_once_by_the_next_launch(server):
    code = f"from tests.test_tracking_outage import *; driver_dying_in_an_outage({server.uri!r}, 'outage-died')"
    driver = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert driver.stdout is not None and driver.stdin is not None
    assert driver.stdout.readline() == "stop the server\n"
    server.stop()
    driver.stdin.write("\n")
    driver.stdin.flush()
    assert driver.wait(timeout=120) == 0
    [path] = journal_dir(server.uri).glob("*.jsonl")
    header, kept = read_journal(path)
    assert header["experiment"] == "outage-died" and set(header["ids"]) == {"parent", "a"}
    assert [op["op"] for op in kept] == ["points", "points", "log", "end", "create", "points", "points", "log", "end"]
    assert "payload" not in path.read_text()
    journal = path.read_text()
    server.start()
    assert replay_journals(server.uri) == 9
    assert not path.exists()
    runs = {run.data.tags["run_key"]: run for run in children(server.uri, "outage-died")}
    assert set(runs) == {"a", "b"} and {r.info.status for r in runs.values()} == {"FINISHED"}
    assert {r.data.metrics["val_loss"] for r in runs.values()} == {0.5}
    assert runs["b"].data.params["lr"] == "0.2" and runs["b"].data.metrics["sweep.lr"] == 0.2
    assert all(steps(server.uri, r.info.run_id, "loss") == [0, 1, 2, 3, 4] for r in runs.values())
    [parent] = parents(server.uri, "outage-died")
    assert parent.info.status == "RUNNING"  # left as it was: marking a dead driver's launch is not the replay's job

    path.write_text(journal)  # the same journal once more: its creates already reached the server
    assert replay_journals(server.uri) == 9
    again = children(server.uri, "outage-died")
    assert sorted(r.data.tags["run_key"] for r in again) == ["a", "b"]
    assert all(steps(server.uri, r.info.run_id, "loss") == [0, 1, 2, 3, 4] for r in again)


def test_a_launch_closed_during_an_outage_waits_then_says_where_its_writes_are_and_the_next_launch_writes_them(
        server):
    writer = two_runs(server.uri, "outage-closed", server.stop)
    totals = {"runs_finished": 2.0}
    assert writer.close_launch("FINISHED", totals, {"status": "FINISHED"}, force=True) == (False, [])
    assert writer.outage() is not None and "unreachable since" in writer.outage()
    closed, errors = writer.close_launch("FINISHED", totals, {"status": "FINISHED"}, force=True, outage_grace_s=0)
    [path] = journal_dir(server.uri).glob("*.jsonl")
    assert closed and len(errors) == 1
    assert re.fullmatch(rf"MLflow at {server.uri} unreachable since [\d: -]+: 11 writes kept in {re.escape(str(path))}; "
                        rf"they are replayed by the next launch that tracks to {server.uri}", errors[0]), errors
    server.start()

    assert replay_journals(server.uri) == 11 and not path.exists()
    [parent] = parents(server.uri, "outage-closed")
    assert parent.info.status == "FINISHED" and parent.data.metrics["runs_finished"] == 2.0
    runs = children(server.uri, "outage-closed")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}


def test_a_writer_back_from_an_outage_beats_at_once_so_its_live_driver_is_not_taken_for_dead(server):
    from orchestrator.tracking.orphans import HEARTBEAT_TAG

    writer = two_runs(server.uri, "outage-beat", server.stop)  # no heartbeat could go out while the server was down
    down_s = time.time()
    server.start()
    writer.start(spec("c", 0.3), WHERE)  # the next message finds the server back
    [parent] = parents(server.uri, "outage-beat")
    assert int(parent.data.tags[HEARTBEAT_TAG]) >= int(down_s)
    assert writer.close_launch("FINISHED", {}, {"status": "FINISHED"}, force=True) == (True, [])
    assert not list(journal_dir(server.uri).glob("*.jsonl"))


def test_a_write_mlflow_rejects_is_reported_not_kept(server):
    writer = WriterCore(server.uri, str(journal_dir(server.uri)))
    writer.open_launch("outage-rejected", "launch 1", {}, {}, {}, int(time.time() * 1000))
    writer.start(spec("a", 0.1), WHERE)
    writer.buffer.submit(ops.log("a", params={"lr": "0.3"}))  # MLflow refuses to change a logged param
    closed, errors = writer.close_launch("FINISHED", {}, {"status": "FINISHED"})
    assert closed and len(errors) == 1 and "log of lr=0.1" in errors[0] and "INVALID_PARAMETER_VALUE" in errors[0]
    assert not journal_dir(server.uri).exists()
    assert parents(server.uri, "outage-rejected")[0].info.status == "FINISHED"


def test_reading_an_unreachable_server_raises_a_tracking_error_naming_it():
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TrackingError, match=rf"MLflow tracking server at {uri} is unreachable: .*Connection refused"):
        MlflowStore(uri, "any").statuses()


def stop_once_under_way(server: MlflowServer, experiment: str, down_s: float, marks: dict[str, Any]) -> None:
    """Once a child run of `experiment` is in MLflow, stop the server for `down_s`, then start it again. (Waiting
    for a FINISHED one left too little of the sweep on a busy machine: every run had ended before the server
    stopped.)"""
    try:
        deadline = time.monotonic() + 120
        while not children(server.uri, experiment):
            assert time.monotonic() < deadline, "no run began in 120 s"
            time.sleep(0.1)
        marks["down_ms"] = time.time() * 1000
        server.stop()
        time.sleep(down_s)
        server.start()
        marks["up_ms"] = time.time() * 1000
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        marks["error"] = exc
        if server.process is None:
            server.start()


def test_a_sweep_through_a_tracking_outage_ends_ok_with_every_run_curve_and_total_written_once(
        ray_cluster, compose, server):
    from orchestrator.launch import launch

    marks: dict[str, Any] = {}
    outage = threading.Thread(target=stop_once_under_way, args=(server, "outage-sweep", 6.0, marks))
    outage.start()
    # 12 one-second runs two at a time: about 6 s of runs, most of them after the server stops.
    summary = launch(compose(*SYN, "name=outage-sweep", f"tracking.uri={server.uri}", "sweep.params.job.sleep_s=1.0",
                             "execution.max_concurrent=2"))
    outage.join()
    assert "error" not in marks, marks.get("error")
    assert summary.ok and summary.count("FINISHED") == 12, summary.tracking_errors

    runs = children(server.uri, "outage-sweep")
    assert any(marks["down_ms"] < r.info.end_time < marks["up_ms"] for r in runs), "no run ended during the outage"
    [parent] = parents(server.uri, "outage-sweep")
    assert parent.info.status == "FINISHED" and parent.data.metrics["runs_finished"] == 12
    assert len(runs) == 12 and len({r.data.tags["run_key"] for r in runs}) == 12
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert all(steps(server.uri, r.info.run_id, "train_loss") == list(range(1, 11)) for r in runs)
    assert not list(journal_dir(server.uri).glob("*.jsonl"))
