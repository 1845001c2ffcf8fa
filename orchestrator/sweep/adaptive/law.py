"""Goal law: propose the (N, D) points that most shrink the uncertainty of what the law is for, per unit of cost.

A c-optimal design on the linearised law. At the current fit, each row (N, D) has a gradient J of log L with respect
to theta = (alpha, beta, c_A, c_B, e) (log A = c_A + alpha·m_N, log B = c_B + beta·m_D, log E = e; m_* centre the log
sizes); the information of the rows seen, plus those of runs in flight, is M = sum J'J. A target t (the
compute-optimal exponent a = beta/(alpha+beta), and log L at target_flops on the optimal allocation) has variance
g_t' M^-1 g_t up to the noise level. A candidate adds rows J_c (its final value, and one per valid-checkpoint
fraction seen so far), which lowers each variance by g' M^-1 J_c' (I + J_c M^-1 J_c')^-1 J_c M^-1 g (Woodbury, no
outcome needed). Score = sum over targets of relative variance reduction / share of budget; a batch is built
greedily, each pick joining M. Needs no refit per proposal: the fit is redone at milestones of the data. Points
within MIN_DISTANCE (in the unit (N, D) square) of a run seen or in flight are skipped: an exact law would make
replicates of the cheapest corner optimal, and spreading out hedges against a law that only roughly holds (it also
keeps the bootstrap intervals honest: 97% coverage of nominal 90% in benchmarks/adaptive.py).

Nuisance parameters (anything but N and D, e.g. lr) come from the run with the lowest residual (observed over fitted
loss) among the 5 nearest in (N, D), jittered a little; early proposals take them space-filling like the rest.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from orchestrator.sweep.adaptive.history import evenly, milestone
from orchestrator.sweep.adaptive.lawfit import FINISHED, fit_law, law_rows, loss_at_flops
from orchestrator.sweep.adaptive.space import Space
from orchestrator.sweep.adaptive.spec import LawSpec
from orchestrator.sweep.planner import Observation

# Rows needed before the model is used (5 parameters + 1), with at least this many distinct N and D values.
MIN_ROWS, MIN_DISTINCT = 6, 3
# Candidates: space-filling ones, and points along each edge of the (N, D) square.
SPACE_CANDIDATES, EDGE_POINTS = 512, 17
# Nuisance parameters: from the best of this many nearest runs, jittered by this sd in cube units.
NEAREST, NUISANCE_JITTER = 5, 0.05
# The linearisation point is refitted when the rows have grown by this factor, on at most this many (evenly spread).
REFIT_GROWTH, MAX_FIT_ROWS = 1.5, 300
# Candidates closer than this to a run seen or in flight, in the (N, D) square of the unit cube, are not proposed:
# replicates would be optimal if the law were exactly right, spreading hedges against it being only roughly so.
MIN_DISTANCE = 0.05
# Exponents are kept at least this far from 0 when linearising.
MIN_EXPONENT = 0.02


class LawDesign:
    """Scores candidates by how much they shrink the targets' variance per share of budget."""

    def __init__(self, law: LawSpec, space: Space) -> None:
        self.law, self.space = law, space
        self.n_dim, self.d_dim = space.index(law.n_path), space.index(law.d_path)
        self.nuisance = [j for j in range(len(space)) if j not in (self.n_dim, self.d_dim)]
        ends = [(space.dims[j].log_value(np.array([0.0, 1.0]))) for j in (self.n_dim, self.d_dim)]
        self.centre = np.array([e.mean() for e in ends])
        self.rows = np.zeros((0, 3))
        self.fractions: tuple[float, ...] = ()
        self._runs: list[Observation] = []
        self._seen_plane = np.zeros((0, 2))
        self._fits: dict[bytes, np.ndarray | None] = {}

    def update(self, observations: Sequence[Observation]) -> None:
        """Take the history (in canonical order)."""
        self.rows = law_rows(observations, self.law)
        seen = {round(c.progress, 6) for o in observations for c in o.checkpoints if c.valid and 0 < c.progress < 1}
        self.fractions = tuple(sorted(seen))
        self._runs = [o for o in observations if o.status == FINISHED and _positive(o.metrics.get(self.law.loss))]
        plane = [self.n_dim, self.d_dim]
        self._seen_plane = np.array([self.space.units(o.point)[plane] for o in observations]).reshape(-1, 2)

    @property
    def ready(self) -> bool:
        enough = len(self.rows) >= MIN_ROWS and min(len(np.unique(self.rows[:, k])) for k in (0, 1)) >= MIN_DISTINCT
        return enough and self.theta() is not None

    def theta(self) -> np.ndarray | None:
        """The linearisation point: a fit to the canonical prefix at the latest milestone (None if it failed)."""
        if len(self.rows) == 0:
            return None
        size = milestone(len(self.rows), REFIT_GROWTH)
        prefix = self.rows[evenly(size, MAX_FIT_ROWS)]
        key = prefix.tobytes()
        if key not in self._fits:
            self._fits[key] = self._fit(prefix)
        return self._fits[key]

    def candidates(self, rng: np.random.Generator) -> np.ndarray:
        """Space-filling points, points on the edges of the (N, D) square, nuisance filled in; snapped."""
        from scipy.stats import qmc

        spread = qmc.Sobol(len(self.space), scramble=True, seed=rng).random_base2(int(np.log2(SPACE_CANDIDATES)))
        line = np.linspace(0.0, 1.0, EDGE_POINTS)
        edges = spread[: 4 * EDGE_POINTS].copy()
        sides = [(self.n_dim, self.d_dim), (self.d_dim, self.n_dim)]
        for i, ((fixed, along), value) in enumerate((side, end) for side in sides for end in (0.0, 1.0)):
            block = edges[i * EDGE_POINTS : (i + 1) * EDGE_POINTS]
            block[:, fixed], block[:, along] = value, line
        out = np.vstack([spread, edges])
        return self.space.snap(self._with_nuisance(out, rng))

    def propose(self, pending: np.ndarray, candidates: np.ndarray, share: np.ndarray) -> tuple[int, float]:
        """The candidate whose rows most shrink the targets' relative variance per share of budget; (index, score)."""
        theta = self.theta()
        assert theta is not None, "propose needs a fitted law (check ready)"
        info = self._information(theta, pending)
        inverse = np.linalg.inv(info)
        jc = self._jacobian(theta, *self._candidate_rows(candidates))  # (m, r, 5)
        gain = np.zeros(len(candidates))
        for g in self._gradients(theta):
            var = g @ inverse @ g
            u = jc @ (inverse @ g)  # (m, r)
            s = np.eye(jc.shape[1]) + jc @ inverse @ np.swapaxes(jc, 1, 2)
            gain += np.einsum("mr,mr->m", u, np.linalg.solve(s, u[..., None])[..., 0]) / var
        plane = [self.n_dim, self.d_dim]
        seen = np.vstack([self._seen_plane, pending[:, plane]])
        gap = np.sqrt(((candidates[:, None, plane] - seen[None, :, :]) ** 2).sum(axis=2).min(axis=1)) if len(seen) \
            else np.full(len(candidates), np.inf)
        score = np.where(gap < MIN_DISTANCE, -np.inf, gain / share)
        best = int(np.argmax(score)) if np.isfinite(score).any() else int(np.argmax(gap))
        return best, float(max(score[best], 0.0))

    def _fit(self, rows: np.ndarray) -> np.ndarray | None:
        try:
            params = fit_law(rows).params
        except ValueError:
            return None
        alpha, beta = (max(params[k], MIN_EXPONENT) for k in ("alpha", "beta"))
        if not all(np.isfinite(list(params.values()))) or min(params["A"], params["B"]) <= 0:
            return None
        e = np.log(max(params["E"], 1e-6 * rows[:, 2].min()))
        ca = np.log(params["A"]) - alpha * self.centre[0]
        cb = np.log(params["B"]) - beta * self.centre[1]
        return np.array([alpha, beta, ca, cb, e])

    def _params(self, theta: np.ndarray) -> dict[str, float]:
        alpha, beta, ca, cb, e = theta
        return {"alpha": alpha, "beta": beta, "A": np.exp(ca + alpha * self.centre[0]),
                "B": np.exp(cb + beta * self.centre[1]), "E": np.exp(e)}

    def _jacobian(self, theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
        """d log L / d theta at each row, (..., 5) for log sizes of shape (...)."""
        alpha, beta, ca, cb, e = theta
        zn, zd = log_n - self.centre[0], log_d - self.centre[1]
        ta, tb = np.exp(ca - alpha * zn), np.exp(cb - beta * zd)
        te = np.full_like(ta, np.exp(e))
        total = ta + tb + te
        return np.stack([-ta * zn, -tb * zd, ta, tb, te], axis=-1) / total[..., None]

    def _gradients(self, theta: np.ndarray) -> list[np.ndarray]:
        """Gradients in theta of the targets: the exponent a, and log loss at target_flops when one is set."""
        alpha, beta = theta[:2]
        out = [np.array([-beta, alpha, 0.0, 0.0, 0.0]) / (alpha + beta) ** 2]
        if self.law.target_flops is not None:
            def log_loss(t: np.ndarray) -> float:
                return float(np.log(loss_at_flops(self._params(t), self.law.target_flops)))
            step = 1e-5
            out.append(np.array([(log_loss(theta + step * e) - log_loss(theta - step * e)) / (2 * step)
                                 for e in np.eye(5)]))
        return out

    def _information(self, theta: np.ndarray, pending: np.ndarray) -> np.ndarray:
        """J'J over the rows seen and the rows the runs in flight will give, with a tiny ridge."""
        j_seen = self._jacobian(theta, np.log(self.rows[:, 0]), np.log(self.rows[:, 1]))
        j_pending = self._jacobian(theta, *self._candidate_rows(pending)).reshape(-1, 5) if len(pending) else j_seen[:0]
        j = np.vstack([j_seen, j_pending])
        info = j.T @ j
        return info + (1e-9 * np.trace(info) + 1e-12) * np.eye(5)

    def _candidate_rows(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log N and log D of the rows each point would give (final, and one per checkpoint fraction), (m, r) each."""
        log_n = self.space.dims[self.n_dim].log_value(u[:, self.n_dim])
        log_d = self.space.dims[self.d_dim].log_value(u[:, self.d_dim])
        shifts = np.log(np.r_[list(self.fractions), 1.0])
        return np.repeat(log_n[:, None], len(shifts), axis=1), log_d[:, None] + shifts[None, :]

    def _with_nuisance(self, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Nuisance coordinates copied from the best-residual run near each point in (N, D), jittered."""
        theta = self.theta() if self.nuisance and self._runs else None
        if theta is None:
            return u
        seen = np.array([self.space.units(o.point) for o in self._runs])
        log_n, log_d = (np.log([float(o.point[p]) for o in self._runs]) for p in (self.law.n_path, self.law.d_path))
        fitted = np.log(loss_at_point(self._params(theta), log_n, log_d))
        residual = np.log([float(o.metrics[self.law.loss]) for o in self._runs]) - fitted
        plane = [self.n_dim, self.d_dim]
        dist = ((u[:, None, plane] - seen[None, :, plane]) ** 2).sum(axis=2)
        near = np.argsort(dist, axis=1, kind="stable")[:, :NEAREST]
        best = near[np.arange(len(u)), np.argmin(residual[near], axis=1)]
        out = u.copy()
        jitter = rng.standard_normal((len(u), len(self.nuisance))) * NUISANCE_JITTER
        out[:, self.nuisance] = np.clip(seen[best][:, self.nuisance] + jitter, 0.0, 1.0)
        return out


def loss_at_point(params: dict[str, float], log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    return params["E"] + params["A"] * np.exp(-params["alpha"] * log_n) + params["B"] * np.exp(-params["beta"] * log_d)


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value > 0
