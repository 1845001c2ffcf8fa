"""Batched, bounded Levenberg-Marquardt on the Huber objective: K starts (or K resamples) at once in numpy.

Each start keeps its own damping lam and steps by solving (H + lam * S) step = -grad. H is the Gauss-Newton
Hessian with the Huber loss's own curvature (1 within delta, 0 beyond): near the optimum the objective is
piecewise quadratic and these steps converge in a few iterations. S is the diagonal of the IRLS Hessian
(weights psi(r)/r), positive everywhere, so far from the optimum a large lam gives short, well-scaled
descent steps. A step is kept only if it lowers the objective. Bounds are handled by freezing coordinates
that sit at a bound with the gradient pointing outward.
"""

from __future__ import annotations

import numpy as np

from orchestrator.analysis._objective import Problem, evaluate

_LAMBDA_START = 1e-3
_LAMBDA_MAX = 1e12


def minimize(
    theta0: np.ndarray,
    p: Problem,
    weights: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iter: int = 300,
    ftol: float = 1e-13,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise from each row of `theta0` (K, P); returns the optima (K, P) and objective values (K,)."""
    theta = np.clip(np.array(theta0, dtype=float), lower, upper)
    w = weights if weights.ndim == 1 else np.array(weights, dtype=float)
    ev = evaluate(theta, p, w)
    value, grad, hess, scale = ev.value.copy(), ev.grad.copy(), ev.hess.copy(), ev.scale.copy()
    lam = np.full(len(theta), _LAMBDA_START)
    active = np.arange(len(theta))
    for _ in range(max_iter):
        if active.size == 0:
            break
        wa = w if w.ndim == 1 else w[active]
        trial = _step(theta[active], grad[active], hess[active], scale[active] * lam[active, None], lower, upper)
        tr = evaluate(trial, p, wa)
        better = tr.value < value[active]
        done = _converged(value[active], tr.value, better, lam[active], ftol)
        acc = active[better]
        theta[acc], value[acc], grad[acc] = trial[better], tr.value[better], tr.grad[better]
        hess[acc], scale[acc] = tr.hess[better], tr.scale[better]
        lam[active] = np.where(better, np.maximum(lam[active] / 3.0, 1e-15), lam[active] * 4.0)
        active = active[~done]
    return theta, value


def _step(
    theta: np.ndarray, grad: np.ndarray, hess: np.ndarray, damping: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """One damped Gauss-Newton step per row (`damping` (K, P) added to the diagonal); blocked coordinates frozen."""
    blocked = ((theta <= lower) & (grad > 0)) | ((theta >= upper) & (grad < 0))
    damping = np.maximum(damping, 1e-10 * damping.max(axis=1, keepdims=True) + 1e-300)  # never exactly singular
    a = hess + damping[:, :, None] * np.eye(hess.shape[1])
    free = ~blocked
    a = a * (free[:, :, None] & free[:, None, :]) + np.eye(hess.shape[1]) * blocked[:, :, None]
    g = np.where(blocked, 0.0, grad)
    step = -np.linalg.solve(a, g[:, :, None])[:, :, 0]
    return np.clip(theta + step, lower, upper)


def _converged(old: np.ndarray, new: np.ndarray, better: np.ndarray, lam: np.ndarray, ftol: float) -> np.ndarray:
    """A start is done when an accepted step barely helps, or when damping has grown without any gain."""
    tiny_gain = better & (old - new <= ftol * np.maximum(old, 1e-300))
    stuck = ~better & (lam * 4.0 >= _LAMBDA_MAX)
    return tiny_gain | stuck
