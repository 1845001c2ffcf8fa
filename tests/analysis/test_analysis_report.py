"""run_analysis: the sweep-end hook produces named files, headline metrics and warnings from a spec."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.analysis import AnalysisReport, run_analysis, validate_analysis_spec
from orchestrator.errors import ConfigError

SPEC = {
    "fits": [
        {"form": "chinchilla", "n": "n_params", "d": "tokens", "loss": "val_loss", "bootstrap": 50},
        {"form": "power", "x": "flops", "y": "val_loss", "bootstrap": 50},
        {"form": "power", "x": "n_params", "y": "val_loss", "bootstrap": 0},
    ],
    "isoflop": {"n": "n_params", "flops": "flops", "loss": "val_loss"},
    "frontiers": [
        {"objectives": {"wall_s": "min", "val_loss": "min"}, "reference": {"wall_s": 1e9, "val_loss": 10.0}},
        {"name": "energy", "objectives": {"energy_j": "min", "val_loss": "min"}},
    ],
}


@pytest.fixture(scope="module")
def sweep(make_isoflop_runs) -> pd.DataFrame:
    df = make_isoflop_runs(sizes=9)
    rng = np.random.default_rng(0)
    return df.assign(wall_s=df["flops"] / 1e15 * rng.uniform(0.8, 1.2, len(df)), energy_j=df["flops"] / 1e12)


@pytest.fixture(scope="module")
def report(sweep) -> AnalysisReport:
    return run_analysis(sweep, SPEC)


def test_report_names_files_so_several_fits_and_frontiers_do_not_collide(report):
    expected = {
        "fit.chinchilla.json", "fit.chinchilla.png", "fit.power.json", "fit.power.png",
        "fit.power_2.json", "fit.power_2.png", "isoflop.json", "isoflop.png", "isoflop.budgets.csv",
        "frontier.wall_s-val_loss.csv", "frontier.wall_s-val_loss.json", "frontier.wall_s-val_loss.png",
        "frontier.energy.csv", "frontier.energy.json", "frontier.energy.png",
    }  # fmt: skip
    assert set(report.files) == expected
    assert all(report.files[name][:4] == b"\x89PNG" for name in expected if name.endswith(".png"))


def test_report_metrics_hold_exponents_compute_optimal_exponent_and_front_size(report, sweep, truth):
    m = report.metrics
    assert m["fit.chinchilla.alpha"] == pytest.approx(truth["alpha"], rel=0.1)
    assert m["fit.chinchilla.alpha_ci_low"] < m["fit.chinchilla.alpha"] < m["fit.chinchilla.alpha_ci_high"]
    assert m["isoflop.a"] == pytest.approx(truth["beta"] / (truth["alpha"] + truth["beta"]), rel=0.02)
    assert m["isoflop.a"] + m["isoflop.b"] == pytest.approx(1.0)
    assert m["frontier.wall_s-val_loss.size"] == len(pd.read_csv(_csv(report, "frontier.wall_s-val_loss.csv")))
    assert m["frontier.wall_s-val_loss.hypervolume"] > 0
    assert "frontier.energy.hypervolume" not in m
    assert all(isinstance(v, float) for v in m.values())


def test_report_json_files_repeat_the_fit(report):
    fit = json.loads(report.files["fit.chinchilla.json"])
    assert fit["params"]["alpha"] == report.metrics["fit.chinchilla.alpha"]
    assert fit["bootstrap"]["resamples"] == 50
    front = json.loads(report.files["frontier.energy.json"])
    assert front["size"] == report.metrics["frontier.energy.size"]


def test_a_part_the_data_cannot_support_is_skipped_with_a_warning(sweep):
    spec = {"fits": [{"form": "power", "x": "no_such_column", "y": "val_loss"}], "frontiers": SPEC["frontiers"][1:]}
    report = run_analysis(sweep, spec)
    assert report.warnings == [
        f"fit.power skipped: column 'no_such_column' not found; the DataFrame has columns {list(sweep.columns)}"
    ]
    assert set(report.files) == {"frontier.energy.csv", "frontier.energy.json", "frontier.energy.png"}


def _csv(report, name):
    import io

    return io.BytesIO(report.files[name])


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"fits": [{"form": "kaplan"}]}, "analysis.fits[0].form"),
        ({"fits": [{"form": "power", "n": "n_params"}]}, "analysis.fits[0].n"),
        ({"fits": [{"form": "chinchilla", "bootstrap": -3}]}, "analysis.fits[0].bootstrap"),
        ({"fits": [{"form": "chinchilla", "loss": ""}]}, "analysis.fits[0].loss"),
        ({"fits": "chinchilla"}, "analysis.fits"),
        ({"isoflop": {"n": "n_params", "tokens": "d"}}, "analysis.isoflop.tokens"),
        ({"frontiers": [{"reference": {}}]}, "analysis.frontiers[0].objectives"),
        ({"frontiers": [{"objectives": {"wall_s": "fast"}}]}, "analysis.frontiers[0].objectives.wall_s"),
        ({"frontiers": [{"objectives": {"a": "min"}, "reference": {"b": 1}}]}, "analysis.frontiers[0].reference"),
        (
            {"frontiers": [{"name": "x", "objectives": {"a": "min"}}, {"name": "x", "objectives": {"b": "min"}}]},
            "analysis.frontiers[1].name",
        ),
        ({"plots": True}, "analysis.plots"),
    ],
)
def test_invalid_spec_raises_config_error_naming_the_field(spec, field):
    with pytest.raises(ConfigError) as info:
        validate_analysis_spec(spec)
    assert info.value.field == field


def test_valid_spec_is_normalised_with_default_columns_and_names():
    parsed = validate_analysis_spec({"fits": [{"form": "chinchilla"}, {"form": "chinchilla", "d": "tokens_seen"}]})
    assert [f.name for f in parsed.fits] == ["chinchilla", "chinchilla_2"]
    assert parsed.fits[1].columns == {"n": "n_params", "d": "tokens_seen", "loss": "val_loss"}
    assert validate_analysis_spec(None).fits == ()
