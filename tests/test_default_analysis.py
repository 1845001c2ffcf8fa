"""What a launch tells its user without an `analysis:` section: the default analysis of the job's primary metric
(`_metric_`, `_mode_`) and the notes MLflow shows as descriptions, on a real sweep through Ray and MLflow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import orchestrator as orc
from orchestrator.analysis.defaults import default_analysis
from orchestrator.errors import ConfigError
from orchestrator.launch import launch
from orchestrator.sweep.expand import plan_sweep

NOTE = "mlflow.note.content"


def test_every_launch_ends_with_the_front_and_a_fit_of_the_jobs_primary_metric(ray_cluster, compose, tracking_uri,
                                                                               tmp_path):
    summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                             "sweep.params.job.sleep_s=0.05", "tracking.report=true"))
    assert summary.ok
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(summary.parent_run_id)
    sweep = orc.load_sweep("synthetic-demo", tracking_uri)
    # The runs hold (logical) GPUs, so they cost dollars: the front is of cost_usd against val_loss, the same front
    # load_sweep computes.
    front = sweep.frontier({"cost_usd": "min", "val_loss": "min"})
    assert parent.data.metrics["frontier.cost_usd-val_loss.size"] == len(front)
    fit = sweep.fit(form="chinchilla", bootstrap=200, seed=0)
    assert parent.data.metrics["fit.law.alpha"] == pytest.approx(fit.params["alpha"], rel=1e-6)
    assert any(line.startswith("fit.law (12 runs): alpha ") for line in summary.analysis_summary)
    assert any(line.startswith(f"frontier.cost_usd-val_loss: {len(front)} of 12 runs on the front")
               for line in summary.analysis_summary)
    artifacts = {f.path for f in client.list_artifacts(summary.parent_run_id, "analysis")}
    assert {"analysis/fit.law.png", "analysis/frontier.cost_usd-val_loss.png"} <= artifacts
    # report.html draws the runs the analysis read, and this launch's row has what the analysis logged on it since.
    page = Path(client.download_artifacts(summary.parent_run_id, "report.html", str(tmp_path))).read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    row = next(r for r in data["summary"]["launches"] if r["parent_run_id"] == summary.parent_run_id)
    assert row["frontier.cost_usd-val_loss.size"] == len(front) and row["runs_finished"] == 12
    drawn = next(f for f in data["frontier"]["fronts"] if f["objectives"] == {"cost_usd": "min", "val_loss": "min"})
    assert {r["run_id"] for r in drawn["front"]} == set(front["run_id"])

    # Notes: the experiment says what the sweep is and links its latest launch; the launch shows the front as a
    # table; every child says where it stands, and the ones that are not on the front name a run that beats them.
    experiment = client.get_experiment(summary.experiment_id)
    assert "A **grid** sweep of `orchestrator.jobs.synthetic.train` over `job.n_params`, `job.tokens`." in \
        experiment.tags[NOTE]
    assert (f"#/experiments/{summary.experiment_id}/runs/{summary.parent_run_id}?workflowType=machine_learning"
            in experiment.tags[NOTE])
    launch_note = parent.data.tags[NOTE]
    assert "| 12 | 0 | 0 | 0 | 0 |" in launch_note
    for name in front["run_name"]:
        assert f"| {name} |" in launch_note
    on_front = set(front["run_key"])
    for child in sweep.all_runs.itertuples():
        note = client.get_run(child.run_id).data.tags[NOTE]
        assert f"### {child.run_name}" in note and "| **job.n_params** |" in note
        assert ("**On the front**" in note) == (child.run_key in on_front), note
        if child.run_key not in on_front:
            assert "Dominated by [" in note


def test_a_sweep_too_small_for_a_law_gets_the_front_and_says_why_there_is_no_fit(ray_cluster, compose,
                                                                                    tracking_uri):
    summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                             "~sweep.params", "+sweep.params.job.n_params=[1e7,1e9]",
                             "+sweep.params.job.tokens=[1e9,1e11]"))
    assert summary.ok
    assert ("scaling fit skipped: L(N, D) has 5 parameters; it needs 10 runs with 3 values each of n_params and "
            "tokens, here 4 runs with 2 and 2") in summary.analysis_warnings
    parent = MlflowClient(tracking_uri=tracking_uri).get_run(summary.parent_run_id)
    assert "fit.law.alpha" not in parent.data.metrics and "frontier.cost_usd-val_loss.size" in parent.data.metrics


def test_the_cost_axis_is_dollars_then_gpu_hours_then_time_whichever_the_runs_spent():
    runs = pd.DataFrame({"val_loss": [3.0, 2.0], "cost_usd": [0.0, 0.0], "gpu_hours": [0.1, 0.2], "wall_s": [1, 2]})
    spec, _ = default_analysis(runs, "val_loss", "min")
    assert spec["frontiers"] == [{"objectives": {"gpu_hours": "min", "val_loss": "min"}}]
    spec, _ = default_analysis(runs.assign(cost_usd=[0.3, 0.6]), "val_loss", "min")
    assert spec["frontiers"][0]["objectives"] == {"cost_usd": "min", "val_loss": "min"}
    spec, notes = default_analysis(runs.assign(accuracy=[0.5, 0.7]), "accuracy", "max")
    assert spec == {"frontiers": [{"objectives": {"gpu_hours": "min", "accuracy": "max"}}]} and notes == []
    spec, notes = default_analysis(runs, "accuracy", "max")
    assert spec == {} and "no finished run logged the job's metric 'accuracy'" in notes[0]


def test_the_primary_metric_is_not_part_of_the_jobs_config_or_its_run_key(compose):
    plain = plan_sweep(compose("job=synthetic", "+sweep=synthetic_demo"))
    assert plain.primary == ("val_loss", "min")
    assert all("_metric_" not in run.job and "_mode_" not in run.job for run in plain.runs)
    other = plan_sweep(compose("job=synthetic", "+sweep=synthetic_demo", "job._metric_=flops", "job._mode_=max"))
    assert other.primary == ("flops", "max")
    assert [r.run_key for r in other.runs] == [r.run_key for r in plain.runs]
    with pytest.raises(ConfigError, match=r"job._mode_: expected min \(lower is better\) or max, got 'lowest'"):
        plan_sweep(compose("job=synthetic", "+sweep=synthetic_demo", "job._mode_=lowest"))


def test_the_demo_ends_with_its_front_and_says_why_it_has_no_fit(ray_cluster, compose, tracking_uri):
    """The README's first sweep (the LM demo), with fewer tokens: 3 widths x 2 token budgets."""
    summary = launch(compose("+sweep=lm_demo", f"tracking.uri={tracking_uri}", "~sweep.params.job.tokens",
                             "+sweep.params.job.tokens=[2048,8192]", "job.eval_interval=4", "job.threads=1"))
    assert summary.ok and summary.count("FINISHED") == 6
    front = orc.load_sweep("lm-demo", tracking_uri).frontier({"cost_usd": "min", "val_loss": "min"})
    assert any(line.startswith(f"frontier.cost_usd-val_loss: {len(front)} of 6 runs on the front: ")
               for line in summary.analysis_summary)
    assert ("scaling fit skipped: L(N, D) has 5 parameters; it needs 10 runs with 3 values each of n_params and "
            "tokens, here 6 runs with 3 and 2") in summary.analysis_warnings


def test_a_large_launch_tells_its_front_first_then_its_best_runs_where_they_stand(monkeypatch):
    from orchestrator.launch import Analyzed, _standing_rows
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.records import Resources, RunSpec
    from orchestrator.tracking import notes

    # Cost against loss: runs 0-2 are the front; the others, dominated, from best (lowest loss) to worst.
    runs = pd.DataFrame({"run_key": [f"k{i}" for i in range(8)], "status": "FINISHED",
                         "cost_usd": [1.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
                         "val_loss": [3.0, 2.0, 1.0, 2.9, 1.5, 2.5, 1.2, 2.2]})
    analysis = Analyzed(runs=runs, objectives={"cost_usd": "min", "val_loss": "min"})
    front = pareto_front(runs, analysis.objectives)
    specs = {k: RunSpec(k, {}, Resources(), k, {}) for k in runs["run_key"]}
    monkeypatch.setattr(notes, "MAX_STANDINGS", 5)
    rows, left_out = _standing_rows(analysis, front, specs)
    assert list(rows["run_key"]) == ["k0", "k1", "k2", "k6", "k4"] and left_out == 3
    note = notes.launch_note("big", {"FINISHED": 8}, 1.0, {}, [], [], front, analysis.objectives, [], left_out)
    assert "The 5 runs of this launch nearest the front (the front first) were told where they stand" in note
    assert "the other 3 were not" in note
    # A launch's standings are of its own runs only: an earlier launch's are left as they were.
    rows, left_out = _standing_rows(analysis, front, {k: specs[k] for k in ("k2", "k7")})
    assert list(rows["run_key"]) == ["k2", "k7"] and left_out == 0
