"""The writer coalesces what waits: a busy store gets one create, one batch and one end per run, and loses nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from mlflow.tracking import MlflowClient

from orchestrator.records import CurvePoint, Resources, RunResult, RunSpec
from orchestrator.tracking import ops
from orchestrator.tracking.writer import WriterCore

WHERE = {"node": "here", "ray_node": "", "gpu_ids": [], "started_at_ms": 1}


def spec(key: str, lr: float) -> RunSpec:
    return RunSpec(key, {"_target_": "orchestrator.jobs.synthetic.train", "lr": lr}, Resources(), f"lr={lr}",
                   {"job.lr": lr})


def points(key: str, start: int, count: int) -> list[CurvePoint]:
    now = int(time.time() * 1000)
    return [CurvePoint("loss", 1.0 / (s + 1), s, now + s) for s in range(start, start + count)]


def result(key: str, lr: float) -> RunResult:
    now = int(time.time() * 1000)
    return RunResult(key, "FINISHED", {"val_loss": lr * 10}, (CurvePoint("loss", 0.01, 9, now),), {"node": "here"},
                     started_at_ms=now, ended_at_ms=now)


def close(writer: WriterCore) -> tuple[bool, list[str]]:
    """As the driver does: ask until every write is out."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        closed, errors = writer.close_launch("FINISHED", {"runs_finished": 1}, {"status": "FINISHED"})
        if closed:
            return closed, errors
        time.sleep(0.02)
    raise AssertionError("the writer did not close in 120 s")


def test_a_run_that_started_and_ended_while_the_store_was_busy_folds_into_one_write():
    child = [ops.create_child("s", spec("a", 0.1), WHERE), ops.log_points("a", points("a", 0, 5)),
             *ops.end_child(result("a", 0.1))]
    parent = [ops.log(ops.PARENT, metrics={"budget": 1.0}, step=1), ops.log(ops.PARENT, metrics={"budget": 2.0}, step=2)]
    units = ops.coalesce([*child, *parent, *ops.end_parent("FINISHED", {}, {})])
    kinds = [(write["op"], write["target"], len(parts)) for write, parts in units]
    # One write for the child (5 ops), the parent's two logs and its closing log together, then the parent's end.
    assert kinds == [("write", "a", 5), ("write", ops.PARENT, 3), ("end", ops.PARENT, 1)]
    write = units[0][0]
    assert write["create"]["name"] == "lr=0.1" and write["end"]["status"] == "FINISHED"
    assert write["tags"]["status"] == "FINISHED" and write["params"]["lr"] == "0.1"
    assert sorted(p[2] for p in write["points"] if p[0] == "loss") == [0, 1, 2, 3, 4, 9]


def test_runs_written_in_the_background_arrive_whole_in_three_store_calls_each(tracking_uri):
    writer = WriterCore(tracking_uri, background=True)
    assert writer.open_launch("coalesced", "launch 1", {"sweep.kind": "grid"}, {"sweep": "coalesced"}, {}, 1000)
    writer.buffer.store.write_calls = 0
    keys = [f"k{i}" for i in range(40)]
    # Hold the writer's thread while the runs come in, as a busy store would: everything waits together. (Holding
    # the queue's condition, not the store lock: the thread would otherwise take the first ops as a batch of their own.)
    with writer.buffer._arrived:
        for i, key in enumerate(keys):
            writer.start(spec(key, 0.1 + i), WHERE)
            writer.points(key, 1, points(key, 0, 5))
            writer.end(spec(key, 0.1 + i), result(key, 0.1 + i), expected=2)
    assert close(writer) == (True, [])
    stats = writer.stats()
    assert stats["points_in"] == stats["points_out"] == 40 * 6 and stats["backlog_max"] >= 40
    # create_run, log_batch, set_terminated per run; the parent's closing log and end; its index file and listing.
    assert stats["store_calls"] <= 3 * 40 + 4
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("coalesced").experiment_id
    runs = client.search_runs([experiment], "tags.`orchestrator.role` = 'child'", max_results=100)
    assert sorted(r.data.tags["run_key"] for r in runs) == sorted(keys)
    for run in runs:
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "FINISHED"
        assert float(run.data.params["lr"]) == run.data.metrics["val_loss"] / 10
        assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [0, 1, 2, 3, 4, 9]


def test_a_write_mlflow_refuses_inside_a_coalesced_batch_is_named_and_the_others_land(tracking_uri):
    writer = WriterCore(tracking_uri, background=True)
    writer.open_launch("refused", "launch 1", {}, {}, {}, 1000)
    with writer.buffer._arrived:
        writer.start(spec("a", 0.1), WHERE)
        writer.buffer.submit(ops.log("a", params={"lr": "0.3"}))  # MLflow refuses to change a logged param
        writer.start(spec("b", 0.2), WHERE)
        writer.end(spec("a", 0.1), result("a", 0.1), expected=1)
        writer.end(spec("b", 0.2), result("b", 0.2), expected=1)
    closed, errors = close(writer)
    assert closed and len(errors) == 1 and "log of lr=0.1" in errors[0] and "Changing param values is not allowed" in errors[0]
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("refused").experiment_id
    runs = {r.data.tags["run_key"]: r for r in client.search_runs([experiment], "tags.`orchestrator.role` = 'child'")}
    assert {k: r.info.status for k, r in runs.items()} == {"a": "FINISHED", "b": "FINISHED"}
    assert runs["a"].data.params["lr"] == "0.1"
    # A launch with a refused write leaves no index: readers read its runs from MLflow.
    parent = client.search_runs([experiment], "tags.`orchestrator.role` = 'parent'")[0]
    assert "orchestrator.index" not in parent.data.tags


def test_the_writer_thread_outlives_its_launch_only_until_the_next_opens(tracking_uri):
    writer = WriterCore(tracking_uri, background=True)
    writer.open_launch("threads", "launch 1", {}, {}, {}, 1000)
    first = writer.buffer
    writer.open_launch("threads", "launch 2", {}, {}, {}, 2000)
    assert first._thread is not None and not first._thread.is_alive()
    assert Path(tracking_uri.removeprefix("sqlite:///")).exists()


def test_a_late_start_of_an_earlier_attempt_does_not_overwrite_the_retry_that_finished(tracking_uri):
    # Executors are different callers: attempt 1's start may reach the writer after attempt 2 started and ended.
    writer = WriterCore(tracking_uri)
    writer.open_launch("late-start", "launch 1", {}, {}, {}, 1000)
    first, second = spec("a", 0.1), replace(spec("a", 0.1), attempt=2)
    failed = replace(result("a", 0.1), status="FAILED", error="RuntimeError: first attempt fails", attempt=1)
    writer.retry(first, failed, expected=1)
    writer.start(second, WHERE)
    writer.end(second, replace(result("a", 0.1), attempt=2), expected=1)
    writer.start(first, WHERE)  # late
    assert close(writer) == (True, [])
    client = MlflowClient(tracking_uri=tracking_uri)
    [run] = client.search_runs([client.get_experiment_by_name("late-start").experiment_id],
                               "tags.`orchestrator.role` = 'child'")
    assert (run.info.status, run.data.tags["status"], run.data.tags["attempt"]) == ("FINISHED", "FINISHED", "2")
    assert run.data.tags["attempt_1.error"] == "RuntimeError: first attempt fails"


def test_notes_the_writer_describes_after_close_land_and_a_write_that_fails_is_named(tracking_uri):
    """The driver hands a finished launch's notes to the writer (while it builds the report): every one lands, a
    run MLflow does not know is named in the answer, and the others are still written."""
    writer = WriterCore(tracking_uri, background=True)
    parent = writer.open_launch("described", "launch 1", {}, {}, {}, 1000)
    writer.start(spec("a", 0.1), WHERE)
    writer.end(spec("a", 0.1), result("a", 0.1), expected=1)
    assert close(writer) == (True, [])
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("described").experiment_id
    child = client.search_runs([experiment], "tags.`orchestrator.role` = 'child'")[0].info.run_id
    note = "mlflow.note.content"
    launch_calls = writer.stats()["store_calls"]
    failed = writer.describe([(parent, {note: "the launch"}), ("0" * 32, {note: "nobody"}), (child, {note: "run a"})],
                             {note: "the sweep"})
    assert len(failed) == 1 and "0" * 32 in failed[0], failed
    # The launch's own store calls stay apart from its notes' (the scale benchmark counts calls per run).
    stats = writer.stats()
    assert stats["store_calls"] == launch_calls and stats["notes_calls"] == 4 and stats["notes_seconds"] > 0
    assert client.get_run(parent).data.tags[note] == "the launch"
    assert client.get_run(child).data.tags[note] == "run a"
    assert client.get_experiment(experiment).tags[note] == "the sweep"


def test_a_run_that_ends_while_the_writer_is_idle_still_takes_three_store_calls(tracking_uri):
    """A run's end is its curve's last points, its results and its status: handed to the writer together, so an idle
    writer does not write the points on their own before the rest arrives."""
    writer = WriterCore(tracking_uri, background=True)
    writer.open_launch("idle", "launch 1", {}, {}, {}, 1000)
    keys = [f"k{i}" for i in range(20)]
    for i, key in enumerate(keys):
        writer.start(spec(key, 0.1 + i), WHERE)
        assert writer.buffer.drain(timeout_s=30)  # the start is written: the writer waits for the next message
        calls = writer.buffer.store.write_calls
        writer.end(spec(key, 0.1 + i), result(key, 0.1 + i), expected=1)
        assert writer.buffer.drain(timeout_s=30)
        assert writer.buffer.store.write_calls - calls == 2, key  # log_batch (points and results), set_terminated
    assert close(writer) == (True, [])
