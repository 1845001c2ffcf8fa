"""`AdaptivePlanner`: proposes runs a few at a time from the runs told so far, under a budget (`kind: adaptive`).

First the initial design: the `initial` cheapest (by the cost prior, N·D) of 4 x initial scrambled-Sobol points,
cheapest first: space-filling where runs are cheap, since the model then says where dearer runs pay. Then the goal's
model (`FrontierSearch` or `LawDesign`) scores candidates per share of budget. A proposal is made only if its
predicted cost fits what is left after ended runs and runs in flight; never more than `in_flight` are out at once,
and never the same point twice. While the model cannot be used yet (too few results), the planner waits for the
runs in flight, or keeps filling the space when nothing is in flight. Everything it proposes is a function of the
seed and the history (told in any order), so a relaunch that tells the history first continues where it stopped.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from orchestrator.sweep.adaptive.budget import Budget
from orchestrator.sweep.adaptive.cost import CostModel
from orchestrator.sweep.adaptive.frontier import FrontierSearch
from orchestrator.sweep.adaptive.history import INDEX_TAG, canonical, proposal_index
from orchestrator.sweep.adaptive.law import LawDesign
from orchestrator.sweep.adaptive.lawfit import LawEstimate, estimate
from orchestrator.sweep.adaptive.space import Space
from orchestrator.sweep.adaptive.spec import AdaptiveSpec
from orchestrator.sweep.planner import BudgetState, Observation, Planner, Proposal

# Coordinates closer than this (in every dimension of the unit cube) are the same point.
SAME_POINT = 1e-6
# The initial design is the cheapest 1/DESIGN_POOL (by the cost prior) of DESIGN_POOL x initial Sobol points.
DESIGN_POOL = 4
# Space-filling points kept in reserve beyond the initial design, for when the model cannot be used yet.
RESERVE = 64
# Bootstrap resamples of the reported law intervals; metrics() refreshes them when the rows grew by this factor.
ESTIMATE_BOOTSTRAP, ESTIMATE_GROWTH = 200, 1.1
# Leaf names taken as model and data size for the cost prior when the sweep has no law section.
SIZE_LEAVES = ("n_params", "tokens")


class AdaptivePlanner(Planner):
    """The closed-loop planner of `kind: adaptive`; build it with `AdaptivePlanner(parse_adaptive(sweep, slots))`."""

    def __init__(self, spec: AdaptiveSpec) -> None:
        self.spec = spec
        self.space = Space(spec.params)
        self.cost = CostModel(self.space, list(spec.budget), _size_paths(spec, self.space))
        self.ledger = Budget(spec.budget)
        cost_metric = spec.early_stop.cost if spec.early_stop else None
        self.search = LawDesign(spec.law, self.space) if spec.goal == "law" else \
            FrontierSearch(spec.objectives, self.space, spec.seed, cost_metric)
        sobol = self.space.snap(self.space.sobol(DESIGN_POOL * spec.initial + RESERVE, spec.seed))
        pool = sobol[: DESIGN_POOL * spec.initial]
        self._design = pool[np.argsort(self.cost.relative(pool), kind="stable")[: spec.initial]]
        self._reserve = sobol[DESIGN_POOL * spec.initial :]
        self._history: list[Observation] = []
        self._told_u = np.zeros((0, len(self.space)))
        # Proposal index -> (proposal, its coordinates), while in flight.
        self._in_flight: dict[int, tuple[Proposal, np.ndarray]] = {}
        self._next_index = 0
        self._stale = True
        self._stalled = False
        self._estimate: LawEstimate | None = None

    # -- the Planner protocol ------------------------------------------------------------------------------------------

    def ask(self, n: int) -> list[Proposal]:
        self._refresh()
        rng = np.random.default_rng([self.spec.seed, len(self._history), self._next_index])
        candidates: list[np.ndarray] = []  # drawn on first use, once per ask
        out = []
        room = max(0, min(n, self.spec.in_flight - len(self._in_flight)))
        for _ in range(room):
            picked = self._pick(candidates, rng)
            if picked is None:
                break
            out.append(self._issue(*picked))
        self._stalled = room > 0 and not out and not self._in_flight  # nothing left to propose, nothing to wait for
        return out

    def tell(self, observation: Observation) -> None:
        self.ledger.charge(observation)  # first: a missing cost metric changes nothing
        index = proposal_index(observation.reason)
        if index is None or index not in self._in_flight:
            u = self._coordinates(observation.point)
            index = next((i for i, (_, v) in self._in_flight.items() if u is not None and _same(v, u)), index)
        if index is not None:
            self._release(index)
            self._next_index = max(self._next_index, index + 1)
        self._history.append(observation)
        self._stale, self._stalled = True, False

    @property
    def done(self) -> bool:
        self._refresh()
        if self._in_flight:
            return False
        if self._stalled or self.ledger.exhausted():
            return True
        probe = np.vstack([self.space.corners(), self._reserve])
        return not self.ledger.fits(self.cost.predict(probe), len(probe)).any()

    def budget(self) -> BudgetState:
        self._refresh()
        return self.ledger.state()

    def metrics(self) -> Mapping[str, float]:
        state = self.budget()
        out = {"budget.spent": state.spent, "budget.committed": state.committed, "budget.limit": state.limit}
        if isinstance(self.search, FrontierSearch):
            out["planner.hypervolume"] = self.search.hypervolume()
            return out
        if self._estimate is None or len(self.search.rows) >= ESTIMATE_GROWTH * self._estimate.n_rows or self.done:
            self.estimate()
        if self._estimate is not None:
            out["planner.exponent"] = self._estimate.exponent
            out["planner.exponent_ci_width"] = self._estimate.exponent_ci_width
            if self._estimate.loss_at_target_ci_width is not None:
                out["planner.loss_at_target_ci_width"] = self._estimate.loss_at_target_ci_width
        return out

    def forget(self, proposal: Proposal) -> None:
        index = proposal_index(proposal.reason)
        if index is not None:
            self._release(index)
        self._stalled = False

    # -- beyond the protocol -------------------------------------------------------------------------------------------

    def estimate(self) -> LawEstimate | None:
        """Goal law: the law fitted to every row so far with 90% bootstrap intervals (None before it can be fitted)."""
        self._refresh()
        if not isinstance(self.search, LawDesign) or not self.search.ready:
            return None
        if self._estimate is None or self._estimate.n_rows != len(self.search.rows):
            try:
                target = self.spec.law.target_flops
                self._estimate = estimate(self.search.rows, target, ESTIMATE_BOOTSTRAP, self.spec.seed)
            except ValueError:
                return self._estimate
        return self._estimate

    def _release(self, index: int) -> None:
        self._in_flight.pop(index, None)
        self.ledger.release(index)

    # -- internals -----------------------------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Refit the cost model and the goal's model to the history, and re-predict the cost of runs in flight."""
        if not self._stale:
            return
        history = canonical(self._history)
        told = [(o, self._coordinates(o.point)) for o in history]
        usable = [o for o, u in told if u is not None]  # runs of this space (others count against the budget only)
        self.cost.fit(usable)
        self.search.update(usable)
        self._told_u = np.array([u for _, u in told if u is not None]).reshape(-1, len(self.space))
        for index, (_, u) in self._in_flight.items():
            self.ledger.commit(index, {k: float(v[0]) for k, v in self.cost.predict(u[None]).items()})
        self._stale = False

    def _pick(self, candidates: list[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, str, float] | None:
        """The next point, phase and score: the initial design, else the model, else (nothing in flight) the reserve."""
        design = self._fitting(self._unused(self._design))
        if len(design):
            return design[0], "initial", 0.0
        if self.search.ready:
            if not candidates:
                candidates.append(self.search.candidates(rng))
            pool = self._fitting(self._unused(candidates[0]))
            if len(pool):
                predicted = self.cost.predict(pool)
                index, score = self.search.propose(self._pending(), pool, self.ledger.share(predicted, len(pool)))
                return pool[index], "model", score
            return None
        reserve = self._fitting(self._unused(self._reserve))
        return (reserve[0], "initial", 0.0) if len(reserve) and not self._in_flight else None

    def _issue(self, u: np.ndarray, phase: str, score: float) -> Proposal:
        index = self._next_index
        self._next_index += 1
        predicted = {k: float(v[0]) for k, v in self.cost.predict(u[None]).items()}
        reason = {"proposal.goal": self.spec.goal, "proposal.score": f"{score:.6g}", INDEX_TAG: str(index),
                  "proposal.phase": phase}
        proposal = Proposal(self.space.point(u), reason, predicted)
        self._in_flight[index] = (proposal, u)
        self.ledger.commit(index, predicted)
        return proposal

    def _unused(self, u: np.ndarray) -> np.ndarray:
        """Points neither told nor in flight, and distinct from each other (the first of each kept)."""
        if len(u) == 0:
            return u
        taken = np.vstack([self._told_u, self._pending()])
        first = np.unique(np.round(u / SAME_POINT), axis=0, return_index=True)[1]
        u = u[np.sort(first)]
        return u[~_close(u, taken).any(axis=1)]

    def _fitting(self, u: np.ndarray) -> np.ndarray:
        return u[self.ledger.fits(self.cost.predict(u), len(u))] if len(u) else u

    def _pending(self) -> np.ndarray:
        return np.array([u for _, u in self._in_flight.values()]).reshape(-1, len(self.space))

    def _coordinates(self, point: Mapping[str, object]) -> np.ndarray | None:
        """A told point's coordinates, or None when it lacks a swept path or has a value outside the space."""
        try:
            return self.space.units(point)
        except (KeyError, ValueError):
            return None


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(np.abs(a - b) <= SAME_POINT))


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) mask of pairs that are the same point."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=bool)
    return (np.abs(a[:, None, :] - b[None, :, :]) <= SAME_POINT).all(axis=2)


def _size_paths(spec: AdaptiveSpec, space: Space) -> tuple[str, ...]:
    """What the cost prior scales with (cost ∝ N·D): the law's n and d, else the params named n_params and tokens."""
    if spec.law is not None:
        return (spec.law.n_path, spec.law.d_path)
    return tuple(p for p in space.paths if p.rsplit(".", 1)[-1] in SIZE_LEAVES)
