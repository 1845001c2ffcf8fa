"""The closed loop's two verbs: a planner proposes runs (`ask`) and learns from ended ones (`tell`) until it is `done`.

Every sweep kind is a planner. The static kinds (grid, zip, isoflop, random) propose their whole design on the first
`ask`; an adaptive planner proposes a few runs at a time from what it was told. A planner holds no handle to Ray or
MLflow, only the history it was told, so a relaunch rebuilds it by telling it the sweep's ended runs again
(Optuna's ask/tell, CARBS's suggest/observe).

Points are {config path: value} (e.g. {"job.n_params": 1e7, "job.tokens": 1e10}); the engine turns each into a fully
resolved, keyed `RunSpec` and decides whether it runs (dedup by run_key, resources).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping

from orchestrator.records import PRUNED, Checkpoint, RunSpec

__all__ = ["PRUNED", "Checkpoint", "Proposal", "Observation", "BudgetState", "Planner", "BUDGET_METRICS"]

# Budget units a sweep may be limited by, and the run metric each is measured from.
BUDGET_METRICS = {"runs": None, "gpu_hours": "gpu_hours", "usd": "cost_usd", "energy_kwh": "energy_j"}


@dataclass(frozen=True)
class Proposal:
    """A run a planner wants made."""

    # Config path -> value of the run.
    point: Mapping[str, Any]
    # Why it was proposed; logged as tags on its run (proposal.goal, proposal.score, proposal.index, ...).
    reason: Mapping[str, str] = field(default_factory=dict)
    # Predicted cost in budget units (runs, gpu_hours, usd, energy_kwh); empty where nothing predicts it yet.
    predicted: Mapping[str, float] = field(default_factory=dict)
    # The run, when the planner has it resolved already (static designs); else the engine builds it from `point`.
    spec: RunSpec | None = None


@dataclass(frozen=True)
class Observation:
    """A run that ended, as a planner is told of it (live, or read back from MLflow on a relaunch)."""

    point: Mapping[str, Any]
    # FINISHED, FAILED or PRUNED. Interrupted (KILLED) runs are not told: they did not end.
    status: str
    # Final metrics (a pruned run's last values), including what was measured: wall_s, gpu_hours, cost_usd, energy_j.
    metrics: Mapping[str, float] = field(default_factory=dict)
    # The proposal's reason tags, when it came from this planner (on a relaunch: read back from the run's tags).
    reason: Mapping[str, str] = field(default_factory=dict)
    checkpoints: tuple[Checkpoint, ...] = ()


@dataclass(frozen=True)
class BudgetState:
    """How much of a sweep's budget is spent, for the progress display and the parent run's metrics."""

    # The unit the display counts in (the first limit given): runs, gpu_hours, usd or energy_kwh.
    unit: str
    # Measured spend of ended runs (finished, failed and pruned), and the predicted cost of the runs in flight.
    spent: float
    committed: float
    limit: float


class Planner(ABC):
    """Proposes runs until done; learns from the ones that ended."""

    @abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Up to `n` new proposals; fewer (or none) when the planner wants to see results first or the budget has no
        room. Never the same point twice."""

    @abstractmethod
    def tell(self, observation: Observation) -> None:
        """A run ended (or, on a relaunch, had ended in an earlier launch)."""

    @property
    @abstractmethod
    def done(self) -> bool:
        """Nothing more will be proposed, whatever else is told (the design is exhausted or the budget reached)."""

    def budget(self) -> BudgetState | None:
        """Budget spent so far; None for a planner without a budget (a static design of known size)."""
        return None

    def metrics(self) -> Mapping[str, float]:
        """How the search stands (e.g. planner.hypervolume, planner.exponent_ci_width), logged on the launch's parent
        run with step = runs ended, so the MLflow UI shows it converge. Empty for static designs."""
        return {}

    def forget(self, proposal: Proposal) -> None:
        """A proposal will not run in this launch (it had already finished, or cannot be placed): stop counting it
        as in flight. Its outcome, if any, is told separately."""


class StaticPlanner(Planner):
    """A design known in full before anything runs (grid, zip, isoflop, random, single): every run on the first ask,
    each already resolved, so their run_keys are exactly those the dry run shows. Learns nothing from results."""

    def __init__(self, specs: list[RunSpec]) -> None:
        self._specs = list(specs)
        self._asked = False

    def ask(self, n: int) -> list[Proposal]:
        if self._asked:
            return []
        self._asked = True
        return [Proposal(dict(spec.varied), spec=spec) for spec in self._specs]

    def tell(self, observation: Observation) -> None:
        pass

    @property
    def done(self) -> bool:
        return self._asked
