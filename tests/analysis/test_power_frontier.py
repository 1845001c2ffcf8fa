"""power_frontier: runs that differ only in GPU power limit form a group; per group the energy-time front and the
limit the cost model picks. The DataFrames are built by `runs_frame`, as `load_sweep` builds them."""

from __future__ import annotations

import io
import itertools
import json

import pandas as pd
import pytest

from orchestrator.analysis import (
    AnalysisInputError,
    MissingColumnError,
    UsdCost,
    ZeusCost,
    power_frontier,
    run_analysis,
    validate_analysis_spec,
)
from orchestrator.errors import ConfigError
from orchestrator.sweeps import Sweep
from orchestrator.tracking.frames import TrackedRun, runs_frame

LIMITS = (0.5, 0.6, 0.7, 0.8, 1.0)
# (energy_j, wall_s) at each limit, by config (lr). Config 0.003's run at 0.6 is dominated by its run at 0.7.
MEASURED = {
    0.001: [(30000, 200), (31000, 160), (33000, 130), (36000, 105), (40000, 100)],
    0.003: [(45000, 300), (52000, 260), (50000, 250), (55000, 230), (60000, 200)],
}
_ids = itertools.count()


def _run(lr: float, limit: float, energy_j: float, wall_s: float, *, unit: str = "frac", status: str = "FINISHED",
         optimizer: str = "adam", gpus: float = 1.0) -> TrackedRun:
    """A child run as tracking/ops.py logs it: job params unprefixed, resources.* params (the power limit only where
    one is set), swept values as sweep.* metrics."""
    i = next(_ids)
    params = {"_target_": "jobs.train.main", "lr": json.dumps(lr), "optimizer": optimizer,
              "resources.gpus": json.dumps(gpus), "resources.cpus": "1.0", "resources.memory_bytes": "null",
              f"resources.power_limit_{unit}": json.dumps(limit)}
    metrics = {"sweep.lr": lr, f"sweep.resources.power_limit_{unit}": limit, "val_loss": 3.0}
    if status == "FINISHED":
        metrics.update(energy_j=energy_j, wall_s=wall_s, gpus_held=gpus, gpu_hours=wall_s * gpus / 3600)
    return TrackedRun(f"id{i}", f"lr={lr},power_limit_{unit}={limit}", f"key{i}", status, "parent", 1000 * i,
                      1000 * i + 500, params, metrics)


def _two_configs(**options) -> list[TrackedRun]:
    return [_run(lr, f, e, t, **options) for lr, rows in MEASURED.items() for f, (e, t) in zip(LIMITS, rows)]


@pytest.fixture
def runs() -> pd.DataFrame:
    return runs_frame(_two_configs())


def _picks(result) -> list[float]:
    return result.groups["best_limit"].tolist()


def test_runs_that_differ_only_in_power_limit_form_one_group_per_config(runs):
    result = power_frontier(runs, cost=ZeusCost(eta=0.5, max_power_w=400))
    assert result.limit == "resources.power_limit_frac"
    assert result.by == ("sweep.lr",)  # constant params, identity and every power-limit column are not the key
    assert result.groups["sweep.lr"].tolist() == [0.001, 0.003]
    assert result.groups["n_limits"].tolist() == [5, 5]
    for group, lr in enumerate(MEASURED):
        part = result.runs[result.runs["group"] == group]
        assert part["resources.power_limit_frac"].tolist() == list(LIMITS)
        assert part["energy_j"].tolist() == [e for e, _ in MEASURED[lr]]


def test_each_group_front_is_its_runs_no_other_run_beats_in_both_energy_and_time(runs):
    result = power_frontier(runs, cost={"eta": 0.5, "max_power_w": 400})
    front = result.runs[result.runs["on_front"]]
    assert front.groupby("group")["resources.power_limit_frac"].apply(list).tolist() == [
        [0.5, 0.6, 0.7, 0.8, 1.0],
        [0.5, 0.7, 0.8, 1.0],  # 0.6 took 52 kJ and 260 s; 0.7 took less of both
    ]
    assert result.groups["front_size"].tolist() == [5, 4]
    assert result.to_dict()["groups"][1]["front"] == [0.5, 0.7, 0.8, 1.0]


def test_zeus_cost_with_energy_only_picks_the_lowest_limit_and_with_time_only_the_default(runs):
    # eta 1: cost = energy_j, least at 0.5 in both configs. eta 0: cost = 400 W x wall_s, least at 1.0.
    assert _picks(power_frontier(runs, cost=ZeusCost(eta=1.0, max_power_w=400))) == [0.5, 0.5]
    assert _picks(power_frontier(runs, cost=ZeusCost(eta=0.0, max_power_w=400))) == [1.0, 1.0]


def test_usd_cost_picks_a_low_limit_when_energy_is_dear_and_the_default_when_gpu_hours_are(runs):
    # Dear energy: 18 $/kWh x PUE 2 = 1e-5 $/J against 0.036 $/GPU-h = 1e-5 $/s: energy_j dominates, 0.5 wins.
    dear_energy = power_frontier(runs, cost=UsdCost(usd_per_kwh=18, usd_per_gpu_hour=0.036, pue=2.0))
    assert _picks(dear_energy) == [0.5, 0.5]
    assert dear_energy.groups["best_total_cost_usd"].tolist() == pytest.approx([0.302, 0.453])
    # Dear GPU-hours: 1e-8 $/J against 36 $/GPU-h = 0.01 $/s: wall_s dominates, the default limit wins.
    dear_gpu = power_frontier(runs, cost={"usd_per_kwh": 0.036, "usd_per_gpu_hour": 36})
    assert _picks(dear_gpu) == [1.0, 1.0]
    assert dear_gpu.groups["best_total_cost_usd"].tolist() == pytest.approx([1.0004, 2.0006])


def test_the_pick_reports_energy_saved_and_time_added_against_the_highest_limit(runs):
    # eta 0.5, 400 W: 0.5 E + 200 T. Config 0.001: 55000, 47500, 42500, 39000, 40000 -> 0.8.
    # Config 0.003: 82500, 78000, 75000, 73500, 70000 -> 1.0, nothing to save.
    groups = power_frontier(runs, cost=ZeusCost(eta=0.5, max_power_w=400)).groups
    assert groups["best_limit"].tolist() == [0.8, 1.0]
    assert groups["reference_limit"].tolist() == [1.0, 1.0]
    assert groups["best_zeus_cost_j"].tolist() == [39000, 70000]
    assert groups["energy_saving_pct"].tolist() == pytest.approx([10.0, 0.0])  # 36 kJ against 40 kJ
    assert groups["time_increase_pct"].tolist() == pytest.approx([5.0, 0.0])  # 105 s against 100 s
    assert groups["cost_saving_pct"].tolist() == pytest.approx([2.5, 0.0])


def test_zeus_max_power_counts_every_gpu_the_run_held():
    runs = runs_frame(_two_configs(gpus=2.0))
    result = power_frontier(runs, cost=ZeusCost(eta=0.5, max_power_w=400))
    # The run at limit 1.0 of config 0.001: 0.5 x 40000 J + 0.5 x (400 W x 2 GPUs) x 100 s.
    assert result.runs["zeus_cost_j"].iloc[4] == 0.5 * 40000 + 0.5 * 800 * 100


def test_zeus_cost_reads_the_boards_default_limit_when_no_max_power_is_given(runs):
    tagged = runs.assign(power_limit_default_w=400.0)
    by_column = power_frontier(tagged, cost=ZeusCost(eta=0.5))
    assert by_column.by == ("sweep.lr",)
    assert by_column.runs["zeus_cost_j"].tolist() == power_frontier(runs, cost={"eta": 0.5, "max_power_w": 400}).runs[
        "zeus_cost_j"].tolist()
    with pytest.raises(AnalysisInputError, match="'power_limit_default_w' not found; give max_power_w"):
        power_frontier(runs, cost=ZeusCost(eta=0.5))


def test_only_finished_runs_count(runs):
    failed = _run(0.001, 0.4, 0.0, 0.0, status="FAILED")
    result = power_frontier(runs_frame([*_two_configs(), failed]), cost=ZeusCost(eta=1.0, max_power_w=400))
    assert _picks(result) == [0.5, 0.5]
    assert result.excluded["run_name"].tolist() == ["lr=0.001,power_limit_frac=0.4"]
    assert result.excluded["reason"].tolist() == ["run did not finish (status is not FINISHED)"]


def test_a_config_run_at_one_limit_is_reported_with_no_choice_to_make():
    alone = _run(0.01, 0.7, 20000, 90)
    result = power_frontier(runs_frame([*_two_configs(), alone]), cost=ZeusCost(eta=1.0, max_power_w=400))
    last = result.groups.iloc[-1]
    assert (last["sweep.lr"], last["n_limits"], last["front_size"], last["reference_limit"]) == (0.01, 1, 1, 0.7)
    assert pd.isna(last["best_limit"]) and pd.isna(last["energy_saving_pct"])
    assert not result.runs["best"].iloc[-1]
    assert result.warnings == ("lr=0.01: ran at one limit only (resources.power_limit_frac=0.7), no choice to make",)


def test_a_text_param_that_varies_splits_groups_though_it_has_no_sweep_column():
    runs = runs_frame([_run(0.001, f, e, t, optimizer=name)
                       for name in ("adam", "sgd") for f, (e, t) in zip(LIMITS, MEASURED[0.001])])
    result = power_frontier(runs, cost=ZeusCost(eta=1.0, max_power_w=400))
    assert result.by == ("optimizer",)
    assert result.groups["label"].tolist() == ["optimizer=adam", "optimizer=sgd"]


def test_groups_of_one_run_each_warn_that_the_key_may_hold_a_column_that_is_not_config(runs):
    result = power_frontier(runs, cost=ZeusCost(eta=1.0, max_power_w=400), by=["run_id"])
    assert result.groups["n_limits"].tolist() == [1] * 10
    assert result.warnings[-1] == "every group ran one limit: if a column of by=['run_id'] is not config, pass by=[...]"


def test_a_sweep_over_watts_reads_resources_power_limit_w():
    watts = (150, 200, 250, 300, 350)
    runs = runs_frame([_run(0.001, w, e, t, unit="w") for w, (e, t) in zip(watts, MEASURED[0.001])])
    result = power_frontier(runs, cost=ZeusCost(eta=1.0, max_power_w=350))
    assert (result.limit, _picks(result)) == ("resources.power_limit_w", [150])


def test_runs_the_group_key_cannot_tell_apart_are_an_error_naming_the_key(runs):
    message = (r"group \[all runs\] has 2 runs at resources.power_limit_frac=0.5: the config columns \[\] do not "
               r"tell them apart; pass by=")
    with pytest.raises(AnalysisInputError, match=message):
        power_frontier(runs, cost=ZeusCost(eta=1.0, max_power_w=400), by=[])


@pytest.mark.parametrize(
    ("drop", "options", "message"),
    [
        ("energy_j", {}, "column 'energy_j' not found"),
        ("wall_s", {}, "column 'wall_s' not found"),
        ("gpu_hours", {"cost": UsdCost(0.1, 2.0)}, "column 'gpu_hours' not found"),
        (None, {"limit": "power_limit_w"}, "column 'power_limit_w' not found"),
        (None, {"by": ["model"]}, "column 'model' not found"),
        ("resources.power_limit_frac", {}, "expected power_limit_w or resources.power_limit_w or resources.power_limit_frac"),
    ],
)
def test_a_missing_column_is_a_value_error_naming_it(runs, drop, options, message):
    options = {"cost": ZeusCost(eta=0.5, max_power_w=400), **options}
    with pytest.raises(ValueError, match=message) as info:
        power_frontier(runs.drop(columns=[drop] if drop else []), **options)
    assert isinstance(info.value, (MissingColumnError, AnalysisInputError))


@pytest.mark.parametrize(
    ("cost", "field"),
    [
        ({"eta": 1.5}, "cost.eta"),
        (ZeusCost(eta=-0.1), "cost.eta"),
        ({"zeus_eta": 0.5}, "cost.zeus_eta"),
        ({"eta": 0.5, "max_power_w": 0}, "cost.max_power_w"),
        ({"eta": 0.5, "usd_per_kwh": 0.1}, "cost"),
        ({"usd_per_kwh": 0.1}, "cost.usd_per_gpu_hour"),
        (UsdCost(usd_per_kwh=0.1, usd_per_gpu_hour=2.0, pue=0.9), "cost.pue"),
        ("zeus", "cost"),
    ],
)
def test_a_bad_cost_model_is_a_config_error_naming_the_field(runs, cost, field):
    with pytest.raises(ConfigError) as info:
        power_frontier(runs, cost=cost)
    assert info.value.field == field


def test_sweep_power_frontier_reads_the_sweeps_newest_finished_runs():
    sweep = Sweep("power", "sqlite:///unused.db", "1", tuple(_two_configs()))
    assert _picks(sweep.power_frontier(cost={"eta": 1.0, "max_power_w": 400})) == [0.5, 0.5]


def test_the_analysis_section_reports_each_groups_pick_as_metrics_and_files(runs):
    spec = {"power": [{"eta": 0.5, "max_power_w": 400},
                      {"name": "dear_gpu", "usd_per_kwh": 0.036, "usd_per_gpu_hour": 36}]}
    report = run_analysis(runs, spec)
    assert set(report.files) == {f"power.{name}.{ext}" for name in ("zeus", "dear_gpu")
                                 for ext in ("csv", "groups.csv", "json", "png")}
    assert report.files["power.zeus.png"][:4] == b"\x89PNG"
    assert report.metrics == {
        "power.zeus.n_groups": 2.0,
        "power.zeus.group0.best_limit": 0.8,
        "power.zeus.group0.energy_saving_pct": pytest.approx(10.0),
        "power.zeus.group0.time_increase_pct": pytest.approx(5.0),
        "power.zeus.group1.best_limit": 1.0,
        "power.zeus.group1.energy_saving_pct": 0.0,
        "power.zeus.group1.time_increase_pct": 0.0,
        "power.dear_gpu.n_groups": 2.0,
        "power.dear_gpu.group0.best_limit": 1.0,
        "power.dear_gpu.group0.energy_saving_pct": 0.0,
        "power.dear_gpu.group0.time_increase_pct": 0.0,
        "power.dear_gpu.group1.best_limit": 1.0,
        "power.dear_gpu.group1.energy_saving_pct": 0.0,
        "power.dear_gpu.group1.time_increase_pct": 0.0,
    }
    summary = json.loads(report.files["power.zeus.json"])
    assert summary["cost"] == {"model": "zeus", "eta": 0.5, "max_power_w": 400.0}
    assert [g["best_limit"] for g in summary["groups"]] == [0.8, 1.0]
    table = pd.read_csv(io.BytesIO(report.files["power.zeus.csv"]))
    assert table.loc[table["best"], "resources.power_limit_frac"].tolist() == [0.8, 1.0]


def test_the_analysis_section_skips_a_sweep_without_power_limits_with_a_warning(runs):
    report = run_analysis(runs.drop(columns=["resources.power_limit_frac"]), {"power": {"eta": 0.5}})
    assert report.files == {} and report.metrics == {}
    assert report.warnings[0].startswith("power.zeus skipped: no power-limit column with values")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"power": {"eta": 1.5}}, "analysis.power[0].eta"),
        ({"power": {"zeus_eta": 0.5}}, "analysis.power[0].zeus_eta"),
        ({"power": {"eta": 0.5, "usd_per_gpu_hour": 2}}, "analysis.power[0]"),
        ({"power": [{"eta": 1}, {"usd_per_kwh": 0.1}]}, "analysis.power[1].usd_per_gpu_hour"),
        ({"power": {"usd_per_kwh": 0.1, "usd_per_gpu_hour": 2, "pue": 0.9}}, "analysis.power[0].pue"),
        ({"power": {"max_power_w": -700}}, "analysis.power[0].max_power_w"),
        ({"power": {"by": "lr"}}, "analysis.power[0].by"),
        ({"power": {"by": ["lr", ""]}}, "analysis.power[0].by[1]"),
        ({"power": {"limit": ""}}, "analysis.power[0].limit"),
        ({"power": [{"eta": 1}, {"name": "zeus", "eta": 0}]}, "analysis.power[1].name"),
        ({"power": "zeus"}, "analysis.power"),
    ],
)
def test_a_bad_power_section_raises_config_error_naming_the_field(spec, field):
    with pytest.raises(ConfigError) as info:
        validate_analysis_spec(spec)
    assert info.value.field == field


def test_the_power_section_names_each_analysis_by_its_cost_model():
    parsed = validate_analysis_spec({"power": [{"eta": 1}, {}, {"usd_per_kwh": 0.1, "usd_per_gpu_hour": 3,
                                                               "limit": "resources.power_limit_w", "by": ["lr"]}]})
    assert [p.name for p in parsed.power] == ["zeus", "zeus_2", "usd"]
    assert [p.cost for p in parsed.power] == [ZeusCost(1.0), ZeusCost(0.5), UsdCost(0.1, 3.0, 1.0)]
    assert parsed.power[2].columns == {"limit": "resources.power_limit_w", "by": ("lr",)}
