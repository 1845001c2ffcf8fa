"""Goal frontier: propose where the expected hypervolume improvement (EHVI) per predicted cost is highest.

In the spirit of CARBS: candidates are drawn around the current front (and across the whole space), every objective
is modelled by its own Gaussian process, and each candidate's EHVI (Monte Carlo, fixed base samples) is divided by
the share of the budget it is predicted to use. Objectives are compared as minimisation costs, on a log scale where
every value seen is positive (a cost spanning decades counts by ratios), normalised so that the reference point, the
worst value seen or predicted plus a 10% margin, is 1. Runs in flight and proposals already chosen in a batch are
fantasies at their predicted mean (kriging believer), so a batch spreads out.

Hyperparameters are refitted only at milestones of the data size (and on at most MAX_FIT_POINTS rows), from the
canonical prefix of the history, so proposals are a function of the history alone and an ask stays cheap.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from orchestrator.sweep.adaptive.gp import GaussianProcess
from orchestrator.sweep.adaptive.history import evenly, milestone
from orchestrator.sweep.adaptive.improvement import epsilon_gap, hypervolume, improvement, nondominated_rows
from orchestrator.sweep.adaptive.space import Space
from orchestrator.sweep.planner import PRUNED, Observation

FINISHED = "FINISHED"
# Metrics that accumulate over a run: a pruned run's value is scaled up to the full run by its progress.
ACCUMULATING = frozenset({"gpu_hours", "gpu_seconds", "cost_usd", "energy_j", "wall_s", "co2_g", "flops"})
# Finished runs needed before the model is used.
MIN_POINTS = 3
# Hyperparameters are refitted at milestones of the data size, on at most this many (evenly spread) rows.
MAX_FIT_POINTS = 128
# Monte Carlo samples of the objectives per candidate (with 3 objectives, exact hypervolumes are slow: 8 samples on
# the 16 candidates reaching furthest beyond the front).
SAMPLES, SAMPLES_3D, SHORTLIST_3D = 64, 8, 16
# Candidates: this many space-filling ones, and perturbations of each front point at two scales.
SPACE_CANDIDATES, NEAR_EACH, NEAR_SCALES = 256, 12, (0.05, 0.15)
# Front points perturbed at most (evenly spread along the front).
MAX_CENTRES = 24
REFERENCE_MARGIN = 0.1
# Finished runs whose range fixes the reported hypervolume's normalisation (see `FrontierSearch.hypervolume`).
REFERENCE_RUNS = 8
# Candidates closer than this (Euclidean, in the unit cube) to a run seen or in flight are not proposed.
MIN_DISTANCE = 0.02


class FrontierSearch:
    """Models the objectives from finished runs and scores candidates by EHVI per share of budget."""

    def __init__(self, objectives: Mapping[str, str], space: Space, seed: int, cost_metric: str | None = None) -> None:
        self.objectives, self.space = dict(objectives), space
        self.accumulating = ACCUMULATING | ({cost_metric} if cost_metric else set())
        self._z = np.random.default_rng([seed, 7]).standard_normal((SAMPLES, len(objectives)))
        self.u = np.zeros((0, len(space)))
        self.costs = np.zeros((0, len(objectives)))
        self.finished = np.zeros(0, dtype=bool)
        self._models: list[GaussianProcess] | None = None
        self._fits: dict[tuple[bytes, bytes], GaussianProcess] = {}

    def update(self, observations: Sequence[Observation]) -> None:
        """Take the history (in canonical order): finished runs with every objective logged, and pruned ones.

        A pruned run enters the models, not the front, at its last values, with cost-like objectives (which
        accumulate over a run) scaled up to the full run by its progress: pessimistic for the watched metric, so
        the search learns to leave a region whose runs get stopped."""
        rows, values, finished = [], [], []
        for o in observations:
            progress = 1.0 if o.status == FINISHED else max((c.progress for c in o.checkpoints), default=0.0)
            logged = all(_finite(o.metrics.get(m)) for m in self.objectives)
            if o.status in (FINISHED, PRUNED) and progress > 0 and logged:
                rows.append(self.space.units(o.point))
                scale = {m: progress if m in self.accumulating else 1.0 for m in self.objectives}
                values.append([float(o.metrics[m]) / scale[m] for m in self.objectives])
                finished.append(o.status == FINISHED)
        k = len(self.objectives)
        values_array = np.array(values).reshape(len(rows), k)
        self.u = np.array(rows).reshape(len(rows), len(self.space))
        self.costs = np.column_stack([self._scale(j, values_array[:, j]) for j in range(k)]) if rows else values_array
        self.finished = np.array(finished, dtype=bool)
        self._models = None

    @property
    def ready(self) -> bool:
        return len(self.u) >= MIN_POINTS

    def candidates(self, rng: np.random.Generator) -> np.ndarray:
        """Space-filling points and perturbations of the current front's points, snapped to real points."""
        from scipy.stats import qmc

        spread = qmc.Sobol(len(self.space), scramble=True, seed=rng).random_base2(int(math.log2(SPACE_CANDIDATES)))
        on_front = np.flatnonzero(self._front_mask())
        on_front = on_front[np.argsort(self.costs[on_front, 0], kind="stable")]
        front = self.u[on_front[evenly(len(on_front), MAX_CENTRES)]]
        near = [self.space.around(front, NEAR_EACH, s, rng) for s in NEAR_SCALES]
        return self.space.snap(np.vstack([spread, *near]))

    def propose(self, pending: np.ndarray, candidates: np.ndarray, share: np.ndarray) -> tuple[int, float]:
        """The candidate with the highest EHVI per share of budget, given the points in flight; (index, score)."""
        models = self._fitted()
        base = np.column_stack([m.predict(candidates)[0] for m in models])
        lo, span = self._normaliser(base)
        seen = np.column_stack([m.predict(self.u[self.finished])[0] for m in models])  # the front without its noise
        if len(pending):
            models = [m.with_points(pending) for m in models]
        stats = [m.predict(candidates) for m in models]
        mean = (np.column_stack([s[0] for s in stats]) - lo) / span
        sd = np.column_stack([s[1] for s in stats]) / span
        fantasies = np.column_stack([m.predict(pending)[0] for m in models]) if len(pending) else self.costs[:0]
        front = nondominated_rows((np.vstack([seen, fantasies]) - lo) / span)
        score = self._expected_improvement(front, mean, sd) / share
        taken = np.vstack([self.u, pending])
        crowded = ((candidates[:, None, :] - taken[None, :, :]) ** 2).sum(axis=2).min(axis=1) < MIN_DISTANCE**2
        crowded &= not crowded.all()  # a space too small to keep the distance: only exact repeats are excluded
        score = np.where(crowded, -np.inf, score)
        if score.max() <= 0:  # nothing promises a gain: take the most optimistic point, then the most uncertain
            score = np.where(crowded, -np.inf, improvement(front, mean - 2.0 * sd) / share)
        if score.max() <= 0:
            score = np.where(crowded, -np.inf, sd.sum(axis=1) / share * 1e-12)
        best = int(np.argmax(score))
        return best, float(score[best])

    def hypervolume(self) -> float:
        """Hypervolume of the finished runs, each objective normalised to the range of the first REFERENCE_RUNS
        finished (in the history's canonical order) with a 10% margin: a fixed yardstick once they are in, so the
        value only grows as runs come in and a chart of it shows the search converging."""
        costs = self.costs[self.finished]
        if len(costs) == 0:
            return 0.0
        first = costs[:REFERENCE_RUNS]
        lo = first.min(axis=0)
        span = (first.max(axis=0) - lo) * (1.0 + REFERENCE_MARGIN)
        return hypervolume((costs - lo) / np.where(span > 0, span, 1.0))

    def _expected_improvement(self, front: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
        m, k = mean.shape
        if k < 3:
            samples = mean[:, None, :] + sd[:, None, :] * self._z[None, :, :]
            return improvement(front, samples.reshape(-1, k)).reshape(m, SAMPLES).mean(axis=1)
        out = np.zeros(m)
        shortlist = np.argsort(epsilon_gap(front, mean - sd), kind="stable")[:SHORTLIST_3D]
        z = self._z[:SAMPLES_3D]
        for i in shortlist:
            out[i] = improvement(front, mean[i] + sd[i] * z).mean()
        return out

    def _normaliser(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per objective: the best value seen, and the distance from it to the reference point."""
        lo = self.costs.min(axis=0)
        hi = np.maximum(self.costs.max(axis=0), predicted.max(axis=0))
        span = (hi - lo) * (1.0 + REFERENCE_MARGIN)
        return lo, np.where(span > 0, span, 1.0)

    def _fitted(self) -> list[GaussianProcess]:
        """One GP per objective on all finished runs, hyperparameters from the latest milestone's fit."""
        if self._models is None:
            n = len(self.u)
            size = milestone(n)
            rows = evenly(size, MAX_FIT_POINTS)
            self._models = []
            for j in range(self.costs.shape[1]):
                x, y = self.u[rows], self.costs[rows, j]
                key = (x.tobytes(), y.tobytes())  # a prefix of the canonical order: the same history, the same fit
                if key not in self._fits:
                    self._fits[key] = GaussianProcess.fit(x, y)
                self._models.append(GaussianProcess(self.u, self.costs[:, j], self._fits[key].hyper))
        return self._models

    def _front_mask(self) -> np.ndarray:
        """Which rows are finished runs on the front."""
        from orchestrator.analysis._skyline import nondominated

        mask = np.zeros(len(self.costs), dtype=bool)
        if self.finished.any():
            mask[np.flatnonzero(self.finished)[nondominated(self.costs[self.finished])]] = True
        return mask

    def _scale(self, j: int, values: np.ndarray) -> np.ndarray:
        """An objective as a minimisation cost: negated when maximised, on a log scale when every value is positive."""
        sign = 1.0 if list(self.objectives.values())[j] == "min" else -1.0
        return sign * (np.log(values) if (values > 0).all() else values)


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
