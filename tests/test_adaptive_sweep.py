"""Closed-loop sweeps end to end on real Ray and MLflow: the planner proposes runs as results come in, within its
budget; every proposal says why; a relaunch tells the planner what ran and goes on; early stopping stops runs that
cannot reach the front and never one that would have been on it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from orchestrator.errors import ConfigError
from orchestrator.execution.context import JobContext, RunPruned
from orchestrator.jobs import synthetic
from orchestrator.launch import launch
from orchestrator.sweep.expand import plan_sweep

FRONTIER = "synthetic-frontier"


def children(uri: str, sweep: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep)
    return client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'", max_results=5000)


def ended(runs: list[Any]) -> list[Any]:
    """Runs that ended (FINISHED, or KILLED because they were pruned), not the ones interrupted by a stop."""
    return [r for r in runs if r.info.status == "FINISHED" or r.data.tags.get("status") == "PRUNED"]


def frontier_sweep(compose: Any, uri: str, *more: str) -> Any:
    return compose("+sweep=synthetic_frontier", f"tracking.uri={uri}", "sweep.budget.runs=14", "sweep.in_flight=4",
                   "sweep.initial=6", "sweep.params.job.max_sleep_s=0.3", *more)


def test_an_adaptive_sweep_stays_in_budget_tags_every_proposal_and_logs_its_search(ray_cluster, compose,
                                                                                   tracking_uri):
    summary = launch(frontier_sweep(compose, tracking_uri))
    assert summary.ok and summary.count("FINISHED") + summary.count("PRUNED") == 14
    runs = children(tracking_uri, FRONTIER)
    assert len(runs) == 14 and len({r.data.tags["run_key"] for r in runs}) == 14
    for run in runs:
        tags = run.data.tags
        assert tags["proposal.goal"] == "frontier" and tags["proposal.phase"] in ("initial", "model")
        assert float(tags["proposal.score"]) >= 0 and tags["proposal.index"].isdigit()
        point = json.loads(tags["proposal.point"])
        assert 1e6 <= point["job.n_params"] <= 1e9 and 1e9 <= point["job.tokens"] <= 1e11
        assert run.data.params["n_params"] == str(round(point["job.n_params"]))
    assert sorted(int(r.data.tags["proposal.index"]) for r in runs) == list(range(14))
    assert sum(r.data.tags["proposal.phase"] == "initial" for r in runs) >= 6
    client = MlflowClient(tracking_uri=tracking_uri)
    spent = client.get_metric_history(summary.parent_run_id, "budget.spent")
    assert [(m.step, m.value) for m in sorted(spent, key=lambda m: m.step)] == [(i, float(i)) for i in range(1, 15)]
    hypervolume = [m.value for m in sorted(client.get_metric_history(summary.parent_run_id, "planner.hypervolume"),
                                           key=lambda m: m.step)]
    assert len(hypervolume) == 14 and hypervolume[-1] > 0
    with open(client.download_artifacts(summary.parent_run_id, "analysis/frontier.goal.json")) as file:
        front = json.load(file)
    assert front  # the goal's front, logged on the launch without an analysis section
    parent = client.get_run(summary.parent_run_id)
    assert parent.data.params["sweep.goal"] == "frontier" and parent.data.params["sweep.budget.runs"] == "14"
    assert parent.data.metrics["runs_finished"] + parent.data.metrics.get("runs_pruned", 0) == 14
    assert summary.budget.spent == 14 and summary.budget.limit == 14


def test_a_killed_adaptive_sweep_relaunched_goes_on_without_rerunning_or_double_counting(ray_cluster, compose,
                                                                                         tracking_uri):
    cfg = frontier_sweep(compose, tracking_uri)
    seen: list[Any] = []

    class Count:
        def on_end(self, result: Any) -> None:
            seen.append(result)

    first = launch(cfg, events=Count(), should_stop=lambda: len(seen) >= 5)
    done_first = first.count("FINISHED") + first.count("PRUNED")
    assert 5 <= done_first < 14
    second = launch(cfg)
    assert second.skipped == done_first
    assert done_first + second.count("FINISHED") + second.count("PRUNED") == 14 and second.budget.spent == 14
    runs = ended(children(tracking_uri, FRONTIER))
    keys = [r.data.tags["run_key"] for r in runs]
    assert len(keys) == 14 and len(set(keys)) == 14  # nothing ran twice, nothing was lost
    indexes = sorted(int(r.data.tags["proposal.index"]) for r in runs)
    assert len(set(indexes)) == 14  # proposal indexes go on from the first launch's
    third = launch(cfg)  # the budget is spent: nothing runs, nothing is written
    assert third.parent_run_id is None and third.budget.spent == 14 and not third.results
    more = launch(frontier_sweep(compose, tracking_uri, "sweep.budget.runs=18"))
    assert more.skipped == 14 and more.count("FINISHED") + more.count("PRUNED") == 4
    assert len({r.data.tags["run_key"] for r in ended(children(tracking_uri, FRONTIER))}) == 18


def test_goal_law_logs_its_fit_and_interval_widths(ray_cluster, compose, tracking_uri):
    summary = launch(compose("+sweep=synthetic_law", f"tracking.uri={tracking_uri}", "sweep.budget.runs=16",
                             "+sweep.in_flight=4", "sweep.initial=8", "sweep.params.job.max_sleep_s=0.2"))
    assert summary.ok and summary.count("FINISHED") == 16
    client = MlflowClient(tracking_uri=tracking_uri)
    parent = client.get_run(summary.parent_run_id)
    assert {r.data.tags["proposal.goal"] for r in children(tracking_uri, "synthetic-law")} == {"law"}
    widths = client.get_metric_history(summary.parent_run_id, "planner.exponent_ci_width")
    assert widths and all(m.value > 0 for m in widths)
    assert parent.data.metrics["fit.goal.alpha"] == pytest.approx(0.34, abs=0.15)
    assert parent.data.metrics["fit.goal.beta"] == pytest.approx(0.28, abs=0.15)


@pytest.mark.parametrize(("override", "field"), [
    ("sweep.goal=pareto", "sweep.goal"),
    ("~sweep.objectives", "sweep.objectives"),
    ("~sweep.budget", "sweep.budget"),
    ("sweep.budget.runs=0", "sweep.budget.runs"),
    ("+sweep.budget.hours=3", "sweep.budget.hours"),
    ("sweep.early_stop.mode=lowest", "sweep.early_stop.mode"),
    ("+sweep.seeds=[0,1]", "sweep.seeds"),
])
def test_bad_adaptive_input_names_the_field(compose, override, field):
    with pytest.raises(ConfigError) as raised:
        plan_sweep(compose("+sweep=synthetic_frontier", override))
    assert raised.value.field == field


def test_a_law_whose_columns_are_not_swept_is_refused(compose):
    with pytest.raises(ConfigError) as raised:
        plan_sweep(compose("+sweep=synthetic_law", "sweep.law.d=lr"))
    assert raised.value.field == "sweep.law.d" and "not a swept parameter" in str(raised.value)


def test_bad_adaptive_input_exits_2_before_anything_is_written(tmp_path):
    for extra in ([], ["--dry-run"]):
        result = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "run", "+sweep=synthetic_frontier",
                                 "cluster.num_gpus=0", "resources.gpus=0", "~sweep.budget", "+sweep.budget.gpu_hours=1",
                                 *extra],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert "sweep.budget.gpu_hours" in result.stderr and "no GPU" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


# -- early stopping ---------------------------------------------------------------------------------------------------
def test_a_job_learns_it_was_stopped_by_an_exception_or_by_asking():
    stop_at_half = lambda progress, metrics, projected_s: progress >= 0.5  # noqa: E731
    ctx = JobContext(pruner=stop_at_half, checkpoint_fractions=(0.25, 0.5))
    ctx.log(1, progress=0.25, val_loss=3.0)
    with pytest.raises(RunPruned):
        ctx.log(2, progress=0.5, val_loss=2.9)
    assert ctx.pruned and [c.progress for c in ctx.checkpoints] == [0.25, 0.5]
    polite = JobContext(pruner=stop_at_half, checkpoint_fractions=(0.25, 0.5))
    assert not polite.should_stop()
    polite.log(1, progress=0.5, val_loss=2.9)  # it asks, so it is not raised at
    assert polite.should_stop()


def _point(run: Any) -> dict[str, float]:
    return {"job.n_params": float(run.data.params["n_params"]), "job.tokens": float(run.data.params["tokens"])}


def _true_outcome(point: dict[str, float], job: Any) -> tuple[float, float]:
    """(flops, final val_loss) a run would have had, had it not been stopped: the synthetic job is deterministic."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(job, {"n_params": int(point["job.n_params"]), "tokens": int(point["job.tokens"]),
                                "flops_per_second": None, "sleep_s": 0})  # the same values, without the wait
    final = synthetic.train(cfg, JobContext())
    return final["flops"], final["val_loss"]


def test_early_stopping_stops_dominated_runs_never_the_fronts_and_resume_leaves_them(ray_cluster, compose,
                                                                                    tracking_uri):
    from omegaconf import OmegaConf

    cfg = compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}", "~sweep.params",
                  # Large models first, so the small ones given too many tokens meet a front that dominates them.
                  "+sweep.params.job.n_params=[1.0e9, 2.5e8, 6.3e7, 1.6e7, 4.0e6, 1.0e6]",
                  "+sweep.params.job.tokens={log: [1.0e9, 1.0e11], num: 4}",
                  "+job.flops_per_second=1.0e21", "+job.max_sleep_s=1.0", "job.steps=16",
                  # One run at a time, each sent only when the last ended (a timeout turns off pipelining), so every
                  # run is measured against all that ended before it: what it is stopped for does not race.
                  "execution.max_concurrent=1", "execution.timeout_s=120",
                  "+sweep.early_stop={metric: val_loss, mode: min, min_fraction: 0.0625, cost: flops}")
    summary = launch(cfg)
    assert summary.ok and summary.count("FINISHED") + summary.count("PRUNED") == 24
    runs = children(tracking_uri, "synthetic-demo")
    pruned = [r for r in runs if r.data.tags.get("status") == "PRUNED"]
    assert pruned, "no run was stopped: the test would prove nothing"
    assert all(r.info.status == "KILLED" and r.data.tags["cause"] == "pruned" for r in pruned)
    assert all(0 < r.data.metrics["progress"] < 1 for r in pruned)
    # Each run as it would have ended (the job is deterministic): its FLOPs and its final val_loss.
    job = OmegaConf.create(OmegaConf.to_container(cfg.job))
    outcomes = {r.data.tags["run_key"]: _true_outcome(_point(r), job) for r in runs}
    costs = np.array(list(outcomes.values()))
    keys = list(outcomes)
    on_front = {k for i, k in enumerate(keys)
                if not any((costs[j] <= costs[i]).all() and (costs[j] < costs[i]).any() for j in range(len(keys)))}
    assert not on_front & {r.data.tags["run_key"] for r in pruned}
    client = MlflowClient(tracking_uri=tracking_uri)
    assert len(client.get_metric_history(pruned[0].info.run_id, "val_loss")) >= 1  # its partial curve is kept
    again = launch(cfg)
    assert again.parent_run_id is None and again.skipped == 24  # pruned runs are done, not rerun
    assert math.isclose(summary.count("PRUNED"), len(pruned))
