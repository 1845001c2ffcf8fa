"""Which swept parameters move a metric: permutation importance of a random forest fitted to the runs.

    result = parameter_importance(sweep.runs, ["sweep.n_params", "sweep.lr", "optimizer"], "val_loss")
    result.table    # one row per parameter: importance (mean drop in R^2 when it is shuffled), its std, rank

A forest (scikit-learn's RandomForestRegressor) learns the metric from the parameters; shuffling one parameter's
column and measuring how much R^2 drops says how much the forest relies on it. Text parameters are coded as
categories. The forest's out-of-bag R^2 says how far to trust it: near 0 or below, the parameters (or noise) do not
explain the metric and the importances mean little. Past MAX_SAMPLES runs, trees and shuffles use samples of that
size. scikit-learn ships with MLflow; without it this raises ImportError naming the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from orchestrator.analysis._rows import REASON_COLUMN, require_columns, split_usable
from orchestrator.analysis.errors import AnalysisInputError, TooFewPointsError

__all__ = ["ParamImportance", "parameter_importance"]

# Fewer runs than this leave a forest nothing to learn from: the importances would be noise.
MIN_RUNS = 8
# Past this many runs each tree learns from a bootstrap sample of this size and each shuffle is scored on a sample of
# this size (without replacement): the ranking settles long before, and the cost stops growing with the sweep
# (10,000 runs: 2.3 s instead of 10.4 s here).
MAX_SAMPLES = 2000


@dataclass(frozen=True, eq=False)
class ParamImportance:
    """Permutation importances of the parameters for one metric."""

    metric: str
    # One row per parameter, most important first: parameter, importance (mean R^2 drop), importance_std, rank.
    table: pd.DataFrame
    # Out-of-bag R^2 of the forest (how well the parameters predict the metric on runs a tree did not see).
    oob_r2: float
    n_runs: int
    n_repeats: int
    seed: int
    # Runs each tree learned from and each shuffle was scored on (n_runs up to MAX_SAMPLES).
    n_sampled: int
    # Rows left out, with a "reason" column.
    excluded: pd.DataFrame
    warnings: tuple[str, ...] = ()


def parameter_importance(df: pd.DataFrame, columns: Sequence[str], metric: str, *, n_repeats: int = 10,
                         n_trees: int = 100, seed: int = 0) -> ParamImportance:
    """Permutation importance of `columns` for `metric` over the finished runs with a finite metric and values.

    Raises AnalysisInputError (a ValueError) with no column given, a missing column, or under MIN_RUNS usable runs;
    ImportError when scikit-learn is not installed.
    """
    if not columns:
        raise AnalysisInputError("no parameter varies across the runs: nothing to rank")
    require_columns(df, [*columns, metric])
    features, excluded = _features(df, list(columns), metric)
    if len(features) < MIN_RUNS:
        raise TooFewPointsError("parameter importance", MIN_RUNS, len(features), "a forest learns nothing from fewer")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    x, y = features[list(columns)].to_numpy(float), features[metric].to_numpy(float)
    sampled = MAX_SAMPLES if len(x) > MAX_SAMPLES else None
    forest = RandomForestRegressor(n_estimators=n_trees, oob_score=True, random_state=seed,
                                   max_samples=sampled).fit(x, y)
    result = permutation_importance(forest, x, y, n_repeats=n_repeats, random_state=seed, scoring="r2",
                                    max_samples=sampled or 1.0)
    table = pd.DataFrame({"parameter": list(columns), "importance": result.importances_mean,
                          "importance_std": result.importances_std})
    table = table.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    oob = float(forest.oob_score_)
    warnings = (f"the forest predicts {metric} poorly (out-of-bag R^2 = {oob:.2f}): the ranking means little",) \
        if oob < 0.5 else ()
    return ParamImportance(metric, table, oob, len(features), n_repeats, seed, sampled or len(features), excluded,
                            warnings)


def _features(df: pd.DataFrame, columns: list[str], metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The usable runs (finished, finite metric, every parameter given) with text parameters coded; and the others."""
    rows = split_usable(df, [metric], positive=False)
    usable = df.iloc[rows.positions]
    coded = pd.DataFrame({c: _coded(usable[c]) for c in columns}, index=usable.index)
    coded[metric] = rows.values[metric]
    missing = coded[columns].isna().any(axis=1)
    dropped = usable[missing].assign(**{REASON_COLUMN: "a parameter is missing"})
    return coded[~missing], pd.concat([rows.excluded, dropped])


def _coded(column: pd.Series) -> pd.Series:
    """Numbers as they are; text as category codes (sorted), missing as NaN."""
    if is_numeric_dtype(column):
        return column.astype(float)
    codes = column.astype("category").cat.codes.astype(float)
    return codes.where(codes >= 0)
