"""hypervolume: exact in 2 and 3 objectives, measured against a reference point."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.analysis import hypervolume, pareto_front


def test_two_objective_hypervolume_of_a_staircase():
    df = pd.DataFrame({"cost_usd": [1.0, 2.0, 3.0], "val_loss": [3.0, 2.0, 1.0]})
    objectives = {"cost_usd": "min", "val_loss": "min"}
    # Strips: [1,2]x[3,4] + [2,3]x[2,4] + [3,4]x[1,4] = 1 + 2 + 3.
    assert hypervolume(df, objectives, {"cost_usd": 4.0, "val_loss": 4.0}) == pytest.approx(6.0)


def test_max_objectives_are_measured_downward_from_the_reference():
    df = pd.DataFrame({"throughput": [3.0], "val_loss": [1.0]})
    value = hypervolume(df, {"throughput": "max", "val_loss": "min"}, {"throughput": 1.0, "val_loss": 2.0})
    assert value == pytest.approx(2.0)


def test_points_beyond_the_reference_add_nothing():
    df = pd.DataFrame({"a": [1.0, 5.0], "b": [1.0, 0.0]})
    assert hypervolume(df, {"a": "min", "b": "min"}, {"a": 2.0, "b": 2.0}) == pytest.approx(1.0)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 3).flatmap(
        lambda k: st.lists(st.lists(st.integers(0, 5), min_size=k, max_size=k), min_size=1, max_size=15)
    )
)
def test_hypervolume_equals_counting_dominated_unit_cells(points):
    values = np.array(points, dtype=float)
    k = values.shape[1]
    cells = np.array(list(itertools.product(range(6), repeat=k)), dtype=float)
    expected = np.any(np.all(values[None, :, :] <= cells[:, None, :], axis=2), axis=1).sum()
    columns = [f"o{j}" for j in range(k)]
    objectives = dict.fromkeys(columns, "min")
    df = pd.DataFrame(values, columns=columns)
    assert hypervolume(df, objectives, dict.fromkeys(columns, 6.0)) == pytest.approx(expected)
    assert hypervolume(pareto_front(df, objectives), objectives, dict.fromkeys(columns, 6.0)) == pytest.approx(expected)


def test_more_than_three_objectives_is_a_clear_error():
    df = pd.DataFrame(np.ones((2, 4)), columns=list("abcd"))
    objectives = dict.fromkeys("abcd", "min")
    with pytest.raises(ValueError, match="1 to 3 objectives, got 4"):
        hypervolume(df, objectives, dict.fromkeys("abcd", 2.0))


def test_reference_must_cover_the_objectives():
    df = pd.DataFrame({"a": [1.0], "b": [1.0]})
    with pytest.raises(ValueError, match="exactly the objectives"):
        hypervolume(df, {"a": "min", "b": "min"}, {"a": 2.0})
