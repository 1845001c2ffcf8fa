"""Global search by variable projection: a dense grid over the exponents, linear coefficients solved exactly.

For fixed exponents the model L̂ = E + sum_j C_j * exp(-alpha_j * z_j) is linear in (E, C_j). Measuring the
residual relatively, L̂/L - 1 (equal to the log residual to first order), the remaining problem is a convex
Huber regression with non-negative coefficients: solved by IRLS, each step an exact non-negative least
squares (every active set of the few coefficients is tried). The exact objective at the resulting points
ranks the grid; its local minima are the starts polished afterwards.
"""

from __future__ import annotations

import itertools

import numpy as np

from orchestrator.analysis._objective import Problem, objective

_IRLS_STEPS = 30
# Grid points profiled at once are capped so that (points x rows) stays near this many floats per array.
CHUNK_CELLS = 2_000_000
# Smallest coefficient, relative to the smallest observed loss, before its log is clipped (exp(-27.6) ~ 1e-12).
LOG_COEF_FLOOR = 27.6


def bounds(p: Problem, exponent_bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the parameter vector [alpha_1..m, c_1..m, e]."""
    lo_c, hi_c = p.t.min() - LOG_COEF_FLOOR, p.t.max() + LOG_COEF_FLOOR
    lower = [exponent_bounds[0]] * p.m + [lo_c] * (p.n_params - p.m)
    upper = [exponent_bounds[1]] * p.m + [hi_c] * (p.n_params - p.m)
    return np.array(lower), np.array(upper)


def exponent_grid(m: int, exponent_bounds: tuple[float, float], size: int) -> np.ndarray:
    """Cell centres of a `size`**m grid over the exponent box, (size**m, m); zero itself is never a centre."""
    lo, hi = exponent_bounds
    axis = lo + (hi - lo) * (np.arange(size) + 0.5) / size
    return np.array(list(itertools.product(axis, repeat=m)))


def grid_starts(p: Problem, exponent_bounds: tuple[float, float], size: int, n_starts: int) -> np.ndarray:
    """The best `n_starts` local minima of the profiled objective over the exponent grid, (k, P)."""
    alphas = exponent_grid(p.m, exponent_bounds, size)
    step = max(1, CHUNK_CELLS // len(p.t))
    theta = np.concatenate([profile(p, alphas[i : i + step]) for i in range(0, len(alphas), step)])
    value = np.concatenate([objective(theta[i : i + step], p, np.ones_like(p.t)) for i in range(0, len(theta), step)])
    minima = np.flatnonzero(_local_minima(value.reshape((size,) * p.m)).ravel())
    best = minima[np.argsort(value[minima], kind="stable")[:n_starts]]
    return theta[best]


def profile(p: Problem, alphas: np.ndarray) -> np.ndarray:
    """Full parameter vectors with the linear coefficients solved for each exponent vector in `alphas`."""
    inv_loss = np.exp(-p.t)
    columns = [np.exp(-np.outer(alphas[:, j], p.z[:, j])) * inv_loss for j in range(p.m)]  # each (G, n)
    if p.has_e:
        columns.append(np.broadcast_to(inv_loss, columns[0].shape))
    coef = _huber_nnls(columns, p.delta)
    floor = np.exp(p.t.min() - LOG_COEF_FLOOR)
    return np.concatenate([alphas, np.log(np.maximum(coef, floor))], axis=1)


def _huber_nnls(columns: list[np.ndarray], delta: float) -> np.ndarray:
    """argmin_{b >= 0} sum_i huber(sum_a b_a x_a,i - 1) for G problems at once (x_a are (G, n)), by IRLS."""
    q = len(columns)
    pairs = {(a, b): columns[a] * columns[b] for a in range(q) for b in range(a, q)}
    weight = np.ones(columns[0].shape)
    for step in range(1 if np.isinf(delta) else _IRLS_STEPS):
        if step:
            residual = sum(coef[:, a, None] * columns[a] for a in range(q)) - 1.0
            weight = delta / np.maximum(np.abs(residual), delta)
        gram = np.empty((weight.shape[0], q, q))
        for (a, b), prod in pairs.items():
            gram[:, a, b] = gram[:, b, a] = np.einsum("gn,gn->g", prod, weight)
        rhs = np.stack([np.einsum("gn,gn->g", col, weight) for col in columns], axis=1)
        coef = _nnls_normal(gram, rhs)
    return coef


def _nnls_normal(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares from normal equations, by trying every active set (q is tiny)."""
    g, q = rhs.shape
    best, best_score = np.zeros((g, q)), np.zeros(g)
    ridge = 1e-12 * np.trace(gram, axis1=1, axis2=2)[:, None, None]
    for size in range(1, q + 1):
        for subset in itertools.combinations(range(q), size):
            s = list(subset)
            sol = np.linalg.solve(gram[:, s][:, :, s] + ridge * np.eye(size), rhs[:, s, None])[:, :, 0]
            score = -(sol * rhs[:, s]).sum(axis=1)  # change of the weighted sum of squares from b = 0
            ok = (sol >= 0).all(axis=1) & (score < best_score)
            best[ok] = 0.0
            best[np.ix_(ok, s)] = sol[ok]
            best_score[ok] = score[ok]
    return best


def _local_minima(values: np.ndarray) -> np.ndarray:
    """Grid cells no larger than any neighbour (including diagonals)."""
    padded = np.pad(values, 1, constant_values=np.inf)
    is_min = np.ones(values.shape, dtype=bool)
    for offset in itertools.product((-1, 0, 1), repeat=values.ndim):
        if any(offset):
            window = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, values.shape))
            is_min &= values <= padded[window]
    return is_min
