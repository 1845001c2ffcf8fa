"""Synthetic sweeps with known laws, shared by the analysis tests as fixtures (no imports between test files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis import fit_scaling_law

# Hoffmann et al. (2022)'s fitted values, used as the truth of the synthetic data.
TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def chinchilla_loss(n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def chinchilla_grid(seed: int, noise: float = 0.01, sizes: int = 16) -> pd.DataFrame:
    """sizes x sizes runs over N in [1e6, 1e11] and D in [1e7, 1e12], loss with multiplicative noise."""
    rng = np.random.default_rng(seed)
    n, d = (a.ravel() for a in np.meshgrid(np.logspace(6, 11, sizes), np.logspace(7, 12, sizes)))
    loss = chinchilla_loss(n, d) * np.exp(noise * rng.standard_normal(n.size))
    return pd.DataFrame({"n_params": n, "tokens": d, "val_loss": loss, "flops": 6 * n * d, "status": "FINISHED"})


@pytest.fixture(scope="session")
def truth() -> dict[str, float]:
    return dict(TRUTH)


@pytest.fixture(scope="session")
def make_chinchilla_runs():
    return chinchilla_grid


@pytest.fixture(scope="session")
def make_isoflop_runs():
    return isoflop_runs


@pytest.fixture(scope="session")
def chinchilla_runs() -> pd.DataFrame:
    return chinchilla_grid(seed=7)


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs):
    return fit_scaling_law(chinchilla_runs, "chinchilla", bootstrap=200, seed=0)


def isoflop_runs(seed: int = 0, noise: float = 0.003, budgets: int = 7, sizes: int = 9) -> pd.DataFrame:
    """IsoFLOP sweep generated from the chinchilla law: N around the optimum of each budget, D = C / 6N."""
    rng = np.random.default_rng(seed)
    a, b = TRUTH["alpha"], TRUTH["beta"]
    g = (a * TRUTH["A"] / (b * TRUTH["B"])) ** (1 / (a + b))
    rows = []
    for c in np.logspace(18, 22, budgets):
        for n in g * (c / 6) ** (b / (a + b)) * np.logspace(-1, 1, sizes):
            loss = chinchilla_loss(n, c / (6 * n)) * np.exp(noise * rng.standard_normal())
            rows.append({"n_params": n, "tokens": c / (6 * n), "flops": c, "val_loss": loss})
    return pd.DataFrame(rows)
