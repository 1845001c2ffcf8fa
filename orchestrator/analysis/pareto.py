"""Pareto fronts of runs: `pareto_front` returns the non-dominated rows of a DataFrame.

Objectives map a column to "min" or "max". Rows with NaN or infinite objectives, and runs whose `status`
is not FINISHED, are excluded; `front.attrs["excluded"]` lists them with a "reason" column, and
`front.attrs["objectives"]` repeats the objectives. The front keeps the original index and is sorted by
the first objective (ascending values, ties by the next objectives).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from orchestrator.analysis._rows import split_usable
from orchestrator.analysis._skyline import front_order

__all__ = ["SENSES", "costs_matrix", "pareto_front", "check_objectives"]

SENSES = ("min", "max")


def check_objectives(objectives: Mapping[str, str]) -> dict[str, str]:
    """Objectives as a plain dict, each sense "min" or "max"; ValueError naming the offending objective."""
    if not objectives:
        raise ValueError("objectives must name at least one column, e.g. {'val_loss': 'min'}")
    out = {}
    for column, sense in objectives.items():
        if sense not in SENSES:
            raise ValueError(f"objective {column!r} must be 'min' or 'max', got {sense!r}")
        out[str(column)] = sense
    return out


def costs_matrix(values: Mapping[str, np.ndarray], objectives: Mapping[str, str]) -> np.ndarray:
    """(n, k) matrix in which every objective is minimised (max objectives negated)."""
    return np.column_stack([values[c] if s == "min" else -values[c] for c, s in objectives.items()])


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """The non-dominated rows of `df` under `objectives` ({column: "min" | "max"}), exactly."""
    objectives = check_objectives(objectives)
    rows = split_usable(df, list(objectives), positive=False)
    costs = costs_matrix(rows.values, objectives)
    kept = front_order(costs)  # ascending cost: already the order asked for when every objective is "min"
    if any(sense == "max" for sense in objectives.values()):
        kept = kept[_sort_order([rows.values[c][kept] for c in objectives])]
    front = df.iloc[rows.positions[kept]].copy()
    front.attrs = {"objectives": objectives, "excluded": rows.excluded}
    return front


def _sort_order(columns: list[np.ndarray]) -> np.ndarray:
    """Order by the first column ascending, ties broken by the next columns."""
    order = np.argsort(columns[0], kind="stable")
    first = columns[0][order]
    if len(first) > 1 and np.any(first[1:] == first[:-1]):
        order = np.lexsort(columns[::-1])
    return order
