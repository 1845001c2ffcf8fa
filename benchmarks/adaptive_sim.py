"""Simulation behind benchmarks/adaptive.py: synthetic laws, the sweep methods compared, and an asynchronous driver.

No Ray, no MLflow: runs are events on a simulated clock. `in_flight` runs go at once, each holding one GPU for its
GPU-hours (cost ∝ 6·N·D); they end in order of simulated finish time, and a freed slot is filled at once. A run's
loss is the true law L = E + A/N^α + B/D^β times exp(1% noise); its curve is the law at the fraction of D seen (each
checkpoint with its own 1% noise), so checkpoints are valid measurements. 3% of runs fail part-way. Noise and
failures are a function of (seed, N, D), so every method sees the same world. Early stopping, where on, is the same
`EarlyStopper` for every method (min_fraction 1/16), and a job under it also logs the stopper's checkpoints (1/16,
1/8, 1/4, 1/2), as a job must for the stopper to see its own curve. A stopped run is charged the GPU-hours up to its
checkpoint and ends PRUNED with its value there (its checkpoints so far are told to the method). The stopper's front
is the finished runs (checkpoints are not added to it), the same front the benchmark's hypervolume measures.
`OracleStopper` is the ceiling of that rule: the same checkpoints and front, with each run's own final value known.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from orchestrator.sweep.adaptive import AdaptivePlanner, parse_adaptive
from orchestrator.sweep.early_stop import EarlyStopper
from orchestrator.sweep.planner import Checkpoint, Observation, Proposal

N_RANGE, D_RANGE = (1e6, 1e9), (1e9, 1e11)
# Simulated throughput: FLOP/s per GPU (cost = 6·N·D / throughput, in GPU-hours).
THROUGHPUT = 4e14
NOISE, FAILURE_RATE = 0.01, 0.03
IN_FLIGHT, INITIAL = 8, 8
CHECKPOINTS = (0.25, 0.5)
# Early stopping's first checkpoint (its later ones double it); a job under early stopping also logs those.
ES_MIN_FRACTION = 0.0625
TARGET_FLOPS = 1e22
# A simulated sweep ends after this many runs (what has not reached its target by then counts as never reaching it).
MAX_RUNS = 1000
PATHS = ("job.n_params", "job.tokens")

LAWS = {
    "chinchilla": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "epoch": {"E": 1.82, "A": 482.0, "B": 2085.4, "alpha": 0.3478, "beta": 0.3658},
    "data_hungry": {"E": 1.5, "A": 250.0, "B": 2500.0, "alpha": 0.30, "beta": 0.40},
    "param_hungry": {"E": 2.0, "A": 2000.0, "B": 200.0, "alpha": 0.45, "beta": 0.25},
}


def gpu_hours(n: float, d: float) -> float:
    return 6.0 * n * d / THROUGHPUT / 3600.0


@dataclass(frozen=True)
class World:
    """One true law and one seed: what any run at (N, D) measures."""

    # Name of the true law in LAWS.
    law: str
    # Seed of the noise and the failures.
    seed: int

    def loss(self, n: float, d: float) -> float:
        p = LAWS[self.law]
        return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]

    def measured(self, n: float, d: float, progress: float) -> float:
        return self.loss(n, progress * d) * math.exp(NOISE * self._normal(n, d, progress))

    def failure(self, n: float, d: float) -> float | None:
        """The fraction of the run at which it fails, or None."""
        u = self._uniform(n, d, "fail")
        return 0.1 + 0.8 * u / FAILURE_RATE if u < FAILURE_RATE else None

    @property
    def exponent(self) -> float:
        p = LAWS[self.law]
        return p["beta"] / (p["alpha"] + p["beta"])

    def _uniform(self, n: float, d: float, tag: Any) -> float:
        digest = hashlib.sha256(f"{self.seed}|{n:.9g}|{d:.9g}|{tag}".encode()).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64

    def _normal(self, n: float, d: float, tag: Any) -> float:
        u1, u2 = self._uniform(n, d, (tag, 1)), self._uniform(n, d, (tag, 2))
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


# -- methods: each proposes (N, D) points and learns from ended runs -------------------------------------------------


class Method:
    """A sweep method as the driver sees it."""

    name = "method"

    def ask(self, n: int, room_gpu_hours: float) -> list[tuple[float, float, Any]]:
        raise NotImplementedError

    def tell(self, handle: Any, observation: Observation) -> None:
        pass


class Fixed(Method):
    """A static design in a fixed order (grid in config order, isoflop)."""

    def __init__(self, name: str, points: list[tuple[float, float]]) -> None:
        self.name, self.points = name, list(points)

    def ask(self, n: int, room_gpu_hours: float) -> list[tuple[float, float, Any]]:
        out = []
        while self.points and len(out) < n and gpu_hours(*self.points[0]) <= room_gpu_hours:
            point = self.points.pop(0)
            room_gpu_hours -= gpu_hours(*point)
            out.append((*point, None))
        return out


def grid_points(num: int = 8) -> list[tuple[float, float]]:
    """`kind: grid` over log-spaced N and D, in its expansion order (N outer, D inner)."""
    return list(itertools.product(np.geomspace(*N_RANGE, num).tolist(), np.geomspace(*D_RANGE, num).tolist()))


def isoflop_points() -> list[tuple[float, float]]:
    """`kind: isoflop`: 5 budgets from 1e17 to 6e20 FLOPs x 16 model sizes, cells outside the D range dropped."""
    cells = []
    for flops, n in itertools.product(np.geomspace(1e17, 6e20, 5), np.geomspace(*N_RANGE, 16)):
        d = flops / (6.0 * n)
        if D_RANGE[0] <= d <= D_RANGE[1]:
            cells.append((float(n), float(d)))
    return cells


class Random(Method):
    name = "random"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 11])

    def ask(self, n: int, room_gpu_hours: float) -> list[tuple[float, float, Any]]:
        out = []
        for _ in range(n):
            point = tuple(float(math.exp(self.rng.uniform(*np.log(r)))) for r in (N_RANGE, D_RANGE))
            if gpu_hours(*point) > room_gpu_hours:
                break
            room_gpu_hours -= gpu_hours(*point)
            out.append((*point, None))
        return out


class OptunaMO(Method):
    """Plain Optuna multi-objective: create_study(directions=[minimize, minimize]), its default sampler, ask/tell."""

    name = "optuna"

    def __init__(self, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        sampler = optuna.samplers.TPESampler(seed=seed)  # the default sampler, seeded
        self.study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def ask(self, n: int, room_gpu_hours: float) -> list[tuple[float, float, Any]]:
        out = []
        for _ in range(n):
            trial = self.study.ask()
            size = trial.suggest_float("n_params", *N_RANGE, log=True)
            point = (size, trial.suggest_float("tokens", *D_RANGE, log=True))
            if gpu_hours(*point) > room_gpu_hours:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
                break
            room_gpu_hours -= gpu_hours(*point)
            out.append((*point, trial))
        return out

    def tell(self, handle: Any, observation: Observation) -> None:
        states = self.optuna.trial.TrialState
        if observation.status == "FINISHED":
            self.study.tell(handle, [observation.metrics["gpu_hours"], observation.metrics["val_loss"]])
        else:
            self.study.tell(handle, state=states.PRUNED if observation.status == "PRUNED" else states.FAIL)


class Ours(Method):
    """AdaptivePlanner through the Planner protocol, budget in gpu_hours."""

    def __init__(self, goal: str, seed: int, budget_gpu_hours: float) -> None:
        self.name = f"ours-{goal}"
        sweep = {
            "kind": "adaptive", "goal": goal, "objectives": {"gpu_hours": "min", "val_loss": "min"},
            "law": {"form": "chinchilla", "n": "n_params", "d": "tokens", "loss": "val_loss",
                    "target_flops": TARGET_FLOPS},
            "budget": {"gpu_hours": budget_gpu_hours}, "in_flight": IN_FLIGHT, "initial": INITIAL, "seed": seed,
            "params": {"job": {"n_params": {"loguniform": list(N_RANGE)}, "tokens": {"loguniform": list(D_RANGE)}}},
        }
        self.planner = AdaptivePlanner(parse_adaptive(sweep))

    def ask(self, n: int, room_gpu_hours: float) -> list[tuple[float, float, Any]]:
        return [(p.point[PATHS[0]], p.point[PATHS[1]], p) for p in self.planner.ask(n)]

    def tell(self, handle: Proposal, observation: Observation) -> None:
        self.planner.tell(Observation(observation.point, observation.status, observation.metrics, handle.reason,
                                      observation.checkpoints))


# -- the driver ------------------------------------------------------------------------------------------------------


@dataclass
class Trace:
    """What one simulated sweep did: its ended runs, in order, with the GPU-hours consumed when each ended."""

    # (GPU-hours consumed by every run so far, counting running ones' elapsed time, at this end; the run).
    ends: list[tuple[float, Observation]] = field(default_factory=list)
    # GPU-hours of every run, when the sweep ended (or was stopped).
    total_gpu_hours: float = 0.0


class OracleStopper:
    """The ceiling of early stopping's rule: at each of the same checkpoints, a run is stopped when its own final value
    (the one it would measure, which no real stopper knows) at its full cost is dominated by the finished runs. It
    never stops a run that ends on the front of what has finished by then, nor one that will fail (it has no final
    value). `EarlyStopper` must guess that final value, with room for noise."""

    def __init__(self, world: World, where: Callable[[Any], tuple[float, float]]) -> None:
        self.world, self.where = world, where
        self.checkpoints = EarlyStopper("val_loss", "min", ES_MIN_FRACTION).checkpoints
        self._ended: list[tuple[float, float]] = []

    def report(self, key: Any, progress: float, value: float, cost_so_far: float) -> bool:
        n, d = self.where(key)
        if self.world.failure(n, d) is not None:
            return False
        cost, final = cost_so_far / progress, self.world.measured(n, d, 1.0)
        return any(c <= cost and v <= final and (c < cost or v < final) for c, v in self._ended)

    def tell(self, key: Any, status: str, metrics: dict[str, float]) -> None:
        if status == "FINISHED":
            self._ended.append((metrics["gpu_hours"], metrics["val_loss"]))


def simulate(world: World, method: Method, budget_gpu_hours: float, early_stop: bool | str,
             stop: Callable[[Trace], bool] = lambda trace: False) -> Trace:
    """Run `method` against `world` until it proposes nothing more, `stop(trace)` holds after an end, or MAX_RUNS
    runs ended, under a budget. `early_stop`: False, True (EarlyStopper) or "oracle" (OracleStopper)."""
    trace, events, running = Trace(), [], {}
    stopper: Any = None
    if early_stop == "oracle":
        stopper = OracleStopper(world, lambda key: (running[key]["n"], running[key]["d"]))
    elif early_stop:
        stopper = EarlyStopper("val_loss", "min", ES_MIN_FRACTION)
    fractions = sorted(set(CHECKPOINTS) | set(stopper.checkpoints if stopper else ()))
    clock, spent_ended, ids = 0.0, 0.0, itertools.count()

    def consumed(t: float) -> float:
        return spent_ended + sum(t - r["start"] for r in running.values())

    def fill(t: float) -> None:
        committed = spent_ended + sum(r["cost"] for r in running.values())
        for n, d, handle in method.ask(IN_FLIGHT - len(running), budget_gpu_hours - committed):
            key, cost = next(ids), gpu_hours(n, d)
            fail = world.failure(n, d)
            running[key] = {"n": n, "d": d, "handle": handle, "start": t, "cost": cost, "seen": []}
            for p in fractions:
                if fail is None or p < fail:
                    heapq.heappush(events, (t + p * cost, key, "check", p))
            heapq.heappush(events, (t + (fail or 1.0) * cost, key, "fail" if fail else "end", fail or 1.0))

    fill(clock)
    while events:
        clock, key, kind, progress = heapq.heappop(events)
        run = running.get(key)
        if run is None:  # stopped earlier
            continue
        if kind == "check":
            value = world.measured(run["n"], run["d"], progress)
            run["seen"].append(Checkpoint(progress, {"val_loss": value}, valid=True))
            if stopper is None or not stopper.report(key, progress, value, progress * run["cost"]):
                continue
            status, metrics = "PRUNED", {"val_loss": value}
        elif kind == "fail":
            status, metrics = "FAILED", {}
        else:
            status, metrics = "FINISHED", {"val_loss": world.measured(run["n"], run["d"], 1.0)}
        del running[key]
        cost = progress * run["cost"]
        spent_ended += cost
        metrics["gpu_hours"] = cost
        obs = Observation({PATHS[0]: run["n"], PATHS[1]: run["d"]}, status, metrics, checkpoints=tuple(run["seen"]))
        if stopper is not None:
            stopper.tell(key, status, metrics)
        method.tell(run["handle"], obs)
        trace.ends.append((consumed(clock), obs))
        if stop(trace) or len(trace.ends) >= MAX_RUNS:
            break
        fill(clock)
    trace.total_gpu_hours = consumed(clock)
    return trace
