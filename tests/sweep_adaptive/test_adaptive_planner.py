"""The adaptive planner's contract with the engine: deterministic proposals, tagged, within budget and in_flight."""

from __future__ import annotations

import math

import pytest

from orchestrator.sweep.adaptive import AdaptivePlanner, MissingCostError, parse_adaptive
from orchestrator.sweep.planner import Observation
from tests.sweep_adaptive.drive import GPU_HOURS_PER_ND, drive, outcome, sweep


def planner(goal: str = "frontier", budget: dict[str, float] | None = None, **extra: object) -> AdaptivePlanner:
    return AdaptivePlanner(parse_adaptive(sweep(goal, budget or {"gpu_hours": 2.0}, **extra)))


def _cost(observation: Observation) -> float:
    return observation.metrics["gpu_hours"]


@pytest.mark.parametrize("goal", ["frontier", "law"])
def test_the_same_seed_and_history_give_the_same_proposals_in_any_telling_order(goal: str):
    history = drive(planner(goal), in_flight=4, max_runs=24)
    first, second, third = planner(goal), planner(goal), planner(goal, seed=1)
    for obs in history:
        first.tell(obs)
        third.tell(obs)
    for obs in reversed(history):
        second.tell(obs)
    a, b, c = first.ask(4), second.ask(4), third.ask(4)
    assert [(p.point, p.reason) for p in a] == [(p.point, p.reason) for p in b]
    assert len(a) == 4 and any(p.reason["proposal.phase"] == "model" for p in a)
    assert [p.point for p in a] != [p.point for p in c]  # the seed matters


@pytest.mark.parametrize("goal", ["frontier", "law"])
def test_every_proposal_is_tagged_and_indices_continue_after_a_told_history(goal: str):
    history = drive(planner(goal), in_flight=4, max_runs=20)
    indices = [int(o.reason["proposal.index"]) for o in history]
    assert sorted(indices) == list(range(len(set(indices)))) or len(set(indices)) == len(indices)
    for obs in history:
        assert obs.reason["proposal.goal"] == goal and obs.reason["proposal.phase"] in ("initial", "model")
        assert math.isfinite(float(obs.reason["proposal.score"]))
    relaunched = planner(goal)
    for obs in history:
        relaunched.tell(obs)
    assert [int(p.reason["proposal.index"]) for p in relaunched.ask(3)] == [max(indices) + 1 + k for k in range(3)]


def test_the_first_proposals_are_the_initial_design_cheapest_first_and_never_more_than_in_flight():
    p = planner(in_flight=4, initial=6)
    first = p.ask(100)
    assert len(first) == 4 and p.ask(100) == []  # the rest waits for a run to end
    costs = [q.point["job.n_params"] * q.point["job.tokens"] for q in first]
    assert costs == sorted(costs) and {q.reason["proposal.phase"] for q in first} == {"initial"}
    p.tell(outcome(first[0]))
    assert len(p.ask(100)) == 1


@pytest.mark.parametrize("goal", ["frontier", "law"])
def test_a_gpu_hours_budget_is_never_exceeded_once_costs_are_known(goal: str):
    p = planner(goal, {"gpu_hours": 1.0})
    history = drive(p, in_flight=4)
    spent = sum(_cost(o) for o in history)
    assert p.done and 0.9 <= spent <= 1.0 + 1e-9
    assert p.budget().spent == pytest.approx(spent) and p.budget().committed == 0
    assert p.metrics()["budget.spent"] == pytest.approx(spent) and p.metrics()["budget.limit"] == 1.0


def test_a_budget_smaller_than_the_first_runs_is_overrun_by_at_most_the_runs_in_flight():
    p = planner("frontier", {"gpu_hours": 1e-6}, in_flight=3)
    history = drive(p, in_flight=3)
    assert len(history) <= 3 and p.done  # unknown costs: the first in_flight proposals go out unchecked


def test_a_runs_budget_counts_finished_failed_and_pruned_runs_and_stops_at_the_limit():
    p = planner("frontier", {"runs": 10, "gpu_hours": 1e6})
    proposals = p.ask(4)
    statuses = ["FAILED", "PRUNED", "FINISHED", "FINISHED"]
    for proposal, status in zip(proposals, statuses):
        obs = outcome(proposal)
        p.tell(Observation(obs.point, status, obs.metrics, obs.reason, obs.checkpoints))
    assert p.budget().spent == 4
    history = drive(p, in_flight=4)
    assert len(history) == 6 and p.done and p.ask(4) == []


def test_a_run_that_ended_without_its_budget_metric_is_an_error_not_a_free_run():
    p = planner("frontier", {"gpu_hours": 5.0})
    proposal = p.ask(1)[0]
    with pytest.raises(MissingCostError, match="gpu_hours"):
        p.tell(Observation(proposal.point, "FAILED", {}, proposal.reason))
    assert p.budget().spent == 0.0
    energy = planner("frontier", {"energy_kwh": 5.0})
    proposal = energy.ask(1)[0]
    energy.tell(Observation(proposal.point, "FINISHED", {"val_loss": 3.0, "energy_j": 7.2e6}, proposal.reason))
    assert energy.budget().unit == "energy_kwh" and energy.budget().spent == pytest.approx(2.0)


def test_a_relaunch_told_the_ended_runs_counts_them_and_keeps_the_whole_sweep_within_budget():
    first = planner("frontier", {"gpu_hours": 1.0})
    ended = drive(first, in_flight=4, max_runs=15)  # then the driver dies with runs in flight: they are not told
    second = planner("frontier", {"gpu_hours": 1.0})
    for obs in ended:
        second.tell(obs)
    assert second.budget().spent == pytest.approx(sum(_cost(o) for o in ended))
    more = drive(second, in_flight=4)
    assert sum(_cost(o) for o in ended + more) <= 1.0 + 1e-9
    told = {tuple(sorted(o.point.items())) for o in ended}
    assert not any(tuple(sorted(o.point.items())) in told for o in more)  # nothing run twice


def test_a_forgotten_proposal_frees_its_slot_and_its_share_of_the_budget():
    p = planner("frontier", {"runs": 5}, in_flight=2)
    a, b = p.ask(2)
    assert p.budget().committed == 2 and p.ask(1) == []
    p.forget(a)
    assert p.budget().committed == 1 and len(p.ask(1)) == 1


@pytest.mark.parametrize("goal", ["frontier", "law"])
def test_no_point_is_proposed_twice(goal: str):
    history = drive(planner(goal, {"runs": 40}), in_flight=4)
    points = [tuple(sorted(o.point.items())) for o in history]
    assert len(points) == len(set(points)) == 40


def test_predicted_costs_come_with_each_proposal_once_a_run_has_measured_them():
    p = planner("frontier", {"gpu_hours": 5.0})
    first = p.ask(1)[0]
    assert set(first.predicted) == set()  # nothing measured yet: no made-up number
    p.tell(outcome(first))
    second = p.ask(1)[0]
    n, d = second.point["job.n_params"], second.point["job.tokens"]
    assert second.predicted["gpu_hours"] == pytest.approx(GPU_HOURS_PER_ND * n * d, rel=1e-6)
