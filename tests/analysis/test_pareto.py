"""pareto_front: exact, any number of objectives, min and max mixed, ties kept, NaN reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.analysis import pareto_front


def _brute_force_front(values: np.ndarray, senses: list[str]) -> set[int]:
    """O(n^2) definition: i is dominated by j if j is no worse everywhere and better somewhere."""
    costs = np.where(np.array(senses) == "min", values, -values)
    keep = set()
    for i in range(len(costs)):
        dominated = any(np.all(costs[j] <= costs[i]) and np.any(costs[j] < costs[i]) for j in range(len(costs)))
        if not dominated:
            keep.add(i)
    return keep


@st.composite
def runs_with_ties(draw, k: int):
    n = draw(st.integers(1, 60))
    levels = draw(st.integers(1, 6))  # few distinct values: many ties and duplicate rows
    values = draw(st.lists(st.lists(st.integers(0, levels), min_size=k, max_size=k), min_size=n, max_size=n))
    senses = draw(st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k))
    index = draw(st.permutations(list(range(100, 100 + n))))
    return np.array(values, dtype=float), senses, index


def _check_against_brute_force(values, senses, index):
    columns = [f"o{j}" for j in range(values.shape[1])]
    df = pd.DataFrame(values, columns=columns, index=index)
    front = pareto_front(df, dict(zip(columns, senses)))
    expected = {index[i] for i in _brute_force_front(values, senses)}
    assert set(front.index) == expected
    assert len(front) == len(expected)  # identical non-dominated rows are all kept
    assert front[columns[0]].is_monotonic_increasing


@settings(max_examples=150, deadline=None)
@given(runs_with_ties(2))
def test_two_objective_front_equals_brute_force(case):
    _check_against_brute_force(*case)


@settings(max_examples=150, deadline=None)
@given(runs_with_ties(3))
def test_three_objective_front_equals_brute_force(case):
    _check_against_brute_force(*case)


@settings(max_examples=100, deadline=None)
@given(runs_with_ties(5))
def test_five_objective_front_equals_brute_force(case):
    _check_against_brute_force(*case)


def test_front_equals_brute_force_on_continuous_random_data():
    rng = np.random.default_rng(0)
    for k, senses in ((2, ["min", "max"]), (3, ["max", "min", "max"]), (4, ["min"] * 4)):
        values = rng.standard_normal((400, k))
        _check_against_brute_force(values, senses, list(range(400)))


def test_every_point_of_a_three_objective_sphere_is_on_the_front():
    rng = np.random.default_rng(0)
    v = np.abs(rng.standard_normal((30_000, 3)))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    df = pd.DataFrame(v, columns=["a", "b", "c"])
    front = pareto_front(df, {"a": "min", "b": "min", "c": "min"})
    assert len(front) == 30_000
    shifted = pd.concat([df, df + 0.01], ignore_index=True)  # every shifted copy is dominated by its original
    assert sorted(pareto_front(shifted, {"a": "min", "b": "min", "c": "min"}).index) == list(range(30_000))


def test_front_keeps_original_index_sorted_by_first_objective_and_all_columns():
    df = pd.DataFrame(
        {"cost_usd": [3.0, 1.0, 2.0, 5.0, 1.0], "val_loss": [1.0, 3.0, 2.0, 0.5, 4.0], "run": list("abcde")},
        index=[10, 11, 12, 13, 14],
    )
    front = pareto_front(df, {"cost_usd": "min", "val_loss": "min"})
    assert front.index.tolist() == [11, 12, 10, 13]
    assert front["run"].tolist() == ["b", "c", "a", "d"]


def test_nan_and_unfinished_rows_are_excluded_and_reported():
    df = pd.DataFrame(
        {
            "wall_s": [1.0, np.nan, 0.5, 2.0, np.inf],
            "val_loss": [2.0, 0.1, np.nan, 1.0, 0.5],
            "status": ["FINISHED", "FINISHED", "FINISHED", "FAILED", "FINISHED"],
        }
    )
    front = pareto_front(df, {"wall_s": "min", "val_loss": "min"})
    assert front.index.tolist() == [0]
    assert front.attrs["excluded"]["reason"].to_dict() == {
        1: "wall_s is NaN or not a number",
        2: "val_loss is NaN or not a number",
        3: "run did not finish (status is not FINISHED)",
        4: "wall_s is infinite",
    }
    assert front.attrs["objectives"] == {"wall_s": "min", "val_loss": "min"}


def test_unknown_sense_names_the_objective():
    df = pd.DataFrame({"a": [1.0], "b": [2.0]})
    with pytest.raises(ValueError, match="objective 'b' must be 'min' or 'max', got 'minimize'"):
        pareto_front(df, {"a": "min", "b": "minimize"})
