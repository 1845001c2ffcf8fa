"""Parameter importance ranks the parameters that move the metric first, at any sweep size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis.errors import TooFewPointsError
from orchestrator.analysis.importance import MAX_SAMPLES, parameter_importance


def runs(n: int, seed: int = 0) -> pd.DataFrame:
    """val_loss moves strongly with lr, less with width, not at all with a text parameter nor seed."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sweep.lr": rng.uniform(0, 1, n), "sweep.width": rng.uniform(0, 1, n),
                       "sweep.optimizer": rng.choice(["adam", "sgd"], n), "sweep.seed": rng.integers(0, 3, n)})
    df["val_loss"] = 2 * df["sweep.lr"] + df["sweep.width"] ** 2 + rng.normal(0, 0.05, n)
    return df.assign(status="FINISHED")


COLUMNS = ["sweep.seed", "sweep.optimizer", "sweep.width", "sweep.lr"]


@pytest.mark.parametrize("n", [200, 3 * MAX_SAMPLES])
def test_the_parameters_that_move_the_metric_rank_first_and_large_sweeps_are_sampled(n):
    result = parameter_importance(runs(n), COLUMNS, "val_loss")
    assert list(result.table["parameter"][:2]) == ["sweep.lr", "sweep.width"]
    noise = result.table.set_index("parameter").loc[["sweep.optimizer", "sweep.seed"], "importance"]
    assert (noise < 0.02).all() and result.table["importance"].iloc[0] > 0.5
    assert result.oob_r2 > 0.9 and result.n_runs == n
    assert result.n_sampled == min(n, MAX_SAMPLES)


def test_too_few_runs_is_an_error_naming_the_minimum():
    with pytest.raises(TooFewPointsError, match="8"):
        parameter_importance(runs(5), COLUMNS, "val_loss")
