"""Between a planner and the scheduler: proposals admitted as runs one at a time, ended runs told back.

The feed is the scheduler's `RunSource`. When a run ends it tells the planner (`tell`), then asks it for more
(`ask`) the next time the scheduler takes runs. Each proposal is admitted on its own: resolved into a run (static
designs come resolved), its resources settled and checked, and dropped if its run_key already ended (FINISHED or
PRUNED; FAILED unless failed runs are rerun) or is already in flight; a dropped proposal is forgotten by the planner.
The feed is exhausted when the planner is done and nothing it admitted is still running, or when the planner
proposes nothing while nothing runs (it would wait forever).

No Ray, no MLflow: the launch wires it to both (`orchestrator.launch`).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping

from orchestrator.errors import ConfigError
from orchestrator.records import FAILED, FINISHED, KILLED, PRUNED, Checkpoint, RunResult, RunSpec
from orchestrator.sweep.planner import Observation, Planner, Proposal

log = logging.getLogger(__name__)
# Tag holding a proposal's point as JSON: a relaunch reads it back to tell the planner what ran.
POINT_TAG = "proposal.point"
# Tag a run gets when its job declared its checkpoints valid measurements (`ctx.log(..., checkpoint=True)`).
VALID_TAG = "checkpoints_valid"
# Statuses that end a run_key for good: it is never run again.
DONE = (FINISHED, PRUNED)


class Feed:
    """Hands a planner's proposals to the scheduler as runs and tells the planner how they ended."""

    def __init__(self, planner: Planner, statuses: Mapping[str, str], *,
                 expand: Callable[[Mapping[str, Any], Mapping[str, str]], RunSpec],
                 admit: Callable[[RunSpec], RunSpec] = lambda spec: spec, limit: int | None = None,
                 rerun_failed: bool = False, ended: int = 0,
                 on_progress: Callable[[Planner, int], None] | None = None) -> None:
        self.planner = planner
        self.statuses = dict(statuses)
        self.expand = expand
        self.admit = admit
        self.limit = limit
        self.rerun_failed = rerun_failed
        # Runs ended so far, earlier launches' included (the step of the launch's search metrics).
        self.ended = ended
        self.on_progress = on_progress
        self.in_flight: dict[str, Proposal] = {}
        # Name of every run admitted, by run_key.
        self.names: dict[str, str] = {}
        # Proposals not run, and why ("already FINISHED", "no node can hold ...").
        self.refused: list[tuple[Mapping[str, Any], str]] = []
        # An error that ends the search (e.g. a budget metric a run did not report).
        self.error: Exception | None = None
        self._ask = True
        self._stalled = False

    # -- RunSource --------------------------------------------------------------------------------------------------
    def take(self) -> list[RunSpec]:
        if not self._ask or self.error is not None or self.planner.done:
            return []
        self._ask = False
        room = (self.limit if self.limit is not None else 1 << 30) - len(self.in_flight)
        specs = [spec for spec in map(self._admitted, self.planner.ask(room) if room > 0 else []) if spec]
        self._stalled = not specs and not self.in_flight
        return specs

    @property
    def exhausted(self) -> bool:
        return not self.in_flight and (self.error is not None or self._stalled or self.planner.done)

    # -- RunEvents --------------------------------------------------------------------------------------------------
    def on_end(self, result: RunResult) -> None:
        proposal = self.in_flight.pop(result.run_key, None)
        if proposal is None:
            return
        self._ask = True
        if result.status == KILLED:  # interrupted: it did not end, and runs again on a relaunch
            self.planner.forget(proposal)
            return
        self.statuses[result.run_key] = result.status
        self.ended += 1
        try:
            self.planner.tell(Observation(proposal.point, result.status, dict(result.metrics), proposal.reason,
                                          result.checkpoints))
        except ValueError as exc:  # e.g. the budget counts a metric this run did not report
            self.error = exc
            return
        if self.on_progress is not None:
            self.on_progress(self.planner, self.ended)

    # -- admission --------------------------------------------------------------------------------------------------
    def _admitted(self, proposal: Proposal) -> RunSpec | None:
        try:
            spec = proposal.spec or self.expand(proposal.point, _tags(proposal))
            spec = self.admit(spec)
        except ConfigError as exc:
            return self._refuse(proposal, str(exc))
        status = self.statuses.get(spec.run_key)
        if spec.run_key in self.in_flight:
            return self._refuse(proposal, f"same run as one in flight ({spec.name})")
        if status in DONE or (status == FAILED and not self.rerun_failed):
            return self._refuse(proposal, f"{spec.name} already {status}")
        self.in_flight[spec.run_key] = proposal
        self.names[spec.run_key] = spec.name
        return spec

    def _refuse(self, proposal: Proposal, reason: str) -> None:
        if proposal.spec is None:
            log.warning("proposal %s not run: %s", dict(proposal.point), reason)
        self.refused.append((proposal.point, reason))
        self.planner.forget(proposal)
        return None


def _tags(proposal: Proposal) -> dict[str, str]:
    """A proposed run's tags: why it was proposed, and its point (exact, for a relaunch to tell the planner)."""
    predicted = {f"proposal.predicted_{unit}": f"{cost:.6g}" for unit, cost in proposal.predicted.items()}
    return {**{k: str(v) for k, v in proposal.reason.items()}, **predicted,
            POINT_TAG: json.dumps(dict(proposal.point), default=str)}


def observation_of(status: str, tags: Mapping[str, str], metrics: Mapping[str, float]) -> Observation | None:
    """A run of an earlier launch as the planner is told of it on a relaunch (None: not a proposal of a closed-loop
    sweep, or not ended). A pruned run's last values come back as a checkpoint at its `progress`."""
    if POINT_TAG not in tags or status not in (FINISHED, FAILED, PRUNED):
        return None
    try:
        point = json.loads(tags[POINT_TAG])
    except ValueError:
        return None
    reason = {k: v for k, v in tags.items() if k.startswith("proposal.") and k != POINT_TAG}
    checkpoints: tuple[Checkpoint, ...] = ()
    if status == PRUNED and "progress" in metrics:
        values = {k: v for k, v in metrics.items() if k != "progress"}
        checkpoints = (Checkpoint(float(metrics["progress"]), values, tags.get(VALID_TAG) == "true"),)
    return Observation(point, status, dict(metrics), reason, checkpoints)
