"""`orchestrator.load_sweep`: a sweep's runs read back from real MLflow (SQLite) as a DataFrame, and fitted.

The sweep is written the way tracking/store.py writes it (tests/tracked_sweeps.py): two launches over an 8 x 8
grid from a known law, a run_key finished in both, one that failed on its rerun, and one that only failed.
"""

from __future__ import annotations

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pandas.api.types import is_float_dtype, is_integer_dtype, is_numeric_dtype

import orchestrator as orc
from orchestrator.errors import ConfigError, SweepNotFoundError
from orchestrator.tracking.frames import IDENTITY, TrackedRun, runs_frame
from tests.tracked_sweeps import TRUTH

GRID = 64


@pytest.fixture(scope="module")
def sweep(law_sweep):
    return orc.load_sweep(law_sweep.name, tracking_uri=law_sweep.uri)


def test_runs_has_one_row_per_finished_run_key(sweep, law_sweep):
    runs = sweep.runs
    assert len(runs) == GRID
    assert runs["run_key"].is_unique
    assert set(runs["status"]) == {"FINISHED"}
    assert dict(zip(runs["run_key"], runs["run_id"])) == law_sweep.expected
    assert law_sweep.failed_key not in set(runs["run_key"])


def test_a_run_key_finished_in_two_launches_comes_from_the_newest_launch(sweep, law_sweep):
    row = sweep.runs.set_index("run_key").loc[law_sweep.twice_key]
    assert row["run_id"] == law_sweep.expected[law_sweep.twice_key]
    assert row["parent_run_id"] == law_sweep.new_parent
    assert row["val_loss"] == pytest.approx(law_sweep.val_loss[law_sweep.twice_key])


def test_a_run_key_that_failed_on_its_rerun_keeps_its_finished_run(sweep, law_sweep):
    row = sweep.runs.set_index("run_key").loc[law_sweep.failed_rerun_key]
    assert row["status"] == "FINISHED"
    assert row["parent_run_id"] == law_sweep.old_parent


def test_metrics_are_float_columns_and_numeric_params_are_numbers(sweep):
    runs = sweep.runs
    assert list(runs.columns[: len(IDENTITY)]) == list(IDENTITY)
    for metric in ("val_loss", "flops", "cost_usd", "wall_s", "sweep.n_params", "sweep.tokens"):
        assert is_float_dtype(runs[metric]), metric
    assert is_integer_dtype(runs["param.n_params"])
    assert is_float_dtype(runs["noise"]) and (runs["noise"] == 0.01).all()
    assert (runs["optim.lr"] == 3e-3).all() and (runs["resources.gpus"] == 1.0).all()
    assert set(runs["_target_"]) == {"orchestrator.jobs.synthetic.train"} and not is_numeric_dtype(runs["_target_"])
    assert set(runs["optim.betas"]) == {"[0.9, 0.95]"}
    assert runs["device"].isna().all() and runs["resources.memory_bytes"].isna().all()  # JSON null is missing


def test_a_param_named_like_a_metric_is_renamed_and_the_metric_keeps_the_name(sweep):
    runs = sweep.runs
    assert is_float_dtype(runs["n_params"]) and is_float_dtype(runs["tokens"])  # the metrics
    assert (runs["param.n_params"] - runs["n_params"]).abs().max() < 1  # the params, stored as ints
    assert "param.val_loss" not in runs.columns


def test_a_param_or_metric_named_like_an_identity_column_is_prefixed():
    run = TrackedRun("r1", "run-1", "k1", "FINISHED", "p1", 1_000, 2_000, {"status": "ok", "lr": "0.1"},
                     {"run_name": 3.0, "val_loss": 2.5})
    frame = runs_frame([run])
    assert frame.loc[0, "status"] == "FINISHED" and frame.loc[0, "run_name"] == "run-1"
    assert frame.loc[0, "param.status"] == "ok" and frame.loc[0, "metric.run_name"] == 3.0
    assert frame.loc[0, "lr"] == 0.1


def test_all_runs_has_every_child_of_every_launch_with_its_parent(sweep, law_sweep):
    all_runs = sweep.all_runs
    assert sorted(all_runs["run_id"]) == sorted(law_sweep.children)
    assert all_runs["status"].value_counts().to_dict() == {"FINISHED": GRID + 1, "FAILED": 2}
    assert set(all_runs["parent_run_id"]) == {law_sweep.old_parent, law_sweep.new_parent}
    assert (all_runs["run_key"] == law_sweep.twice_key).sum() == 2


def test_parents_lists_the_launches_oldest_first_with_their_totals(sweep, law_sweep):
    parents = sweep.parents
    assert list(parents["parent_run_id"]) == [law_sweep.old_parent, law_sweep.new_parent]
    assert list(parents["run_name"]) == ["launch-1", "launch-2"]
    assert (parents["status"] == "FINISHED").all() and (parents["total_cost_usd"] == 1.5).all()
    assert parents["start_time"].is_monotonic_increasing


def test_runs_is_a_copy_the_caller_may_change(sweep):
    runs = sweep.runs
    runs["val_loss"] = 0.0
    assert (sweep.runs["val_loss"] > 1.0).all()


def test_fit_recovers_the_exponents_of_the_law(sweep):
    fit = sweep.fit(form="chinchilla", bootstrap=100, seed=0)
    assert fit.n_points == GRID and len(fit.excluded) == 0
    assert fit.params["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)
    assert fit.params["beta"] == pytest.approx(TRUTH["beta"], rel=0.05)
    assert fit.ci["alpha"][0] < fit.params["alpha"] < fit.ci["alpha"][1]


def test_sweep_verbs_equal_the_functions_on_its_runs(sweep):
    objectives = {"cost_usd": "min", "val_loss": "min"}
    front = sweep.frontier(objectives)
    pd.testing.assert_frame_equal(front, orc.pareto_front(sweep.runs, objectives))
    assert 1 < len(front) < GRID
    assert sweep.fit_isoflop().a == pytest.approx(orc.fit_isoflop(sweep.runs).a)
    assert orc.hypervolume(front, objectives, {"cost_usd": 1e6, "val_loss": 10.0}) > 0


def test_an_unknown_sweep_is_an_error_listing_the_sweeps_there(law_sweep):
    before = [e.name for e in MlflowClient(law_sweep.uri).search_experiments()]
    with pytest.raises(SweepNotFoundError) as err:
        orc.load_sweep("no-such-sweep", tracking_uri=law_sweep.uri)
    assert isinstance(err.value, ConfigError) and err.value.field == "sweep"
    assert "'no-such-sweep'" in str(err.value) and repr(law_sweep.name) in str(err.value)
    assert [e.name for e in MlflowClient(law_sweep.uri).search_experiments()] == before


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path, monkeypatch):
    db = tmp_path / "absent.db"
    with pytest.raises(ConfigError, match="tracking_uri: no MLflow store") as err:
        orc.load_sweep("anything", tracking_uri=f"sqlite:///{db}")
    assert err.value.field == "tracking_uri" and not db.exists()
    monkeypatch.chdir(tmp_path)  # the default store is ./mlflow.db
    with pytest.raises(ConfigError, match="mlflow.db"):
        orc.load_sweep("anything")
    assert list(tmp_path.iterdir()) == []
