"""The early-stopping decider of a launch, as one Ray actor every executor asks at its runs' checkpoints.

It wraps `EarlyStopper` (pure, in `orchestrator.sweep.early_stop`): executors `report` a running job's value at each
checkpoint and get back whether to stop it; the driver `tell`s it every run that ended (and, on a relaunch, the runs
of earlier launches), so it knows the front runs are measured against.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

from orchestrator.records import Checkpoint, RunResult
from orchestrator.sweep.early_stop import EarlyStopper, EarlyStopSpec

log = logging.getLogger(__name__)


class PrunerCore:
    def __init__(self, spec: EarlyStopSpec) -> None:
        self.stopper = EarlyStopper.from_spec(spec)
        self.spec = spec
        self.stopped: list[str] = []

    def report(self, run_key: str, progress: float, value: float, cost_so_far: float) -> bool:
        stop = self.stopper.report(run_key, progress, value, cost_so_far)
        if stop:
            self.stopped.append(run_key)
        return stop

    def tell(self, run_key: str, status: str, metrics: Mapping[str, float], checkpoints: Sequence[Checkpoint],
             replayed: bool = False) -> None:
        """A run ended. Its checkpoints were reported live, unless `replayed` (a run of an earlier launch, told on a
        relaunch): then they stand in for those reports. A finished run lacking the watched metric or the cost
        teaches nothing (logged)."""
        valid = any(c.valid for c in checkpoints)
        points = [] if not replayed else [
            (c.progress, c.metrics[self.spec.metric], _cost(c, metrics, self.spec.cost))
            for c in checkpoints if self.spec.metric in c.metrics and 0 < c.progress < 1]
        try:
            self.stopper.tell(run_key, status, metrics, valid, [p for p in points if p[2] is not None])
        except ValueError as exc:
            log.warning("early stopping ignores run %s: %s", run_key, exc)


def _cost(checkpoint: Checkpoint, metrics: Mapping[str, float], cost: str) -> float | None:
    """A checkpoint's cost so far, assuming cost grows evenly with progress (a relaunch knows no more)."""
    total = metrics.get(cost)
    if total is None or total != total:
        return None
    progress = metrics.get("progress", 1.0) or 1.0
    return float(total) * checkpoint.progress / progress


def start_pruner(spec: EarlyStopSpec) -> Any:
    """The launch's pruner actor (on the driver's node, no resources held)."""
    import ray

    return ray.remote(PrunerCore).options(num_cpus=0).remote(spec)


def tell_ended(pruner: Any, result: RunResult) -> None:
    pruner.tell.remote(result.run_key, result.status, dict(result.metrics), list(result.checkpoints))


def tell_history(pruner: Any, run_key: str, status: str, metrics: Mapping[str, float],
                 checkpoints: Sequence[Checkpoint]) -> None:
    pruner.tell.remote(run_key, status, dict(metrics), list(checkpoints), True)
