"""Benchmark: chinchilla-form fit on 240 runs, with the full global search and with 1,000 bootstrap resamples.

Side by side, the naive method it replaces: scipy L-BFGS-B started from each point of Hoffmann et al.'s
4,500-point grid. That takes minutes, so it is timed on a random 1% of the grid and extrapolated (said so
in the output). Run: .venv/bin/python benchmarks/fit.py
Last line: fit: global_s=<s> bootstrap1000_s=<s>   (medians of the repeats)
"""

from __future__ import annotations

import itertools
import statistics
import time

import numpy as np
import pandas as pd

from orchestrator.analysis import fit_scaling_law
from orchestrator.analysis._objective import evaluate, make_problem
from orchestrator.analysis._search import bounds

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
NAIVE_SAMPLE = 45  # starts of the 4,500-point grid actually timed for the naive method


def runs(n_runs: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = 10 ** rng.uniform(7, 10.5, n_runs), 10 ** rng.uniform(8.5, 12, n_runs)
    loss = TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]
    return pd.DataFrame({"n_params": n, "tokens": d, "val_loss": loss * np.exp(0.01 * rng.standard_normal(n_runs))})


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def naive_hoffmann_grid(df: pd.DataFrame, sample: int) -> tuple[float, float]:
    """Seconds per scipy start on the Hoffmann grid, and the best objective those starts reach."""
    from scipy.optimize import minimize

    p = make_problem([df["n_params"].to_numpy(), df["tokens"].to_numpy()], df["val_loss"].to_numpy(), True, 1e-3)
    lower, upper = bounds(p, (0.0, 2.5))
    exponents, coefficients, e = np.arange(0, 2.01, 0.5), range(0, 26, 5), np.arange(-1, 1.01, 0.5)
    grid = np.array(list(itertools.product(exponents, exponents, coefficients, coefficients, e)))  # 4,500 points
    alpha, beta, a, b, e = grid[np.random.default_rng(0).choice(len(grid), sample, replace=False)].T
    # Hoffmann's (alpha, beta, a, b, e) in the centred layout [alpha, beta, c_A, c_B, e], c = a - alpha * mean(log x).
    starts = np.column_stack([alpha, beta, a - alpha * p.z_mean[0], b - beta * p.z_mean[1], e])

    def objective(theta):
        ev = evaluate(theta[None], p, np.ones(len(df)))
        return ev.value[0], ev.grad[0]

    start = time.perf_counter()
    best = min(minimize(objective, s, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper))).fun for s in starts)
    return (time.perf_counter() - start) / sample, best


def main() -> None:
    df = runs()
    fit_scaling_law(df.iloc[:50], bootstrap=10)  # warm-up: imports and first-call overheads
    global_s, global_all, fit = timed(lambda: fit_scaling_law(df, bootstrap=0), repeats=3)
    boot_s, boot_all, boot = timed(lambda: fit_scaling_law(df, bootstrap=1000, seed=0), repeats=3)
    per_start_s, naive_best = naive_hoffmann_grid(df, NAIVE_SAMPLE)
    naive_s = per_start_s * 4500
    print(f"data: {len(df)} runs, 1% noise; truth alpha={TRUTH['alpha']} beta={TRUTH['beta']}")
    print(f"fit: alpha={fit.params['alpha']:.4f} beta={fit.params['beta']:.4f} objective={fit.objective_value:.6e}")
    print(f"bootstrap 1000: alpha 95% CI {boot.ci['alpha']}, beta 95% CI {boot.ci['beta']}")
    print(f"global search: median {global_s:.3f} s of {[round(t, 3) for t in global_all]} (goal <= 2 s)")
    repeats = [round(t, 3) for t in boot_all]
    print(f"global search + 1000 bootstrap refits: median {boot_s:.3f} s of {repeats} (goal <= 20 s)")
    print(
        f"naive scipy L-BFGS-B over the 4,500-point Hoffmann grid: {per_start_s * 1e3:.1f} ms per start, timed on "
        f"{NAIVE_SAMPLE} starts -> {naive_s:.0f} s extrapolated; ratio naive/global = {naive_s / global_s:.0f}x"
    )
    print(f"best objective of the {NAIVE_SAMPLE} naive starts: {naive_best:.6e} (ours: {fit.objective_value:.6e})")
    print(f"fit: global_s={global_s:.3f} bootstrap1000_s={boot_s:.3f}")


if __name__ == "__main__":
    main()
