"""The fitting objective for sums of power laws, evaluated for many parameter vectors at once.

Model (Hoffmann et al. 2022): log L̂ = logsumexp(c_j - alpha_j * z_j for each input j, e), where
z_j = log(x_j) - mean(log(x_j)) (centred for conditioning), A_j = exp(c_j + alpha_j * mean(log x_j)) and
E = exp(e). The objective is sum_i w_i * huber_delta(log L̂_i - log L_i); delta = inf gives least squares.
Parameter vectors are laid out as [alpha_1..alpha_m, c_1..c_m, e] (e only when the model has E).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Problem:
    """Data prepared for fitting: centred log inputs, log targets, and the Huber threshold."""

    z: np.ndarray  # (n, m) centred log inputs
    z_mean: np.ndarray  # (m,) the centring offsets
    t: np.ndarray  # (n,) log of the observed loss
    has_e: bool  # whether the irreducible term E is fitted (otherwise E = 0)
    delta: float  # Huber threshold on the log residual; inf for least squares

    @property
    def m(self) -> int:
        return self.z.shape[1]

    @property
    def n_params(self) -> int:
        return 2 * self.m + int(self.has_e)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Objective, gradient, Gauss-Newton Hessian and a positive damping scale for K parameter vectors."""

    value: np.ndarray  # (K,)
    grad: np.ndarray  # (K, P)
    hess: np.ndarray  # (K, P, P): Gauss-Newton with the Huber loss's own curvature (0 beyond delta)
    scale: np.ndarray  # (K, P): diagonal of the IRLS Gauss-Newton Hessian (weights psi(r)/r), always > 0


def make_problem(inputs: list[np.ndarray], loss: np.ndarray, has_e: bool, delta: float) -> Problem:
    logs = np.column_stack([np.log(x) for x in inputs])
    z_mean = logs.mean(axis=0)
    return Problem(logs - z_mean, z_mean, np.log(loss), has_e, float(delta))


def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Huber loss, its derivative, and the IRLS weight psi(r)/r, elementwise."""
    a = np.abs(r)
    inside = a <= delta
    rho = np.where(inside, 0.5 * r * r, delta * (a - 0.5 * delta))
    psi = np.clip(r, -delta, delta)
    omega = np.where(inside, 1.0, delta / np.maximum(a, 1e-300))
    return rho, psi, omega


def _logits(theta: np.ndarray, p: Problem) -> np.ndarray:
    """(K, n, terms): the log of each additive term of the model."""
    m = p.m
    alpha, c = theta[:, :m], theta[:, m : 2 * m]
    logits = c[:, None, :] - alpha[:, None, :] * p.z[None, :, :]
    if p.has_e:
        e = np.broadcast_to(theta[:, None, 2 * m : 2 * m + 1], logits.shape[:2] + (1,))
        logits = np.concatenate([logits, e], axis=2)
    return logits


def log_predict(theta: np.ndarray, p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """log L̂ (K, n) and each term's share of L̂ (K, n, terms)."""
    logits = _logits(theta, p)
    top = logits.max(axis=2, keepdims=True)
    expd = np.exp(logits - top)
    total = expd.sum(axis=2, keepdims=True)
    return (np.log(total) + top)[:, :, 0], expd / total


def objective(theta: np.ndarray, p: Problem, weights: np.ndarray) -> np.ndarray:
    """Objective only, (K,); `weights` is (n,) or (K, n)."""
    s, _ = log_predict(theta, p)
    rho, _, _ = huber(s - p.t, p.delta)
    return (rho * weights).sum(axis=1)


def evaluate(theta: np.ndarray, p: Problem, weights: np.ndarray) -> Evaluation:
    """Objective, analytic gradient and curvature; `weights` is (n,) or (K, n)."""
    s, share = log_predict(theta, p)
    r = s - p.t
    rho, psi, omega = huber(r, p.delta)
    jac = np.concatenate([-share[:, :, : p.m] * p.z[None], share], axis=2)  # (K, n, P)
    w = np.broadcast_to(weights, s.shape)
    grad = np.einsum("knp,kn->kp", jac, w * psi)
    inside = w * (np.abs(r) <= p.delta)
    hess = np.matmul(jac.transpose(0, 2, 1), jac * inside[:, :, None])
    scale = np.einsum("knp,kn->kp", jac * jac, w * omega)
    return Evaluation((rho * w).sum(axis=1), grad, hess, scale)
