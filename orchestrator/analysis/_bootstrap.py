"""Row-resampling bootstrap helpers: resample counts, percentile intervals, and checks on the result."""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


def resample_counts(n_rows: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each row is drawn in each resample, (n_resamples, n_rows); each row sums to n_rows."""
    draws = rng.integers(0, n_rows, size=(n_resamples, n_rows))
    flat = (draws + np.arange(n_resamples)[:, None] * n_rows).ravel()
    return np.bincount(flat, minlength=n_resamples * n_rows).reshape(n_resamples, n_rows).astype(float)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of (B, P) samples."""
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    return lo, hi


def interval_warnings(names: tuple[str, ...], estimate: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """Say where an interval is degenerate (zero width) or does not contain its own point estimate."""
    warnings = []
    for name, est, a, b in zip(names, estimate, lo, hi):
        if not (np.isfinite(a) and np.isfinite(b)) or b - a <= 1e-9 * max(abs(est), 1e-300):
            warnings.append(f"bootstrap interval for {name} is degenerate ([{a:.6g}, {b:.6g}])")
        elif not a <= est <= b:
            interval = f"[{a:.6g}, {b:.6g}]"
            warnings.append(f"point estimate of {name} ({est:.6g}) lies outside its bootstrap interval {interval}")
    return warnings
