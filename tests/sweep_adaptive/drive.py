"""A synthetic world and an in-process driver for planner tests: no Ray, no MLflow, no clock.

Runs of the law L = E + A/N^alpha + B/D^beta with seeded 1% noise; a run costs 6·N·D / 1.44e18 GPU-hours and ends
in order of simulated finish time, `in_flight` at a time, like the engine's loop of ask / tell.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from typing import Any

from orchestrator.sweep.early_stop import EarlyStopper
from orchestrator.sweep.planner import Checkpoint, Observation, Planner, Proposal

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
PARAMS = {"job": {"n_params": {"loguniform": [1.0e6, 1.0e9]}, "tokens": {"loguniform": [1.0e9, 1.0e11]}}}
# GPU-hours per N·D: 6 FLOPs per parameter per token at 4e14 FLOP/s.
GPU_HOURS_PER_ND = 6.0 / 4e14 / 3600.0


def sweep(goal: str, budget: dict[str, float], **extra: Any) -> dict[str, Any]:
    """A `kind: adaptive` section over model size and tokens."""
    section = {"kind": "adaptive", "goal": goal, "budget": budget, "in_flight": 4, "initial": 6, "seed": 0,
               "objectives": {"gpu_hours": "min", "val_loss": "min"},
               "law": {"form": "chinchilla", "n": "n_params", "d": "tokens", "loss": "val_loss", "target_flops": 1e22},
               "params": PARAMS}
    return {**section, **extra}


def loss(n: float, d: float, law: dict[str, float] = CHINCHILLA) -> float:
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


def noise(*key: Any) -> float:
    """A standard normal draw fixed by `key`."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    u1, u2 = ((int.from_bytes(digest[i : i + 8], "big") + 0.5) / 2.0**64 for i in (0, 8))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def outcome(proposal: Proposal, seed: int = 0, law: dict[str, float] = CHINCHILLA,
            checkpoints: bool = True) -> Observation:
    """What the run of a proposal measures: final loss, GPU-hours, and valid checkpoints at 0.25 and 0.5."""
    n, d = float(proposal.point["job.n_params"]), float(proposal.point["job.tokens"])
    cps = tuple(Checkpoint(p, {"val_loss": loss(n, p * d, law) * math.exp(0.01 * noise(seed, n, d, p))}, valid=True)
                for p in (0.25, 0.5)) if checkpoints else ()
    final = loss(n, d, law) * math.exp(0.01 * noise(seed, n, d, 1.0))
    metrics = {"val_loss": final, "gpu_hours": GPU_HOURS_PER_ND * n * d}
    return Observation(proposal.point, "FINISHED", metrics, proposal.reason, cps)


def drive(planner: Planner, in_flight: int, seed: int = 0, law: dict[str, float] = CHINCHILLA,
          max_runs: int = 10_000, stopper: EarlyStopper | None = None) -> list[Observation]:
    """Ask / tell until the planner is done (or `max_runs` ended), keeping `in_flight` runs going; with a stopper, a
    run it stops at a checkpoint ends there, PRUNED, having cost that fraction of its GPU-hours."""
    running: list[tuple[float, int, Proposal]] = []
    ended: list[Observation] = []
    clock, count = 0.0, 0
    while len(ended) < max_runs:
        for proposal in planner.ask(in_flight - len(running)):
            cost = GPU_HOURS_PER_ND * proposal.point["job.n_params"] * proposal.point["job.tokens"]
            heapq.heappush(running, (clock + cost, count, proposal))
            count += 1
        if not running:
            break
        clock, key, proposal = heapq.heappop(running)
        ended.append(_stopped(outcome(proposal, seed, law), key, stopper) if stopper else outcome(proposal, seed, law))
        planner.tell(ended[-1])
    return ended


def _stopped(run: Observation, key: int, stopper: EarlyStopper) -> Observation:
    """The run as it ends under early stopping: cut at the first checkpoint the stopper stops it at."""
    for i, checkpoint in enumerate(run.checkpoints):
        cost = checkpoint.progress * run.metrics["gpu_hours"]
        if stopper.report(key, checkpoint.progress, checkpoint.metrics["val_loss"], cost):
            stopper.tell(key, "PRUNED", {})
            return Observation(run.point, "PRUNED", {"val_loss": checkpoint.metrics["val_loss"], "gpu_hours": cost},
                               run.reason, run.checkpoints[: i + 1])
    stopper.tell(key, "FINISHED", run.metrics)
    return run
