"""fit_scaling_law: recovers known laws, reports honest intervals, and says what it did."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis import fit_scaling_law
from orchestrator.analysis._objective import evaluate, make_problem
from orchestrator.analysis._search import bounds


def test_chinchilla_fit_recovers_both_exponents_within_two_percent(chinchilla_fit, truth):
    assert chinchilla_fit.params["alpha"] == pytest.approx(truth["alpha"], rel=0.02)
    assert chinchilla_fit.params["beta"] == pytest.approx(truth["beta"], rel=0.02)
    assert chinchilla_fit.params["E"] == pytest.approx(truth["E"], rel=0.05)


def test_bootstrap_intervals_contain_every_true_parameter(chinchilla_fit, truth):
    for name, true_value in truth.items():
        lo, hi = chinchilla_fit.ci[name]
        assert lo < true_value < hi, name
        assert lo < chinchilla_fit.params[name] < hi, name


def test_bootstrap_intervals_and_stderr_are_of_plausible_width(chinchilla_fit, truth):
    # With 256 points and 1% noise the exponents are known to about half a percent; not 0, not 10%.
    lo, hi = chinchilla_fit.ci["alpha"]
    assert 0.002 < (hi - lo) / truth["alpha"] < 0.1
    assert (hi - lo) == pytest.approx(2 * 1.96 * chinchilla_fit.stderr["alpha"], rel=0.35)
    assert chinchilla_fit.warnings == ()


def test_same_seed_gives_same_intervals_and_another_seed_differs(chinchilla_runs):
    subset = chinchilla_runs.iloc[::4]
    first = fit_scaling_law(subset, bootstrap=40, seed=3)
    again = fit_scaling_law(subset, bootstrap=40, seed=3)
    other = fit_scaling_law(subset, bootstrap=40, seed=4)
    assert first.ci == again.ci
    assert first.ci["alpha"] != other.ci["alpha"]


def test_global_search_is_no_worse_than_scipy_from_thirty_random_starts(chinchilla_runs, chinchilla_fit):
    scipy_optimize = pytest.importorskip("scipy.optimize")
    df = chinchilla_runs
    p = make_problem([df["n_params"].to_numpy(), df["tokens"].to_numpy()], df["val_loss"].to_numpy(), True, 1e-3)
    lower, upper = bounds(p, (0.0, 2.5))
    rng = np.random.default_rng(0)
    starts = np.column_stack([rng.uniform(0, 2.5, (30, 2)), rng.uniform(-3, 3, (30, 3))])

    def objective(theta):
        ev = evaluate(theta[None], p, np.ones(len(df)))
        return ev.value[0], ev.grad[0]

    best = min(
        scipy_optimize.minimize(objective, s, jac=True, method="L-BFGS-B", bounds=list(zip(lower, upper))).fun
        for s in starts
    )
    assert chinchilla_fit.objective_value <= best * (1 + 1e-9)


def test_compute_optimal_follows_the_closed_form_and_minimises_loss_at_fixed_compute(chinchilla_fit):
    a, b = chinchilla_fit.params["alpha"], chinchilla_fit.params["beta"]
    flops = np.array([1e20, 1e23])
    n_opt, d_opt = chinchilla_fit.compute_optimal(flops=flops)
    assert np.log(n_opt[1] / n_opt[0]) / np.log(1e3) == pytest.approx(b / (a + b), rel=1e-9)
    assert np.allclose(6 * n_opt * d_opt, flops)
    n_grid = n_opt[0] * np.logspace(-1, 1, 2001)
    loss = chinchilla_fit.predict(n=n_grid, d=flops[0] / (6 * n_grid))
    assert n_grid[np.argmin(loss)] == pytest.approx(n_opt[0], rel=0.003)


def test_predict_broadcasts_inputs_and_matches_the_formula(chinchilla_fit, truth):
    n = np.array([1e8, 1e9, 1e10])[:, None]
    d = np.array([1e9, 1e10, 1e11, 1e12])[None, :]
    p = chinchilla_fit.params
    out = chinchilla_fit.predict(n=n, d=d)
    assert out.shape == (3, 4)
    assert np.allclose(out, p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"])
    true_loss = truth["E"] + truth["A"] / n ** truth["alpha"] + truth["B"] / d ** truth["beta"]
    assert np.allclose(out, true_loss, rtol=0.01)


def test_to_dict_is_json_and_says_which_objective_and_method(chinchilla_fit):
    out = json.loads(json.dumps(chinchilla_fit.to_dict(), allow_nan=False))
    assert out["form"] == "chinchilla"
    assert out["objective"] == "huber" and out["delta"] == 1e-3
    assert "variable projection" in out["method"]
    assert out["n_points"] == 256
    assert set(out["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert out["ci"]["alpha"] == list(chinchilla_fit.ci["alpha"])
    assert out["stderr"]["beta"] == chinchilla_fit.stderr["beta"]
    assert out["bootstrap"] == {"resamples": 200, "seed": 0}


def _power_runs(e: float, seed: int = 0) -> pd.DataFrame:
    flops = np.logspace(17, 22, 60)
    rng = np.random.default_rng(seed)
    loss = (e + 2000.0 * flops**-0.15) * np.exp(0.01 * rng.standard_normal(60))
    return pd.DataFrame({"flops": flops, "val_loss": loss})


def test_power_form_recovers_its_exponent_and_can_fix_e_at_zero():
    fit = fit_scaling_law(_power_runs(1.8), "power", x="flops", y="val_loss", bootstrap=100)
    assert fit.params["alpha"] == pytest.approx(0.15, rel=0.05)
    assert fit.ci["alpha"][0] < 0.15 < fit.ci["alpha"][1]
    no_floor = fit_scaling_law(_power_runs(0.0), "power", irreducible=False, bootstrap=100)
    assert no_floor.params["E"] == 0.0 and "E" not in no_floor.ci
    assert no_floor.params["alpha"] == pytest.approx(0.15, rel=0.01)


def test_squared_objective_is_used_and_reported():
    fit = fit_scaling_law(_power_runs(1.8), "power", objective="squared", bootstrap=0)
    assert fit.to_dict()["objective"] == "squared" and fit.to_dict()["delta"] is None
    assert fit.params["alpha"] == pytest.approx(0.15, rel=0.05)
    assert fit.ci == {} and fit.stderr == {}


def test_an_exponent_stuck_at_its_search_bound_is_warned():
    flops = np.logspace(17, 22, 40)
    df = pd.DataFrame({"flops": flops, "val_loss": 1.0 + 1e10 * flops**-0.6})
    fit = fit_scaling_law(df, "power", exponent_bounds=(0.0, 0.5), bootstrap=30)
    assert fit.params["alpha"] == pytest.approx(0.5)
    assert any("alpha = 0.5 sits at a search bound" in w for w in fit.warnings)
    assert any("bootstrap interval for alpha is degenerate" in w for w in fit.warnings)
    assert fit.to_dict()["warnings"] == list(fit.warnings)


def test_bad_rows_and_unfinished_runs_are_excluded_with_a_reason(chinchilla_runs, truth):
    df = chinchilla_runs.copy()
    df.loc[0, "val_loss"] = np.nan
    df.loc[1, "tokens"] = np.inf
    df.loc[2, "n_params"] = -5.0
    df.loc[3, "val_loss"] = 0.0
    df.loc[4, "status"] = "FAILED"
    df.loc[5, "val_loss"] = 1e6  # a diverged run that still reported FINISHED is kept: it is data
    fit = fit_scaling_law(df, bootstrap=0)
    reasons = fit.excluded["reason"].to_dict()
    assert reasons == {
        0: "val_loss is NaN or not a number",
        1: "tokens is infinite",
        2: "n_params is not positive",
        3: "val_loss is not positive",
        4: "run did not finish (status is not FINISHED)",
    }
    assert fit.n_points == len(df) - 5
    assert fit.params["alpha"] == pytest.approx(truth["alpha"], rel=0.03)  # Huber shrugs off the outlier


def test_bootstrap_intervals_cover_the_truth_in_repeated_experiments(make_chinchilla_runs, truth):
    # Honest 95% intervals cover the truth in most repeated experiments (expected 11.4 of 12).
    covered = 0
    for seed in range(12):
        fit = fit_scaling_law(make_chinchilla_runs(seed=100 + seed, sizes=12), bootstrap=100, seed=seed)
        covered += all(fit.ci[k][0] <= truth[k] <= fit.ci[k][1] for k in ("alpha", "beta"))
    assert covered >= 9
