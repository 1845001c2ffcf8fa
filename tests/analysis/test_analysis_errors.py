"""Bad input gives an error that names the problem: missing columns, nothing usable, too few points."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis import (
    MissingColumnError,
    NoUsableRowsError,
    TooFewPointsError,
    fit_isoflop,
    fit_scaling_law,
    pareto_front,
)


def test_missing_column_names_the_column_and_the_columns_that_exist():
    df = pd.DataFrame({"n_params": [1.0], "tokens": [1.0], "loss": [1.0]})
    with pytest.raises(MissingColumnError, match=r"column 'val_loss' not found; .*\['n_params', 'tokens', 'loss'\]"):
        fit_scaling_law(df)
    with pytest.raises(ValueError, match="'cost_usd' not found"):
        pareto_front(df, {"cost_usd": "min"})
    with pytest.raises(MissingColumnError, match="'flops' not found"):
        fit_isoflop(df, loss="loss")


def test_all_nan_column_is_a_clear_error_counting_the_reasons():
    df = pd.DataFrame({"n_params": [1e8, 1e9, 1e10], "tokens": [1e9] * 3, "val_loss": [np.nan] * 3})
    reasons = r"all 3 rows were excluded \(val_loss is NaN or not a number: 3 rows\)"
    with pytest.raises(NoUsableRowsError, match=reasons):
        fit_scaling_law(df)
    with pytest.raises(NoUsableRowsError):
        pareto_front(df, {"val_loss": "min", "tokens": "min"})


def test_too_few_points_says_how_many_are_needed_and_how_many_were_usable():
    loss = [3.0, 2.9, np.nan, 2.7, 2.6]
    df = pd.DataFrame({"n_params": [1e8, 2e8, 4e8, 8e8, 1e9], "tokens": [1e9] * 5, "val_loss": loss})
    with pytest.raises(TooFewPointsError, match=r"5 parameters\) needs at least 6 usable rows, got 4 \(1 of 5 rows"):
        fit_scaling_law(df)
    with pytest.raises(ValueError, match=r"the power form \(3 parameters\) needs at least 4 usable rows, got 2"):
        fit_scaling_law(df.iloc[:2], "power", x="n_params", y="val_loss")


def test_invalid_options_are_rejected_before_fitting():
    df = pd.DataFrame({"flops": [1.0, 2.0], "val_loss": [1.0, 2.0]})
    with pytest.raises(ValueError, match="unknown scaling-law form 'kaplan'"):
        fit_scaling_law(df, "kaplan")
    with pytest.raises(ValueError, match="objective must be one of"):
        fit_scaling_law(df, "power", objective="l1")
    with pytest.raises(ValueError, match="bootstrap must be a non-negative integer"):
        fit_scaling_law(df, "power", bootstrap=-1)
