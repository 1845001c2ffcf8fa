"""A small Gaussian process for the frontier goal: Matérn 5/2 kernel with one length scale per coordinate (ARD),
a linear mean fitted by least squares, hyperparameters by maximum marginal likelihood (L-BFGS-B, analytic gradient).

Inputs are unit-cube coordinates. `with_points` conditions on fantasies at the posterior mean (kriging believer):
the mean is unchanged and the variance shrinks near them, which is how a batch of proposals spreads out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SQRT5 = math.sqrt(5.0)
# Bounds of the log hyperparameters (length scales in cube units; variances of the standardised residual).
LOG_LENGTH = (math.log(0.03), math.log(10.0))
LOG_SIGNAL = (math.log(1e-2), math.log(1e2))
LOG_NOISE = (math.log(1e-6), math.log(1.0))
# Weak prior on log length scales, N(log 0.5, 1), so that few points do not give degenerate scales.
PRIOR_LOG_LENGTH, PRIOR_SD = math.log(0.5), 1.0
JITTER = 1e-8


@dataclass(frozen=True, eq=False)
class Hyper:
    """Kernel hyperparameters on the log scale."""

    # Log length scale per input coordinate, (d,).
    log_length: np.ndarray
    # Log variance of the kernel, in units of the standardised residual.
    log_signal: float
    # Log variance of the observation noise, same units.
    log_noise: float

    def vector(self) -> np.ndarray:
        return np.r_[self.log_length, self.log_signal, self.log_noise]

    @staticmethod
    def default(d: int) -> Hyper:
        return Hyper(np.full(d, math.log(0.3)), 0.0, math.log(1e-2))


def _kernel(a: np.ndarray, b: np.ndarray, hyper: Hyper) -> tuple[np.ndarray, np.ndarray]:
    """Matérn 5/2 Gram matrix and the scaled squared differences per coordinate, (n, m) and (d, n, m)."""
    scaled = (a[:, None, :] - b[None, :, :]) / np.exp(hyper.log_length)
    sq = np.moveaxis(scaled**2, 2, 0)
    r = np.sqrt(sq.sum(axis=0))
    gram = math.exp(hyper.log_signal) * (1.0 + SQRT5 * r + 5.0 / 3.0 * r**2) * np.exp(-SQRT5 * r)
    return gram, sq


def _nll(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood (plus the length-scale prior) and its gradient in the log hyperparameters."""
    from scipy.linalg import lapack

    d = x.shape[1]
    hyper = Hyper(theta[:d], theta[d], theta[d + 1])
    gram, sq = _kernel(x, x, hyper)
    noise = math.exp(hyper.log_noise)
    k = gram + (noise + JITTER) * np.eye(len(x))
    chol, info = lapack.dpotrf(k, lower=1)
    if info != 0:
        return 1e10, np.zeros_like(theta)
    alpha, _ = lapack.dpotrs(chol, y, lower=1)
    inv, _ = lapack.dpotri(chol, lower=1)
    inv = np.tril(inv) + np.tril(inv, -1).T
    w = inv - np.outer(alpha, alpha)
    r = np.sqrt(sq.sum(axis=0))
    radial = math.exp(hyper.log_signal) * 5.0 / 3.0 * (1.0 + SQRT5 * r) * np.exp(-SQRT5 * r)
    grads = [0.5 * np.sum(w * radial * sq[j]) for j in range(d)]
    grads += [0.5 * np.sum(w * gram), 0.5 * noise * np.trace(w)]
    prior = (theta[:d] - PRIOR_LOG_LENGTH) / PRIOR_SD**2
    penalty = 0.5 * np.sum((theta[:d] - PRIOR_LOG_LENGTH) ** 2) / PRIOR_SD**2
    value = 0.5 * y @ alpha + np.log(np.diag(chol)).sum() + penalty
    return float(value), np.array(grads) + np.r_[prior, 0.0, 0.0]


class GaussianProcess:
    """Posterior of a GP with a linear mean, given coordinates x (n, d) and targets y (n,)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, hyper: Hyper,
                 mean: tuple[np.ndarray, float] | None = None) -> None:
        self.x, self.y, self.hyper = np.asarray(x, float), np.asarray(y, float), hyper
        self.coef, self.scale = mean if mean is not None else _linear_mean(self.x, self.y)
        z = (self.y - self._trend(self.x)) / self.scale
        gram, _ = _kernel(self.x, self.x, hyper)
        self._chol = np.linalg.cholesky(gram + (math.exp(hyper.log_noise) + JITTER) * np.eye(len(self.x)))
        self._alpha = np.linalg.solve(self._chol.T, np.linalg.solve(self._chol, z))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, start: Hyper | None = None) -> GaussianProcess:
        """Hyperparameters by maximum marginal likelihood, from `start` (the last fit's) and from a default."""
        from scipy.optimize import minimize

        coef, scale = _linear_mean(x, y)
        z = (y - _design(x) @ coef) / scale
        d = x.shape[1]
        bounds = [LOG_LENGTH] * d + [LOG_SIGNAL, LOG_NOISE]
        best = None
        for hyper in ([start] if start is not None else []) + [Hyper.default(d)]:
            res = minimize(_nll, hyper.vector(), args=(x, z), jac=True, method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": 60})
            if best is None or res.fun < best.fun:
                best = res
        theta = best.x
        return cls(x, y, Hyper(theta[:d], float(theta[d]), float(theta[d + 1])), (coef, scale))

    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at xq, (m,) each."""
        xq = np.atleast_2d(xq)
        cross, _ = _kernel(xq, self.x, self.hyper)
        v = np.linalg.solve(self._chol, cross.T)
        mean = self._trend(xq) + self.scale * (cross @ self._alpha)
        var = math.exp(self.hyper.log_signal) - np.sum(v * v, axis=0)
        return mean, self.scale * np.sqrt(np.maximum(var, 1e-12))

    def with_points(self, xf: np.ndarray) -> GaussianProcess:
        """The same GP also conditioned on fantasies at xf equal to its posterior mean there."""
        if len(xf) == 0:
            return self
        mean, _ = self.predict(xf)
        return GaussianProcess(np.vstack([self.x, xf]), np.r_[self.y, mean], self.hyper, (self.coef, self.scale))

    def _trend(self, x: np.ndarray) -> np.ndarray:
        return _design(x) @ self.coef


def _design(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x])


def _linear_mean(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Ridge-regularised least-squares linear trend, and the spread of what it leaves (at least 1e-6 of |y|)."""
    a = _design(x)
    ridge = 1e-3 * np.eye(a.shape[1])
    ridge[0, 0] = 1e-9
    coef = np.linalg.solve(a.T @ a + ridge * len(x), a.T @ y)
    resid = y - a @ coef
    spread = float(np.std(resid)) if len(y) > 1 else 0.0
    return coef, max(spread, 1e-6 * max(float(np.abs(y).max()), 1.0))
