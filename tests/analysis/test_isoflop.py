"""fit_isoflop: Chinchilla's approach 2 recovers the compute-optimal exponent."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis import TooFewPointsError, fit_isoflop


def _exact_parabolas(a: float, seed: int = 0) -> pd.DataFrame:
    """Loss exactly parabolic in log N around N_opt = 0.1 * C**a, plus 0.1% noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.logspace(18, 22, 5):
        n_opt = 0.1 * c**a
        for n in n_opt * np.logspace(-0.8, 1.0, 8):
            loss = 2.0 + 10 * c**-0.05 + 0.05 * np.log(n / n_opt) ** 2
            rows.append({"n_params": n, "flops": c, "val_loss": loss * (1 + 0.001 * rng.standard_normal())})
    return pd.DataFrame(rows)


def test_isoflop_recovers_a_known_exponent_from_parabolic_curves():
    fit = fit_isoflop(_exact_parabolas(a=0.5), bootstrap=300)
    assert fit.a == pytest.approx(0.5, abs=0.005)
    assert fit.b == pytest.approx(0.5, abs=0.005)
    assert fit.k == pytest.approx(0.1, rel=0.2)
    assert fit.a_ci[0] < 0.5 < fit.a_ci[1]
    assert fit.n_opt(1e20) == pytest.approx(0.1 * 1e20**0.5, rel=0.05)


def test_isoflop_on_chinchilla_data_finds_beta_over_alpha_plus_beta(make_isoflop_runs, truth):
    fit = fit_isoflop(make_isoflop_runs(), n="n_params", flops="flops", loss="val_loss")
    expected = truth["beta"] / (truth["alpha"] + truth["beta"])
    assert fit.a == pytest.approx(expected, rel=0.02)
    assert len(fit.budgets) == 7 and fit.warnings == ()
    assert np.allclose(fit.d_opt(1e20) * fit.n_opt(1e20) * 6, 1e20)


def test_runs_are_grouped_into_budgets_despite_slightly_different_flops(make_isoflop_runs):
    df = make_isoflop_runs()
    jittered = df.assign(flops=df["flops"] * np.random.default_rng(1).uniform(0.99, 1.01, len(df)))
    assert len(fit_isoflop(jittered).budgets) == 7


def test_budgets_without_three_model_sizes_are_dropped_and_their_rows_listed(make_isoflop_runs):
    df = make_isoflop_runs()
    lonely = pd.DataFrame({"n_params": [1e8, 2e8], "tokens": [1.0, 1.0], "flops": [1e25, 1e25], "val_loss": [2.0, 1.9]})
    fit = fit_isoflop(pd.concat([df, lonely], ignore_index=True))
    assert len(fit.budgets) == 8
    dropped = fit.budgets[fit.budgets["dropped_reason"] != ""]
    assert dropped["flops"].tolist() == [1e25]
    assert fit.excluded.index.tolist() == [len(df), len(df) + 1]
    assert "2 distinct model sizes" in fit.excluded["reason"].iloc[0]
    assert fit.to_dict()["n_budgets"] == 7


def test_isoflop_with_a_single_budget_is_a_clear_error(make_isoflop_runs):
    df = make_isoflop_runs()
    one = df[df["flops"] == df["flops"].min()]
    with pytest.raises(TooFewPointsError, match="needs at least 2 .* got 1"):
        fit_isoflop(one)


def test_isoflop_to_dict_is_json(make_isoflop_runs):
    out = json.loads(json.dumps(fit_isoflop(make_isoflop_runs(), bootstrap=50).to_dict(), allow_nan=False))
    assert out["n_budgets"] == 7 and len(out["a_ci"]) == 2 and out["bootstrap"] == 50
