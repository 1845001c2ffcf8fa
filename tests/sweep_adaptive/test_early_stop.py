"""Early stopping stops runs that can no longer reach the cost-vs-loss front, and never one that would end on it."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from orchestrator.sweep.early_stop import EarlyStopper, checkpoint_fractions
from tests.sweep_adaptive.drive import GPU_HOURS_PER_ND, loss, noise


def test_checkpoints_double_from_min_fraction_while_below_one():
    assert checkpoint_fractions(0.25) == (0.25, 0.5)
    assert checkpoint_fractions(0.1) == pytest.approx((0.1, 0.2, 0.4, 0.8))


def _random_sweep(seed: int, runs: int, noise_level: float) -> tuple[list[dict], set[int]]:
    """Runs at random (N, D) in [1e6, 1e9] x [1e9, 1e11], fed to a stopper in order, 4 at a time; which it stopped."""
    rng = np.random.default_rng(seed)
    points = [(10 ** rng.uniform(6, 9), 10 ** rng.uniform(9, 11)) for _ in range(runs)]
    stopper = EarlyStopper("val_loss", "min", 0.25)
    records, stopped = [], set()
    for start in range(0, runs, 4):
        batch = range(start, min(start + 4, runs))
        for p in stopper.checkpoints:
            for key in batch:
                if key in stopped:
                    continue
                n, d = points[key]
                value = loss(n, p * d) * math.exp(noise_level * noise(seed, key, p))
                if stopper.report(key, p, value, p * GPU_HOURS_PER_ND * n * d):
                    stopped.add(key)
                    stopper.tell(key, "PRUNED", {"val_loss": value})
        for key in batch:
            n, d = points[key]
            final = {"val_loss": loss(n, d) * math.exp(noise_level * noise(seed, key, 1.0)),
                     "gpu_hours": GPU_HOURS_PER_ND * n * d}
            records.append({"key": key, "n": n, "d": d, **final})
            if key not in stopped:
                stopper.tell(key, "FINISHED", final)
    return records, stopped


def _front(records: list[dict], column: str = "val_loss") -> set[int]:
    """Keys of the runs no other run beats in both GPU-hours and `column` (as if every run had finished)."""
    return {r["key"] for r in records
            if not any(o["gpu_hours"] <= r["gpu_hours"] and o[column] <= r[column] and o is not r
                       and (o["gpu_hours"] < r["gpu_hours"] or o[column] < r[column]) for o in records)}


@pytest.mark.parametrize("seed", range(4))
def test_dominated_runs_are_stopped_and_none_that_would_end_on_the_front(seed: int):
    records, stopped = _random_sweep(seed, runs=60, noise_level=0.0)
    for r in records:
        r["true"] = loss(r["n"], r["d"])
    assert len(stopped) >= 6  # a random design has many hopeless runs: a tenth at least is stopped
    assert not stopped & _front(records, "true")


@pytest.mark.parametrize("seed", range(4))
def test_with_one_percent_noise_runs_on_the_true_front_are_still_not_stopped(seed: int):
    records, stopped = _random_sweep(seed, runs=60, noise_level=0.01)
    for r in records:
        r["true"] = loss(r["n"], r["d"])
    assert stopped and not stopped & _front(records, "true")


def test_with_too_little_history_nothing_is_stopped():
    stopper = EarlyStopper("val_loss", "min", 0.25)
    stopper.tell("a", "FINISHED", {"val_loss": 1.0, "gpu_hours": 1.0})
    stopper.tell("b", "FINISHED", {"val_loss": 0.9, "gpu_hours": 2.0})
    assert stopper.report("c", 0.25, 100.0, 10.0) is False  # hopeless, but no ended run has shown a curve yet


def test_a_run_no_cheaper_run_beats_is_kept_and_a_clearly_beaten_one_is_stopped():
    stopper = EarlyStopper("val_loss", "min", 0.25)
    for key, (v25, v50, final, cost) in enumerate([(3.0, 2.8, 2.6, 1.0), (2.6, 2.45, 2.3, 4.0), (2.9, 2.7, 2.5, 2.0)]):
        stopper.report(key, 0.25, v25, 0.25 * cost)
        stopper.report(key, 0.5, v50, 0.5 * cost)
        stopper.tell(key, "FINISHED", {"val_loss": final, "gpu_hours": cost})
    assert stopper.report("cheap", 0.25, 3.3, 0.1) is False  # full cost 0.4: cheaper than every ended run
    assert stopper.report("beaten", 0.25, 4.5, 1.0) is True  # full cost 4: even gaining 0.6 it ends far above 2.3


def test_max_mode_mirrors_min_mode():
    stopper = EarlyStopper("accuracy", "max", 0.25)
    for key, (v25, final, cost) in enumerate([(0.5, 0.6, 1.0), (0.6, 0.7, 2.0), (0.7, 0.8, 4.0)]):
        stopper.report(key, 0.25, v25, 0.25 * cost)
        stopper.tell(key, "FINISHED", {"accuracy": final, "gpu_hours": cost})
    assert stopper.report("low", 0.25, 0.2, 1.0) is True
    assert stopper.report("high", 0.25, 0.75, 1.0) is False


def test_a_finished_run_without_the_cost_metric_is_a_clear_error():
    stopper = EarlyStopper("val_loss", "min", 0.25)
    with pytest.raises(ValueError, match="gpu_hours"):
        stopper.tell("a", "FINISHED", {"val_loss": 1.0})


def test_a_relaunch_rebuilds_the_stopper_from_the_ended_runs_and_their_checkpoints():
    live, rebuilt = EarlyStopper("val_loss", "min", 0.25), EarlyStopper("val_loss", "min", 0.25)
    for key, (v25, v50, final, cost) in enumerate([(3.0, 2.8, 2.6, 1.0), (2.6, 2.45, 2.3, 4.0), (2.9, 2.7, 2.5, 2.0)]):
        live.report(key, 0.25, v25, 0.25 * cost)
        live.report(key, 0.5, v50, 0.5 * cost)
        live.tell(key, "FINISHED", {"val_loss": final, "gpu_hours": cost})
        rebuilt.tell(key, "FINISHED", {"val_loss": final, "gpu_hours": cost},
                     checkpoints=[(0.25, v25, 0.25 * cost), (0.5, v50, 0.5 * cost)])
    for probe in [("beaten", 0.25, 4.5, 1.0), ("cheap", 0.25, 3.3, 0.1), ("late", 0.5, 3.2, 2.0)]:
        assert live.report(*probe) == rebuilt.report(*probe)
    assert rebuilt.report("beaten2", 0.25, 4.5, 1.0) is True


def test_a_run_whose_own_curve_has_flattened_is_stopped_though_other_runs_curves_were_steep():
    stopper = EarlyStopper("val_loss", "min", 0.125)  # checkpoints 1/8, 1/4, 1/2
    for key, (values, final, cost) in enumerate([((4.0, 3.4, 2.9), 2.5, 1.0), ((3.8, 3.2, 2.7), 2.3, 2.0),
                                                 ((3.6, 3.0, 2.6), 2.2, 3.0)]):
        for p, value in zip(stopper.checkpoints, values):
            stopper.report(key, p, value, p * cost)
        stopper.tell(key, "FINISHED", {"val_loss": final, "gpu_hours": cost})
    # Full cost 4: the ended runs gained 1.4 to 1.5 from 1/8, so at 1/8 a value of 2.9 might still end below 2.2.
    assert stopper.report("flat", 0.125, 2.9, 0.5) is False
    # Its own curve gained 0.02 over the doubling to 1/4: two doublings more cannot bring 2.88 down to 2.2.
    assert stopper.report("flat", 0.25, 2.88, 1.0) is True
    assert stopper.report("steep", 0.125, 2.9, 0.5) is False
    assert stopper.report("steep", 0.25, 2.5, 1.0) is False  # gaining 0.4 a doubling, it may still end below 2.2


def _simulation():
    """benchmarks/adaptive_sim.py, the simulation behind the adaptive benchmark (not a package: loaded by path)."""
    if "adaptive_sim" not in sys.modules:
        path = Path(__file__).resolve().parents[2] / "benchmarks" / "adaptive_sim.py"
        spec = importlib.util.spec_from_file_location("adaptive_sim", path)
        sys.modules["adaptive_sim"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["adaptive_sim"])
    return sys.modules["adaptive_sim"]


@pytest.mark.parametrize("law", ["chinchilla", "param_hungry"])
def test_in_the_benchmark_simulation_a_grid_stops_runs_off_its_front_only_and_spends_less(law: str):
    sim = _simulation()
    world, points = sim.World(law, 0), sim.grid_points()
    budget = sum(sim.gpu_hours(n, d) for n, d in points)
    plain = sim.simulate(world, sim.Fixed("grid", points), budget, early_stop=False)
    stopped = sim.simulate(world, sim.Fixed("grid", points), budget, early_stop=True)
    records = [{"key": (n, d), "gpu_hours": sim.gpu_hours(n, d), "true": world.loss(n, d)} for n, d in points]
    pruned = [obs for _, obs in stopped.ends if obs.status == "PRUNED"]
    keys = {(obs.point["job.n_params"], obs.point["job.tokens"]) for obs in pruned}
    assert len(pruned) >= 8 and not keys & _front(records, "true")
    saved = 0.0
    for obs in pruned:  # charged what it ran: the full run's GPU-hours times its last checkpoint's progress
        full = sim.gpu_hours(obs.point["job.n_params"], obs.point["job.tokens"])
        assert obs.metrics["gpu_hours"] == pytest.approx(obs.checkpoints[-1].progress * full)
        saved += full - obs.metrics["gpu_hours"]
    assert saved > 0 and stopped.total_gpu_hours == pytest.approx(plain.total_gpu_hours - saved)


def test_the_benchmark_oracle_stops_only_runs_its_own_end_puts_off_the_front_and_bounds_the_real_stopper():
    """adaptive_sim.OracleStopper, the ceiling printed beside early stopping: the same rule knowing each run's end."""
    sim = _simulation()
    world, points = sim.World("chinchilla", 0), sim.grid_points()
    budget = sum(sim.gpu_hours(n, d) for n, d in points)
    plain = sim.simulate(world, sim.Fixed("grid", points), budget, early_stop=False)
    runs = {"plain": plain, "es": sim.simulate(world, sim.Fixed("grid", points), budget, early_stop=True),
            "oracle": sim.simulate(world, sim.Fixed("grid", points), budget, early_stop="oracle")}
    finals = [{"key": (obs.point["job.n_params"], obs.point["job.tokens"]), "gpu_hours": obs.metrics["gpu_hours"],
               "val_loss": obs.metrics["val_loss"]} for _, obs in plain.ends if obs.status == "FINISHED"]
    pruned = {(obs.point["job.n_params"], obs.point["job.tokens"])
              for _, obs in runs["oracle"].ends if obs.status == "PRUNED"}
    assert pruned and not pruned & _front(finals)  # what it stopped would have ended off the grid's measured front
    assert all(world.failure(n, d) is None for n, d in pruned)  # a run that will fail has no end to judge
    spent = {name: trace.total_gpu_hours for name, trace in runs.items()}
    assert spent["oracle"] < spent["es"] < spent["plain"]
