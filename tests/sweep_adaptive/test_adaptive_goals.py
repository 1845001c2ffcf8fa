"""What each goal is for, on a known law: goal law pins the compute-optimal exponent, goal frontier finds the front."""

from __future__ import annotations

import math

import numpy as np
import pytest

from orchestrator.analysis._hypervolume import hypervolume_of_costs
from orchestrator.sweep.adaptive import AdaptivePlanner, parse_adaptive
from orchestrator.sweep.early_stop import EarlyStopper
from orchestrator.sweep.planner import Observation, Proposal
from tests.sweep_adaptive.drive import CHINCHILLA, GPU_HOURS_PER_ND, drive, loss, outcome, sweep

TRUE_EXPONENT = CHINCHILLA["beta"] / (CHINCHILLA["alpha"] + CHINCHILLA["beta"])
# The 8 x 8 log grid over the same box costs this many GPU-hours.
GRID_GPU_HOURS = 1370.4


def test_goal_law_recovers_the_compute_optimal_exponent_within_its_interval_on_a_small_budget():
    planner = AdaptivePlanner(parse_adaptive(sweep("law", {"gpu_hours": 20.0}, in_flight=4, initial=8)))
    history = drive(planner, in_flight=4)
    estimate = planner.estimate()
    lo, hi = estimate.exponent_ci
    assert lo <= TRUE_EXPONENT <= hi and hi - lo < 0.05  # the full 8 x 8 grid's 90% interval is about 0.034 wide
    assert abs(estimate.exponent - TRUE_EXPONENT) < 0.03
    assert sum(o.metrics["gpu_hours"] for o in history) <= 20.0 <= GRID_GPU_HOURS / 50
    metrics = planner.metrics()
    assert metrics["planner.exponent_ci_width"] == pytest.approx(hi - lo)
    assert metrics["planner.loss_at_target_ci_width"] > 0
    assert estimate.n_rows == 3 * len(history)  # valid checkpoints at 0.25 and 0.5 are data too


def _hypervolume(points: list[tuple[float, float]]) -> float:
    """(log GPU-hours, loss) of the runs, normalised over the box [1e6, 1e9] x [1e9, 1e11]; reference: worst corner."""
    cost = np.log10([n * d for n, d in points])
    losses = np.array([loss(n, d) for n, d in points])
    lo_l, hi_l = loss(1e9, 1e11), loss(1e6, 1e9)
    costs = np.column_stack([(cost - 15.0) / 5.0, (losses - lo_l) / (hi_l - lo_l)])
    return hypervolume_of_costs(costs, np.ones(2))


def _random_search(seed: int, budget_gpu_hours: float) -> list[tuple[float, float]]:
    rng, points, spent = np.random.default_rng(seed), [], 0.0
    while True:
        n, d = 10 ** rng.uniform(6, 9), 10 ** rng.uniform(9, 11)
        if spent + GPU_HOURS_PER_ND * n * d > budget_gpu_hours:
            return points
        spent += GPU_HOURS_PER_ND * n * d
        points.append((n, d))


@pytest.mark.parametrize("seed", [0, 1])
def test_goal_frontier_beats_random_search_on_hypervolume_for_the_same_budget(seed: int):
    budget = 10.0
    planner = AdaptivePlanner(parse_adaptive(sweep("frontier", {"gpu_hours": budget}, in_flight=4, seed=seed)))
    ours = [(o.point["job.n_params"], o.point["job.tokens"]) for o in drive(planner, in_flight=4, seed=seed)]
    random = _random_search(seed, budget)
    assert sum(GPU_HOURS_PER_ND * n * d for n, d in ours) <= budget + 1e-9
    assert _hypervolume(ours) > _hypervolume(random) + 0.05
    assert planner.metrics()["planner.hypervolume"] > 0


def test_goal_law_takes_nuisance_parameters_from_the_best_runs_nearby():
    def with_lr(proposal: Proposal) -> Observation:
        obs = outcome(proposal, checkpoints=False)
        penalty = 1.0 + 0.3 * math.log10(proposal.point["job.lr"] / 1e-3) ** 2  # best lr: 1e-3
        return Observation(obs.point, obs.status, {**obs.metrics, "val_loss": obs.metrics["val_loss"] * penalty},
                         obs.reason)

    params = {"job": {"n_params": {"loguniform": [1e6, 1e9]}, "tokens": {"loguniform": [1e9, 1e11]},
                      "lr": {"loguniform": [1e-5, 1e-1]}}}
    planner = AdaptivePlanner(parse_adaptive(sweep("law", {"runs": 48}, params=params, initial=16)))
    ended = []
    while not planner.done:
        for proposal in planner.ask(4):
            ended.append(with_lr(proposal))
            planner.tell(ended[-1])
    off = {phase: np.median([abs(math.log10(o.point["job.lr"] / 1e-3)) for o in ended
                             if o.reason["proposal.phase"] == phase]) for phase in ("initial", "model")}
    assert off["model"] < 0.5 * off["initial"]


@pytest.mark.parametrize("objectives", [{"val_loss": "min"}, {"accuracy": "max", "gpu_hours": "min"}])
def test_goal_frontier_with_one_objective_or_a_maximised_one_finds_the_best_run_of_the_box(objectives: dict):
    planner = AdaptivePlanner(parse_adaptive(sweep("frontier", {"runs": 30}, objectives=objectives)))
    best = math.inf
    while not planner.done:
        for proposal in planner.ask(4):
            obs = outcome(proposal)
            planner.tell(Observation(obs.point, obs.status, {**obs.metrics, "accuracy": 1.0 / obs.metrics["val_loss"]},
                                     obs.reason))
            best = min(best, loss(proposal.point["job.n_params"], proposal.point["job.tokens"]))
    assert best < 1.03 * loss(1e9, 1e11)  # the box's best run, within 3%, in 30 runs of a 5-decade box


def test_goal_frontier_learns_from_stopped_runs_and_does_not_keep_proposing_where_runs_get_stopped():
    planner = AdaptivePlanner(parse_adaptive(sweep("frontier", {"gpu_hours": 3.0}, in_flight=4)))
    history = drive(planner, in_flight=4, stopper=EarlyStopper("val_loss", "min", 0.25))
    pruned = [o for o in history if o.status == "PRUNED"]
    assert sum(o.metrics["gpu_hours"] for o in history) <= 3.0 + 1e-9 and planner.done
    assert len(pruned) <= len(history) // 4  # a stopped run's region is not proposed again and again
