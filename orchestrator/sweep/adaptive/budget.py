"""The budget ledger of an adaptive sweep: measured spend of ended runs, predicted cost of runs in flight, and room.

A sweep may be limited in several units at once (runs, gpu_hours, usd, energy_kwh); a proposal is made only if it fits
in every one, so the sweep stops at the first limit reached. A unit no run has measured yet cannot be predicted: the
first proposals (never more than in_flight at once) go out unchecked in it, which bounds any overrun by the runs in
flight.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from orchestrator.sweep.adaptive.cost import measured_cost
from orchestrator.sweep.planner import BudgetState, Observation

# Relative slack when comparing a predicted cost with the room left (floating-point sums).
SLACK = 1e-9


class Budget:
    """Limits per unit, what ended runs spent, and what runs in flight are predicted to spend."""

    def __init__(self, limits: Mapping[str, float]) -> None:
        self.limits = dict(limits)
        self.spent = dict.fromkeys(self.limits, 0.0)
        # Proposal index -> its predicted cost per unit, while it is in flight.
        self._committed: dict[int, Mapping[str, float]] = {}

    def charge(self, observation: Observation) -> None:
        """Add an ended run's measured cost in every unit (MissingCostError when a metric is missing)."""
        costs = {unit: measured_cost(observation, unit) for unit in self.limits}
        for unit, cost in costs.items():
            self.spent[unit] += cost

    def commit(self, index: int, predicted: Mapping[str, float]) -> None:
        self._committed[index] = dict(predicted)

    def release(self, index: int) -> None:
        self._committed.pop(index, None)

    def committed(self, unit: str) -> float:
        return sum(p.get(unit, 0.0) for p in self._committed.values())

    def room(self, unit: str) -> float:
        """What is left in `unit` after ended runs and the predicted cost of runs in flight."""
        return self.limits[unit] - self.spent[unit] - self.committed(unit)

    def fits(self, predicted: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """Which of n points, with these predicted costs per unit, fit in the room left in every unit, (n,) bool."""
        ok = np.ones(n, dtype=bool)
        for unit, limit in self.limits.items():
            if unit in predicted:
                ok &= np.asarray(predicted[unit]) <= self.room(unit) + SLACK * limit
        return ok

    def share(self, predicted: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        """The largest fraction of any unit's limit each point is predicted to use, (n,): the cost scores divide by."""
        shares = [np.asarray(predicted[u]) / limit for u, limit in self.limits.items() if u in predicted]
        return np.max(shares, axis=0) if shares else np.ones(n)

    def exhausted(self) -> bool:
        """Some unit has nothing left, counting the runs in flight."""
        return any(self.room(unit) <= SLACK * limit for unit, limit in self.limits.items())

    def state(self) -> BudgetState:
        unit = next(iter(self.limits))
        return BudgetState(unit, self.spent[unit], self.committed(unit), self.limits[unit])
