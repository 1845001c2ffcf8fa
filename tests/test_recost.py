"""`orchestrator recost`: a sweep's finished runs costed again from what MLflow stored, nothing rerun.

Real MLflow on SQLite; the sweep's runs are written with MlflowClient the way the executor stores them.
"""

from __future__ import annotations

import math

import pytest
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from orchestrator.cli.main import main
from orchestrator.energy import CostModel, compute_cost, load_cost_model
from orchestrator.energy.recost import COST_METRICS, override_model, sweep_totals

SWEEP = "pricing"
H100, A100 = "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"
# run_key: (status, wall_s, gpus_held, energy_j or None, gpu_name)
RUNS = {
    "a": ("FINISHED", 1800.0, 2.0, 3.6e6, H100),
    "b": ("FINISHED", 600.0, 0.5, 7.2e5, A100),
    "c": ("FINISHED", 3600.0, 1.0, None, H100),  # energy unavailable
    "d": ("FAILED", 900.0, 1.0, 1.0e6, H100),
}
SETTINGS = ["--set", "usd_per_kwh=0.30", "--set", "pue=1.2", "--set", "mode=both"]


def _child(client: MlflowClient, exp: str, parent: str, key: str) -> str:
    status, wall_s, gpus_held, energy_j, gpu_name = RUNS[key]
    tags = {"orchestrator.role": "child", "mlflow.parentRunId": parent, "run_key": key, "gpu_name": gpu_name,
            "energy_source": "nvml_counter" if energy_j is not None else "unavailable"}
    run_id = client.create_run(exp, run_name=key, tags=tags).info.run_id
    metrics = {"wall_s": wall_s, "gpus_held": gpus_held, **({"energy_j": energy_j} if energy_j is not None else {})}
    # What the live path logged with conf/cost/default.yaml (mode gpu_hours), at step 0.
    metrics.update(compute_cost(load_cost_model("default"), wall_s=wall_s, gpus_held=gpus_held, gpu_name=gpu_name,
                                energy_j=energy_j))
    client.log_batch(run_id, metrics=[Metric(k, v, 1_000, 0) for k, v in metrics.items()])
    client.set_terminated(run_id, status)
    return run_id


@pytest.fixture
def sweep(tracking_uri: str) -> dict[str, str]:
    """Run ids by run_key, plus "old_parent" and "parent" (the newer launch)."""
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment(SWEEP)
    ids = {"old_parent": client.create_run(exp, tags={"orchestrator.role": "parent"}, start_time=1_000).info.run_id}
    ids["parent"] = client.create_run(exp, tags={"orchestrator.role": "parent"}, start_time=2_000).info.run_id
    for name in ("old_parent", "parent"):
        client.log_batch(ids[name], metrics=[Metric("total_cost_usd", 1.0, 1_000, 0)])
        client.set_terminated(ids[name], "FINISHED")
    ids.update({key: _child(client, exp, ids["parent"], key) for key in RUNS})
    return ids


def recost(uri: str, *args: str) -> int:
    return main(["recost", SWEEP, "--tracking-uri", uri, *args])


def latest(uri: str, run_id: str) -> dict[str, float]:
    return MlflowClient(uri).get_run(run_id).data.metrics


def snapshot(uri: str) -> list[tuple[str, dict[str, list[tuple[int, float]]], dict[str, str]]]:
    """Every run's full metric history and tags: what a write would change."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(SWEEP).experiment_id])
    return sorted((r.info.run_id, {k: sorted((m.step, m.value) for m in client.get_metric_history(r.info.run_id, k))
                                   for k in r.data.metrics}, r.data.tags) for r in runs)


def expected_model() -> CostModel:
    return override_model(load_cost_model("default"), ["usd_per_kwh=0.30", "pue=1.2", "mode=both"])


def test_recost_gives_the_live_cost_functions_numbers_for_every_finished_run(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS) == 0
    for key in ("a", "b", "c"):
        _, wall_s, gpus_held, energy_j, gpu_name = RUNS[key]
        want = compute_cost(expected_model(), wall_s=wall_s, gpus_held=gpus_held, gpu_name=gpu_name,
                            energy_j=energy_j)
        got = latest(tracking_uri, sweep[key])
        assert {k: got[k] for k in want} == pytest.approx(want)
    # By hand, run a: 1800 s x 2 GPUs = 1 GPU-hour of H100 at $3; 1 kWh x PUE 1.2 = 1.2 kWh at $0.30 and 400 g/kWh.
    a = latest(tracking_uri, sweep["a"])
    assert a["gpu_seconds"] == pytest.approx(3600.0)
    assert a["gpu_hours"] == pytest.approx(1.0)
    assert a["cost_gpu_usd"] == pytest.approx(3.0)
    assert a["cost_energy_usd"] == pytest.approx(0.36)
    assert a["co2_g"] == pytest.approx(480.0)
    assert a["cost_usd"] == pytest.approx(3.36)


def test_the_newest_parent_gets_the_sums_over_finished_runs(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS) == 0
    children = [latest(tracking_uri, sweep[k]) for k in ("a", "b", "c")]
    totals = latest(tracking_uri, sweep["parent"])
    assert totals["total_gpu_hours"] == pytest.approx(sum(c["gpu_hours"] for c in children))
    assert totals["total_cost_usd"] == pytest.approx(3.36 + 0.222)  # run c has no cost_usd in mode both
    assert totals["total_co2_g"] == pytest.approx(480.0 + 96.0)
    assert totals["total_energy_j"] == pytest.approx(3.6e6 + 7.2e5)  # the FAILED run d is left out
    assert totals["runs_energy_unavailable"] == 1
    assert totals["runs_cost_unavailable"] == 1
    assert latest(tracking_uri, sweep["old_parent"]) == {"total_cost_usd": 1.0}


def test_a_run_without_energy_gets_no_co2_and_no_stale_cost(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS) == 0
    c = latest(tracking_uri, sweep["c"])
    assert "co2_g" not in c and "cost_energy_usd" not in c
    assert c["cost_gpu_usd"] == pytest.approx(3.0)
    # Live (mode gpu_hours) it had cost_usd = $3; mode both cannot price it, so the latest value says so.
    assert math.isnan(c["cost_usd"])


def test_new_values_are_one_step_past_the_old_and_history_is_kept(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS) == 0
    history = MlflowClient(tracking_uri).get_metric_history(sweep["a"], "cost_usd")
    assert sorted((m.step, round(m.value, 6)) for m in history) == [(0, 3.0), (1, 3.36)]


def test_recost_is_idempotent(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS) == 0
    once = {key: latest(tracking_uri, sweep[key]) for key in ("a", "b", "c", "parent")}
    assert recost(tracking_uri, *SETTINGS) == 0
    twice = {key: latest(tracking_uri, sweep[key]) for key in ("a", "b", "c", "parent")}
    assert str(twice) == str(once)  # str: NaN == NaN
    steps = MlflowClient(tracking_uri).get_metric_history(sweep["parent"], "total_co2_g")
    assert [m.step for m in steps] == [1, 2]


def test_failed_runs_are_left_alone(tracking_uri, sweep):
    before = MlflowClient(tracking_uri).get_metric_history(sweep["d"], "cost_usd")
    assert recost(tracking_uri, *SETTINGS) == 0
    assert MlflowClient(tracking_uri).get_metric_history(sweep["d"], "cost_usd") == before


def test_the_factors_used_are_tags_on_the_parent(tracking_uri, sweep):
    assert recost(tracking_uri, *SETTINGS, "--set", "usd_per_gpu_hour.h100=5", "--set", "usd_per_gpu_hour.X9=9") == 0
    tags = MlflowClient(tracking_uri).get_run(sweep["parent"]).data.tags
    assert tags["recost.cost.pue"] == "1.2" and tags["recost.cost.mode"] == "both"
    assert tags["recost.cost.usd_per_gpu_hour.H100"] == "5.0"  # the existing key, matched case-insensitively
    assert tags["recost.at"].endswith("Z")
    assert latest(tracking_uri, sweep["a"])["cost_gpu_usd"] == pytest.approx(5.0)
    assert recost(tracking_uri) == 0
    tags = MlflowClient(tracking_uri).get_run(sweep["parent"]).data.tags
    assert "recost.cost.usd_per_gpu_hour.X9" not in tags  # factors of the earlier recost do not linger
    assert tags["recost.cost.mode"] == "gpu_hours"


def test_dry_run_prints_the_totals_and_writes_nothing(tracking_uri, sweep, capsys):
    before = snapshot(tracking_uri)
    assert recost(tracking_uri, *SETTINGS, "--dry-run") == 0
    assert snapshot(tracking_uri) == before
    out = capsys.readouterr().out
    assert "total_co2_g" in out and "576" in out and "dry run: nothing written" in out


@pytest.mark.parametrize(("args", "field", "names"), [
    (["--set", "watts=3"], "--set watts", "usd_per_kwh"),
    (["--set", "pue"], "--set", "key=value"),
    (["--set", "pue=high"], "--set pue", "expected a number"),
    (["--set", "pue=0.5"], "cost.pue", ">= 1"),
    (["--set", "mode=cheap"], "cost.mode", "gpu_hours, energy, both"),
    (["--cost", "spot"], "--cost", "default, onprem"),
])
def test_bad_input_exits_2_naming_the_field_and_writes_nothing(tracking_uri, sweep, capsys, args, field, names):
    before = snapshot(tracking_uri)
    assert recost(tracking_uri, *args) == 2
    err = capsys.readouterr().err
    assert f"{field}:" in err and names in err
    assert snapshot(tracking_uri) == before


def test_an_unknown_sweep_exits_2(tracking_uri, sweep, capsys):
    assert main(["recost", "no-such-sweep", "--tracking-uri", tracking_uri]) == 2
    assert "sweep: no sweep named 'no-such-sweep'" in capsys.readouterr().err
    assert MlflowClient(tracking_uri).get_experiment_by_name("no-such-sweep") is None


def test_sweep_totals_leave_out_what_no_run_measured():
    totals = sweep_totals([{"gpu_hours": 1.0, "cost_usd": 2.0}, {"gpu_hours": 0.5, "energy_j": math.nan}])
    assert totals == {"total_gpu_hours": 1.5, "total_cost_usd": 2.0, "runs_energy_unavailable": 2.0,
                      "runs_cost_unavailable": 1.0}  # no total_energy_j or total_co2_g, never 0


def test_cost_metrics_lists_everything_compute_cost_can_return():
    everything = compute_cost(expected_model(), wall_s=1.0, gpus_held=1.0, gpu_name=None, energy_j=1.0)
    assert set(COST_METRICS) == set(everything)
