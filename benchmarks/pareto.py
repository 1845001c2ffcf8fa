"""Benchmark: Pareto fronts of 1,000,000 random runs in 2 objectives and 30,000 runs all on the front in 3.

Side by side, the same inputs through `paretoset` (the `bench` extra; skipped with a message if missing),
after a warm-up call so its numba compilation is not timed. Times are medians of the repeats and include
the DataFrame work (`pareto_front` returns rows of the DataFrame).
Run: .venv/bin/python benchmarks/pareto.py
Last line: pareto: 2d_1e6_s=<s> 3d_front_3e4_s=<s> paretoset_3d_front_3e4_s=<s>
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd

from orchestrator.analysis import pareto_front

REPEATS = 5


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def inputs() -> dict[str, tuple[pd.DataFrame, dict[str, str]]]:
    rng = np.random.default_rng(0)
    sphere = np.abs(rng.standard_normal((30_000, 3)))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    x = rng.random(1_000_000)
    two = {"cost_usd": "min", "val_loss": "min"}
    three = dict.fromkeys(["wall_s", "energy_j", "val_loss"], "min")
    return {
        "2d_1e6": (pd.DataFrame(rng.random((1_000_000, 2)), columns=list(two)), two),
        "2d_front_1e6": (pd.DataFrame({"cost_usd": x, "val_loss": 1.0 - x}), two),  # extra: every point on the front
        "3d_front_3e4": (pd.DataFrame(sphere, columns=list(three)), three),
    }


def paretoset_timer():
    try:
        from paretoset import paretoset
    except ImportError:
        print("paretoset is not installed (pip install paretoset, or the 'bench' extra): its column is skipped")
        return None
    paretoset(pd.DataFrame(np.random.default_rng(1).random((100, 3))), sense=["min"] * 3)  # numba warm-up

    def run(df: pd.DataFrame, objectives: dict[str, str]) -> tuple[float, np.ndarray]:
        return timed(lambda: paretoset(df[list(objectives)], sense=list(objectives.values())), repeats=3)

    return run


def main() -> None:
    cases = inputs()
    other = paretoset_timer()
    ours: dict[str, float] = {}
    theirs: dict[str, float] = {}
    for name, (df, objectives) in cases.items():
        ours[name], front = timed(lambda: pareto_front(df, objectives))
        line = f"{name}: orchestrator {ours[name]:.4f} s, front size {len(front)}"
        if other is not None and name != "2d_front_1e6":
            theirs[name], mask = other(df, objectives)
            same = set(np.flatnonzero(mask)) == set(front.index)
            ratio = theirs[name] / ours[name]
            line += f" | paretoset {theirs[name]:.4f} s, same front: {same}, ratio paretoset/orchestrator {ratio:.1f}x"
        print(line)
    print("goals: 2d_1e6 <= 0.3 s, 3d_front_3e4 <= 0.1 s")
    other_3d = theirs.get("3d_front_3e4", float("nan"))
    print(
        f"pareto: 2d_1e6_s={ours['2d_1e6']:.4f} 3d_front_3e4_s={ours['3d_front_3e4']:.4f} "
        f"paretoset_3d_front_3e4_s={other_3d:.4f}"
    )


if __name__ == "__main__":
    main()
