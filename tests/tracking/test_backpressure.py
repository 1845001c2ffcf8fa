"""Backpressure: when runs end faster than the store takes them, new runs wait for the tracking writer
(`tracking.max_lag_s`), and nothing is lost or written twice."""

from __future__ import annotations

import logging
import time

import pytest

from orchestrator.errors import ConfigError
from orchestrator.launch import launch
from orchestrator.tracking.store import MlflowStore
from orchestrator.tracking.writer import WriterCore

from tests.tracking.test_coalesced_writes import WHERE, close, points, result, spec


def test_the_writers_lag_is_how_long_the_oldest_unwritten_run_end_has_waited(tracking_uri):
    assert WriterCore(tracking_uri).lag() == 0.0  # before a launch
    writer = WriterCore(tracking_uri, background=True)
    writer.open_launch("lag", "launch 1", {}, {}, {}, 1000)
    with writer.buffer._arrived:  # the thread cannot take these yet
        for i in range(10):
            writer.start(spec(f"k{i}", 0.1 + i), WHERE)
            writer.points(f"k{i}", 1, points(f"k{i}", 0, 3))
        time.sleep(0.3)
        assert writer.lag() == 0.0  # starts and curve points of running runs are not a lag
        for i in range(10):
            writer.end(spec(f"k{i}", 0.1 + i), result(f"k{i}", 0.1 + i), expected=2)
        time.sleep(0.3)
        assert writer.lag() >= 0.3
    assert close(writer) == (True, [])
    assert writer.lag() == 0.0


def test_runs_that_end_faster_than_sqlite_takes_them_wait_and_all_arrive_once(ray_cluster, compose, tracking_uri,
                                                                              caplog):
    # 160 zero-length runs end in a second or two on 8 executors; SQLite takes ~20 a second here.
    with caplog.at_level(logging.WARNING, logger="orchestrator.tracking.shards"):
        summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                                 "sweep.name=paced", "~sweep.params", "+sweep.params.job.seed={range:[0,159],step:1}",
                                 "job.sleep_s=0", "tracking.max_lag_s=1"))
    assert summary.ok and summary.count("FINISHED") == 160
    assert "new runs wait while the tracking writer catches up" in caplog.text
    runs = MlflowStore(tracking_uri, "paced").child_runs(use_index=False)
    assert len(runs) == 160 and len({r.data.tags["run_key"] for r in runs}) == 160
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.parametrize("value, why", [(0.5, "expected null or a number of seconds >= 1"), (0, ">= 1"), (-3, ">= 1"),
                                        ("soon", "could not be converted to Float")])
def test_a_lag_limit_under_a_second_is_refused_before_anything_runs(compose, tracking_uri, value, why):
    with pytest.raises(ConfigError, match=rf"tracking.max_lag_s.*{why}"):
        launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                       f"tracking.max_lag_s={value}"))
    assert MlflowStore(tracking_uri, "synthetic-demo").experiment_id() is None
