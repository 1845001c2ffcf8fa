"""The sweep index: reads of a sweep give what MLflow holds, from each launch's index file where it has a usable one
and from the runs themselves where not (no file, a launch changed after it closed, a file gone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.errors import ConfigError
from orchestrator.launch import launch
from orchestrator.sweeps import load_sweep
from orchestrator.tracking import index
from orchestrator.tracking.frames import runs_frame, tracked_run
from orchestrator.tracking.store import MlflowStore

SYN = ("job=synthetic", "+sweep=synthetic_demo", "sweep.params.job.sleep_s=0", "execution.retries=1",
       "job._target_=tests.testjobs.fail_first_attempt")


def content(runs: list[Any]) -> dict[str, tuple]:
    """What a reader sees of each run (the markdown notes aside: they are not in the index)."""
    return {r.info.run_id: (r.info.run_name, r.info.status, r.info.start_time, r.info.end_time, dict(r.data.params),
                            dict(r.data.metrics), {k: v for k, v in r.data.tags.items() if k != index.NOTE})
            for r in runs}


def assert_index_reads_what_mlflow_holds(store: MlflowStore) -> list[Any]:
    indexed, full = store.child_runs(), store.child_runs(use_index=False)
    assert content(indexed) == content(full)
    assert [r.info.run_id for r in indexed] == [r.info.run_id for r in full]  # newest first, both
    frame = runs_frame([tracked_run(r) for r in indexed])
    assert frame.equals(runs_frame([tracked_run(r) for r in full]))
    return indexed


def parents(uri: str, sweep: str) -> list[Any]:
    store = MlflowStore(uri, sweep)
    return sorted(store.parent_runs(), key=lambda r: r.info.start_time)


@pytest.fixture(scope="module")
def launched(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory, _mlflow_template: Path) -> tuple[str, int]:
    """A 12-run sweep whose runs fail their first attempt and finish the second, then a finer grid: its URI and
    how many runs it has."""
    import shutil

    db = tmp_path_factory.mktemp("index") / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    uri = f"sqlite:///{db}"
    from orchestrator.project import compose

    first = launch(compose(["tracking.report=false", *SYN, f"tracking.uri={uri}"]))
    assert first.count("FINISHED") == 12
    second = launch(compose(["tracking.report=false", *SYN, f"tracking.uri={uri}",
                            "sweep.params.job.n_params={log:[1.0e6,1.0e9],num:4}",
                            "sweep.params.job.tokens={log:[1.0e9,1.0e11],num:4}"]))
    assert second.count("FINISHED") == 16 - second.skipped and second.skipped > 0
    return uri, 12 + second.count("FINISHED")


@pytest.fixture
def two_launches(launched: tuple[str, int]) -> str:
    return launched[0]


def test_each_launch_lists_its_index_file_and_reads_through_it_equal_mlflow(launched):
    two_launches, count = launched
    launches = parents(two_launches, "synthetic-demo")
    assert [json.loads(p.data.tags[index.INDEX_TAG]) for p in launches] == [
        [f"orchestrator/{index.file_name(p.info.start_time)}"] for p in launches]
    runs = assert_index_reads_what_mlflow_holds(MlflowStore(two_launches, "synthetic-demo"))
    assert len(runs) == count
    assert all(r.data.tags["attempt_1.error"] for r in runs if r.data.tags["attempt"] == "2")  # in the index too
    assert len(load_sweep("synthetic-demo", tracking_uri=two_launches).runs) == count


def test_a_launch_whose_runs_recost_changed_is_read_from_mlflow(two_launches, tmp_path):
    import shutil

    db = tmp_path / "copy.db"
    shutil.copy(two_launches.removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    from orchestrator.energy.cost import cost_model_from_settings
    from orchestrator.energy.recost import recost_runs

    store = MlflowStore(uri, "synthetic-demo")
    recost_runs(store, cost_model_from_settings({"default_usd_per_gpu_hour": 99.0}))
    assert {p.data.tags[index.OPEN_TAG] for p in parents(uri, "synthetic-demo")} == {"1"}
    runs = assert_index_reads_what_mlflow_holds(store)
    assert {r.data.metrics.get("cost_gpu_usd", 0.0) > 0 for r in runs} == {True}


def test_a_missing_or_unreadable_index_file_falls_back_to_the_runs(two_launches, tmp_path):
    import shutil

    folder = Path(two_launches.removeprefix("sqlite:///")).parent
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    uri = f"sqlite:///{copy / 'mlflow.db'}"
    store = MlflowStore(uri, "synthetic-demo")
    first = parents(uri, "synthetic-demo")[0]
    client = MlflowClient(tracking_uri=uri)
    # The artifacts stay where the original run put them: remove that file, as a user cleaning up disk might.
    listed = json.loads(first.data.tags[index.INDEX_TAG])[0]
    local = Path(client.download_artifacts(first.info.run_id, listed, str(tmp_path)))
    assert local.read_bytes()
    artifact = Path(first.info.artifact_uri.removeprefix("file://")) / listed
    artifact.write_bytes(b"not an index")
    assert_index_reads_what_mlflow_holds(store)


def test_a_launch_without_an_index_is_read_from_its_runs(launched, tmp_path):
    two_launches, count = launched
    import shutil

    db = tmp_path / "copy.db"
    shutil.copy(two_launches.removeprefix("sqlite:///"), db)
    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    client.delete_tag(parents(uri, "synthetic-demo")[1].info.run_id, index.INDEX_TAG)  # as a launch that died
    runs = assert_index_reads_what_mlflow_holds(MlflowStore(uri, "synthetic-demo"))
    assert len(runs) == count


def test_more_than_one_writer_on_a_sqlite_store_is_refused_before_anything_is_written(ray_cluster, compose, tmp_path):
    db = tmp_path / "mlflow.db"
    with pytest.raises(ConfigError, match=r"tracking.writer_shards: .*SQLite"):
        launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri=sqlite:///{db}",
                       "tracking.writer_shards=2"))
    assert not db.exists()
