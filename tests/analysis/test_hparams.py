"""fit_optimal_hparams: the optimal learning rate (or batch size) per (N, D) cell, fitted as a power law in N and D."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import orchestrator as orc
from orchestrator.analysis import AnalysisInputError, run_analysis, validate_analysis_spec
from orchestrator.errors import ConfigError

# Truth of the synthetic sweeps: lr* = 0.5 · N^-0.3 · D^0.1 and bs* = 2e-3 · D^0.5 (no N dependence).
LR = {"coefficient": 0.5, "n_params": -0.3, "tokens": 0.1}
BS = {"coefficient": 2e-3, "n_params": 0.0, "tokens": 0.5}
SIZES, DATA = np.logspace(6, 9, 4), np.logspace(9, 11, 3)


def lr_grid(seed: int = 0, lrs: np.ndarray = np.logspace(-3, 0, 13), jitter: float = 0.05, noise: float = 0.002,
            seeds: int = 2, batch_sizes: tuple[float, ...] = (256.0,)) -> pd.DataFrame:
    """A grid of runs whose loss is parabolic in log lr (and log batch size) around the true optima, each cell's
    optimum jittered off the law by `jitter` (log units) and each run's loss by `noise`."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in SIZES:
        for d in DATA:
            lr_opt = LR["coefficient"] * n ** LR["n_params"] * d ** LR["tokens"] * np.exp(jitter * rng.normal())
            bs_opt = BS["coefficient"] * d ** BS["tokens"] * np.exp(jitter * rng.normal())
            base = 2.0 + 50 * n ** -0.3 + 80 * d ** -0.3
            for lr in lrs:
                for bs in batch_sizes:
                    for s in range(seeds):
                        loss = base + 0.08 * np.log(lr / lr_opt) ** 2 + 0.03 * np.log(bs / bs_opt) ** 2
                        rows.append({"n_params": n, "tokens": d, "lr": lr, "batch_size": bs, "seed": s,
                                     "val_loss": loss + noise * rng.normal(), "status": "FINISHED"})
    return pd.DataFrame(rows)


def test_the_optimal_lr_law_is_recovered_with_the_truth_inside_its_intervals():
    fit = orc.fit_optimal_hparams(lr_grid(), hparam="lr", over=["n_params", "tokens"], loss="val_loss",
                                  bootstrap=200, seed=0)
    for column in ("n_params", "tokens"):
        assert fit.exponents[column] == pytest.approx(LR[column], abs=0.04)
        low, high = fit.ci[column]
        assert low < LR[column] < high and high - low < 0.2
    assert fit.coefficient == pytest.approx(LR["coefficient"], rel=0.6)
    assert fit.ci["coefficient"][0] < LR["coefficient"] < fit.ci["coefficient"][1]
    assert fit.n_cells == 12 and fit.warnings == ()
    assert set(fit.optima["method"]) == {"parabola"}
    assert fit.predict(n_params=1e7, tokens=1e10) == pytest.approx(0.5 * 1e7**-0.3 * 1e10**0.1, rel=0.15)
    assert fit.summary().startswith("lr* = ") and "n_params^-0.29" in fit.summary() and "(12 of 12 cells)" in \
        fit.summary()


def test_with_profile_the_optimum_is_the_best_over_another_swept_hyperparameter():
    runs = lr_grid(lrs=np.logspace(-3, 0, 7), seeds=1, batch_sizes=tuple(np.logspace(4, 12, 9, base=2)), jitter=0.0)
    bs = orc.fit_optimal_hparams(runs, hparam="batch_size", profile=["lr"], bootstrap=50)
    assert bs.exponents["tokens"] == pytest.approx(BS["tokens"], abs=0.05)
    assert abs(bs.exponents["n_params"]) < 0.05
    lr = orc.fit_optimal_hparams(runs, hparam="lr", profile=["batch_size"], bootstrap=0)
    assert lr.exponents["n_params"] == pytest.approx(LR["n_params"], abs=0.05) and lr.ci == {}
    # Without profile, runs at different batch sizes would be averaged as repeats: the sweep's columns say so.
    swept = runs.assign(**{"sweep.job.batch_size": runs["batch_size"], "sweep.job.lr": runs["lr"]})
    unprofiled = orc.fit_optimal_hparams(swept, hparam="lr", bootstrap=0)
    assert any("differ in sweep.job.batch_size" in w and "profile" in w for w in unprofiled.warnings)


def test_an_optimum_at_the_edge_of_the_grid_is_flagged_and_left_out_of_the_law():
    runs = lr_grid()
    # The largest model's runs at the smallest data size stop below its optimum (about 0.008): the best of what is
    # left is the grid's lowest value, which is only a bound.
    cut = (runs["n_params"] == 1e9) & (runs["tokens"] == 1e9) & (runs["lr"] < 0.01)
    fit = orc.fit_optimal_hparams(runs[~cut], bootstrap=100)
    edge = fit.optima[fit.optima["edge"] != ""]
    assert len(edge) == 1 and edge.iloc[0]["edge"] == "low" and not edge.iloc[0]["used"]
    assert (edge.iloc[0]["n_params"], edge.iloc[0]["tokens"]) == (1e9, 1e9)
    assert fit.n_cells == 11 and "1 at the grid's edge" in fit.summary()
    assert any("(n_params=1e+09, tokens=1e+09) left out of the law: optimum at the low edge" in w for w in fit.warnings)
    assert fit.exponents["n_params"] == pytest.approx(LR["n_params"], abs=0.05)


def test_too_few_interior_optima_is_an_error_naming_the_cells_left_out():
    runs = lr_grid(seeds=1)
    narrow = runs[(runs["lr"] >= 0.05) | (runs["n_params"] == 1e6)]  # every larger model's optimum below 0.05
    with pytest.raises(AnalysisInputError, match=r"too few cells with an interior optimum of lr") as err:
        orc.fit_optimal_hparams(narrow, bootstrap=0)
    assert "3 of 12 cells usable" in str(err.value)
    assert "(n_params=1e+07, tokens=1e+09): optimum at the low edge of the grid (lr = 0.05623)" in str(err.value)


def test_a_grid_of_two_values_is_too_coarse_to_locate_an_optimum():
    runs = lr_grid(lrs=np.array([1e-3, 1e-2]), seeds=1)
    with pytest.raises(AnalysisInputError, match=r"grid too coarse to locate an optimum of lr: every cell has fewer "
                                                  r"than 3 values of lr \(\(n_params=1e\+06, tokens=1e\+09\): 2"):
        orc.fit_optimal_hparams(runs)


def test_a_hyperparameter_shadowed_by_a_logged_metric_is_pointed_at_its_configured_value():
    # The LM job logs an `lr` curve: read back, `lr` is its last value and the configured LR is `param.lr`.
    runs = lr_grid(seeds=1)
    runs = runs.assign(**{"param.lr": runs["lr"], "lr": runs["lr"] * 0.1})
    fit = orc.fit_optimal_hparams(runs, hparam="lr", bootstrap=0)
    assert any("'lr' is a logged metric" in w and "'param.lr'" in w for w in fit.warnings)
    assert orc.fit_optimal_hparams(runs, hparam="param.lr", bootstrap=0).warnings == ()


def test_unfinished_runs_are_left_out_and_listed():
    runs = lr_grid(seeds=1)
    runs.loc[0, "status"] = "FAILED"
    fit = orc.fit_optimal_hparams(runs, bootstrap=0)
    assert len(fit.excluded) == 1 and "did not finish" in fit.excluded["reason"].iloc[0]


def test_the_analysis_section_logs_exponents_a_table_of_optima_and_figures():
    report = run_analysis(lr_grid(seeds=1), {"hparams": [{"hparam": "lr", "bootstrap": 50},
                                                         {"name": "lr_vs_n", "hparam": "lr", "over": ["n_params"]}]})
    assert report.metrics["hparams.lr.exponent.n_params"] == pytest.approx(LR["n_params"], abs=0.05)
    assert report.metrics["hparams.lr.exponent.n_params_ci_low"] < LR["n_params"]
    assert report.metrics["hparams.lr.n_cells"] == 12.0
    assert "hparams.lr_vs_n.exponent.n_params" in report.metrics
    assert {"hparams.lr.json", "hparams.lr.csv", "hparams.lr.png", "hparams.lr.law.png"} <= set(report.files)
    assert report.files["hparams.lr.png"][:4] == b"\x89PNG"
    table = pd.read_csv(pd.io.common.BytesIO(report.files["hparams.lr.csv"]))
    assert list(table.columns[:4]) == ["n_params", "tokens", "n_runs", "n_values"] and len(table) == 12
    assert any(line.startswith("hparams.lr: lr* = ") for line in report.summary)


def test_an_unfittable_analysis_is_skipped_with_the_reason():
    report = run_analysis(lr_grid(lrs=np.array([1e-3, 1e-2]), seeds=1), {"hparams": {"hparam": "lr"}})
    assert report.metrics == {} and report.warnings[0].startswith("hparams.lr skipped: grid too coarse")


@pytest.mark.parametrize("section, field, message", [
    ({"hparams": [{"over": ["n_params"]}]}, "analysis.hparams[0].hparam", "is required"),
    ({"hparams": [{"hparam": "lr", "over": "n_params"}]}, "analysis.hparams[0].over", "must be a list"),
    ({"hparams": [{"hparam": "lr", "over": []}]}, "analysis.hparams[0].over", "at least 1 column"),
    ({"hparams": [{"hparam": "lr", "over": ["lr"]}]}, "analysis.hparams[0].hparam", "another role"),
    ({"hparams": [{"hparam": "lr", "profile": ["bs", "bs"]}]}, "analysis.hparams[0].profile", "names a column twice"),
    ({"hparams": [{"hparam": "lr", "bootstrap": -1}]}, "analysis.hparams[0].bootstrap", "non-negative"),
    ({"hparams": [{"hparam": "lr", "grid": 3}]}, "analysis.hparams[0].grid", "unknown key"),
    ({"hparams": [{"hparam": "lr"}, {"hparam": "lr", "name": "lr"}]}, "analysis.hparams[1].name", "used twice"),
])
def test_a_bad_hparams_section_is_a_config_error_naming_the_field(section, field, message):
    with pytest.raises(ConfigError, match=message) as err:
        validate_analysis_spec(section)
    assert err.value.field == field


def test_hparams_specs_default_to_n_params_and_tokens_and_are_named_after_the_hparam():
    spec = validate_analysis_spec({"hparams": [{"hparam": "lr"}, {"hparam": "lr", "profile": ["batch_size"]}]})
    assert [(h.name, h.over, h.loss, h.profile) for h in spec.hparams] == [
        ("lr", ("n_params", "tokens"), "val_loss", ()), ("lr_2", ("n_params", "tokens"), "val_loss", ("batch_size",))]
