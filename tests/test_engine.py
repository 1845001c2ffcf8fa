"""A sweep runs on real Ray executors and lands in real MLflow: one parent per launch, one child per run_key."""

from __future__ import annotations


import pytest
from mlflow.tracking import MlflowClient

from orchestrator.errors import ConfigError, InfeasibleResourcesError
from orchestrator.launch import launch

SYN = ("job=synthetic", "+sweep=synthetic_demo")


def runs_of(uri: str, sweep: str, role: str = "child") -> list:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], f"tags.`orchestrator.role` = '{role}'", max_results=5000)


def test_a_grid_sweep_lands_as_finished_child_runs_with_params_curves_and_metrics(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "sweep.params.job.sleep_s=0.05"))
    assert summary.ok and summary.count("FINISHED") == 12
    parents = runs_of(tracking_uri, "synthetic-demo", "parent")
    children = runs_of(tracking_uri, "synthetic-demo")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 12
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert len({c.data.tags["run_key"] for c in children}) == 12
    child = next(c for c in children if c.info.run_name == "n_params=1e7 tokens=1e10")
    assert child.data.params["n_params"] == "10000000" and child.data.params["tokens"] == "10000000000"
    assert child.data.metrics["sweep.n_params"] == 1e7  # swept values are metrics too, so they can be range-filtered
    expected = 1.69 + 406.4 / 1e7**0.34 + 410.7 / 1e10**0.28
    assert child.data.metrics["val_loss"] == pytest.approx(expected, rel=0.05)
    assert child.data.metrics["flops"] == pytest.approx(6e17)
    history = MlflowClient(tracking_uri=tracking_uri).get_metric_history(child.info.run_id, "train_loss")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(range(1, 11))
    assert child.data.tags["status"] == "FINISHED" and child.data.tags["sweep"] == "synthetic-demo"
    assert child.data.tags["device"].startswith("gpu:") and child.data.tags["node"]
    assert parents[0].data.metrics["runs_finished"] == 12


def test_fractional_runs_pack_onto_one_gpu_and_run_at_once(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.where",
                             "resources.gpus=0.25", "~sweep.params", "+sweep.params.job.index=[0,1,2,3]",
                             "job.sleep_s=1.5", "execution.max_concurrent=4"))
    assert summary.ok
    children = runs_of(tracking_uri, "synthetic-demo")
    devices = {c.data.tags["device"] for c in children}
    assert len(children) == 4 and len(devices) == 1, devices
    starts = [c.data.metrics["t_start"] for c in children]
    ends = [c.data.metrics["t_end"] for c in children]
    assert max(starts) < min(ends), "the four quarter-GPU runs did not overlap in time"
    assert len({c.data.metrics["pid"] for c in children}) == 4


def test_a_two_gpu_run_sees_two_distinct_devices(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.where",
                             "resources.gpus=2", "~sweep.params", "+sweep.params.job.index=[0,1]"))
    assert summary.ok
    for child in runs_of(tracking_uri, "synthetic-demo"):
        visible = child.data.tags["cuda_visible_devices"].split(",")
        assert child.data.metrics["n_visible_gpus"] == 2 and len(set(visible)) == 2
        assert child.data.tags["device"] == ",".join(f"gpu:{g}" for g in visible)


def test_an_infeasible_request_fails_at_once_and_writes_nothing(ray_cluster, compose, tmp_path):
    db = tmp_path / "never.db"
    with pytest.raises(InfeasibleResourcesError, match=r"gpus=16.*no node can ever provide that.*8 GPUs"):
        launch(compose(*SYN, f"tracking.uri=sqlite:///{db}", "resources.gpus=16"))
    assert not db.exists()


@pytest.mark.parametrize("override", ["sweep.kind=spiral", "job._target_=jobs.missing.train", "resources.cpus=-1",
                                      "execution.retries=-2"])
def test_bad_input_raises_before_anything_is_written(ray_cluster, compose, tmp_path, override):
    db = tmp_path / "never.db"
    with pytest.raises(ConfigError):
        launch(compose(*SYN, f"tracking.uri=sqlite:///{db}", override))
    assert not db.exists()


def test_an_interrupted_sweep_resumes_with_only_the_missing_runs(ray_cluster, compose, tracking_uri):
    cfg = compose(*SYN, f"tracking.uri={tracking_uri}", "sweep.params.job.sleep_s=0.3", "execution.max_concurrent=2")
    ended = []

    class Count:
        def on_end(self, result):
            ended.append(result)

    first = launch(cfg, events=Count(), should_stop=lambda: len(ended) >= 5)
    done_first = first.count("FINISHED")
    assert 5 <= done_first < 12
    second = launch(cfg)
    assert second.skipped == done_first
    assert second.count("FINISHED") == 12 - done_first
    finished = [c for c in runs_of(tracking_uri, "synthetic-demo") if c.info.status == "FINISHED"]
    keys = [c.data.tags["run_key"] for c in finished]
    assert len(keys) == 12 and len(set(keys)) == 12
    third = launch(cfg)
    assert third.skipped == 12 and third.parent_run_id is None


def test_adding_grid_points_runs_only_the_new_ones(ray_cluster, compose, tracking_uri):
    base = (*SYN, f"tracking.uri={tracking_uri}", "~sweep.params", "+sweep.params.job.tokens=[1e9]")
    launch(compose(*base, "+sweep.params.job.n_params=[1e6,1e7]"))
    summary = launch(compose(*base, "+sweep.params.job.n_params=[1e6,1e7,1e8]"))
    assert summary.skipped == 2 and summary.count("FINISHED") == 1
    assert len(runs_of(tracking_uri, "synthetic-demo")) == 3


def test_forty_runs_finishing_together_lose_nothing_to_database_locks(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "resources.gpus=0.2", "~sweep.params",
                             "+sweep.params.job.n_params={log:[1e6,1e9],num:40}", "job.sleep_s=0.3", "job.steps=20"))
    assert summary.ok and not summary.tracking_errors
    children = runs_of(tracking_uri, "synthetic-demo")
    assert len(children) == 40 and {c.info.status for c in children} == {"FINISHED"}
    client = MlflowClient(tracking_uri=tracking_uri)
    assert all(len(client.get_metric_history(c.info.run_id, "train_loss")) == 20 for c in children)
    assert all("val_loss" in c.data.metrics for c in children)


def test_a_failing_run_is_failed_with_its_traceback_and_retried_as_configured(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "~sweep.params", "+sweep.params.job.fail=[true,false]",
                             "execution.retries=2"))
    assert summary.count("FAILED") == 1 and summary.count("FINISHED") == 1 and not summary.ok
    failed = next(c for c in runs_of(tracking_uri, "synthetic-demo") if c.info.status == "FAILED")
    assert failed.data.tags["attempt"] == "3"
    assert "RuntimeError: synthetic job asked to fail" in failed.data.tags["error"]
    assert "Traceback (most recent call last)" in failed.data.tags["traceback"]
    assert "attempt_1.error" in failed.data.tags and "attempt_2.error" in failed.data.tags
    assert failed.data.tags["cause"] == failed.data.tags["attempt_1.cause"] == "job_error"


def test_a_dead_executor_is_replaced_and_its_run_retried_without_spending_job_retries(ray_cluster, compose,
                                                                                           tracking_uri, tmp_path):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.crash_once",
                             f"+job.marker={tmp_path / 'marker'}", "~sweep", "+sweep.name=crash", "execution.retries=0"))
    assert summary.ok
    (child,) = runs_of(tracking_uri, "crash")
    assert child.info.status == "FINISHED" and child.data.tags["attempt"] == "2"
    assert "executor lost" in child.data.tags["attempt_1.error"]


def test_isolate_runs_every_run_in_a_fresh_process(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.where",
                             "resources.gpus=1", "~sweep.params", "+sweep.params.job.index=[0,1,2,3]",
                             "execution.max_concurrent=1", "execution.isolate=true"))
    assert summary.ok
    assert len({c.data.metrics["pid"] for c in runs_of(tracking_uri, "synthetic-demo")}) == 4


def test_runs_share_warm_executors_by_default(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.where",
                             "resources.gpus=1", "~sweep.params", "+sweep.params.job.index=[0,1,2,3]",
                             "execution.max_concurrent=1"))
    assert summary.ok
    assert len({c.data.metrics["pid"] for c in runs_of(tracking_uri, "synthetic-demo")}) == 1



def test_failed_runs_are_skipped_on_relaunch_unless_rerun_failed(ray_cluster, compose, tracking_uri, tmp_path):
    marker = tmp_path / "fixed"
    cfg = compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.fail_until_marker",
                  f"+job.marker={marker}", "~sweep.params", "+sweep.params.job.n_params=[1e6,1e7]")
    assert launch(cfg).count("FAILED") == 2
    marker.write_text("fixed")
    again = launch(cfg)
    assert again.skipped_failed == 2 and again.parent_run_id is None
    cfg.execution.rerun_failed = True
    rerun = launch(cfg)
    assert rerun.count("FINISHED") == 2
    statuses = sorted(c.info.status for c in runs_of(tracking_uri, "synthetic-demo"))
    assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]


def test_a_sweeps_analysis_section_logs_fits_and_frontiers_to_the_launch(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "~sweep.params",
                             "+sweep.params.job.n_params={log:[1e6,1e9],num:6}",
                             "+sweep.params.job.tokens={log:[1e9,1e11],num:5}", "job.noise=0.002",
                             "+sweep.analysis.fits=[{form:chinchilla,n:n_params,d:tokens,loss:val_loss,bootstrap:50}]",
                             "+sweep.analysis.frontiers=[{objectives:{flops:min,val_loss:min}}]"))
    assert summary.ok and summary.count("FINISHED") == 30
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(summary.parent_run_id)
    assert abs(parent.data.metrics["fit.chinchilla.alpha"] - 0.34) < 0.03
    assert abs(parent.data.metrics["fit.chinchilla.beta"] - 0.28) < 0.03
    files = {a.path for a in client.list_artifacts(summary.parent_run_id, "analysis")}
    assert {"analysis/fit.chinchilla.json", "analysis/fit.chinchilla.png"} <= files
    assert any(f.startswith("analysis/frontier.") and f.endswith(".csv") for f in files)


def test_runs_waiting_behind_a_crashed_run_are_not_charged_an_attempt(ray_cluster, compose, tracking_uri, tmp_path):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.crash_once",
                             f"+job.marker={tmp_path / 'marker'}", "~sweep.params", "+sweep.params.job.index=[0,1,2,3]",
                             "resources.gpus=1", "execution.max_concurrent=1", "execution.retries_on_loss=0"))
    children = runs_of(tracking_uri, "synthetic-demo")
    assert sorted(c.info.status for c in children) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    assert summary.count("FAILED") == 1 and summary.count("FINISHED") == 3
    assert all(c.data.tags["attempt"] == "1" for c in children)
    (failed,) = [c for c in children if c.info.status == "FAILED"]
    assert "executor lost" in failed.data.tags["error"]



def test_a_run_past_its_timeout_is_stopped_failed_not_retried_and_its_executor_replaced(ray_cluster, compose,
                                                                                         tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "~sweep.params", "+sweep.params.job.sleep_s=[30,0]",
                             "resources.gpus=1", "execution.max_concurrent=1", "execution.timeout_s=2",
                             "execution.retries=2"))
    assert summary.count("FAILED") == 1 and summary.count("FINISHED") == 1
    assert "val_loss" not in next(r for r in summary.results.values() if r.status == "FAILED").metrics
    failed = next(c for c in runs_of(tracking_uri, "synthetic-demo") if c.info.status == "FAILED")
    assert failed.data.tags["cause"] == "timeout" and failed.data.tags["attempt"] == "1"
    assert "execution.timeout_s=2" in failed.data.tags["error"]


def test_a_config_error_raised_by_the_job_is_not_retried(ray_cluster, compose, tracking_uri):
    summary = launch(compose(*SYN, f"tracking.uri={tracking_uri}", "job._target_=tests.testjobs.bad_config",
                             "~sweep", "+sweep.name=bad", "execution.retries=3"))
    (result,) = summary.results.values()
    assert result.status == "FAILED" and result.attempt == 1
    assert result.error == "ConfigError: width: must be a multiple of 8, got 3"
    (child,) = runs_of(tracking_uri, "bad")
    assert child.data.tags["attempt"] == "1" and "ValueError" in child.data.tags["error_types"]
