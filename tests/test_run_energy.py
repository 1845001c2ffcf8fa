"""A run's energy and cost as the executor records them: the meter wraps the job, cost comes from the same function
`recost` uses. NVML is faked at the `pynvml` seam (this machine has no GPU); Ray and MLflow are real in the engine
test below."""

from __future__ import annotations

import time

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.energy import _nvml
from orchestrator.energy.cost import load_cost_model
from orchestrator.testing.fake_nvml import FakeBoard, FakeNVML
from orchestrator.energy.recost import recost_runs
from orchestrator.execution import executor as executor_module
from orchestrator.execution.executor import Executor, RunSettings
from orchestrator.launch import launch
from orchestrator.records import Resources, RunSpec
from orchestrator.tracking.store import MlflowStore

UUID = "GPU-11111111-2222-3333-4444-555555555555"
WATTS = 300.0


def test_a_run_on_a_gpu_with_an_energy_counter_records_joules_cost_and_carbon(monkeypatch):
    started = time.monotonic()
    board = FakeBoard(UUID, energy_mj=lambda: int((time.monotonic() - started) * WATTS * 1000), power_mw=300_000)
    monkeypatch.setattr(_nvml, "pynvml", FakeNVML([board]))
    monkeypatch.setattr(executor_module, "assigned_gpu_ids", lambda: ["0"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    spec = RunSpec("k", {"_target_": "orchestrator.jobs.synthetic.train", "n_params": 10**6, "tokens": 10**9, "E": 1.69,
                         "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "noise": 0.0, "sleep_s": 1.3,
                         "steps": 5, "fail": False, "seed": 0}, Resources(gpus=1.0, cpus=1.0), "run")
    model = load_cost_model("default")
    result = Executor().run(spec, RunSettings(sample_interval_s=0.05, cost=model))

    m, tags = result.metrics, result.tags
    assert tags["energy_source"] == "nvml_counter" and tags["gpu_uuid"] == UUID
    assert tags["gpu_name"] == "NVIDIA H100 80GB HBM3"
    # Counter difference over the run's window: 300 W for about wall_s seconds.
    assert m["energy_j"] == pytest.approx(WATTS * m["wall_s"], rel=0.05)
    assert m["gpu_energy_j"] == m["energy_j"] and m["power_mean_w"] == pytest.approx(WATTS, rel=0.05)
    assert m["gpu_seconds"] == pytest.approx(m["wall_s"])
    assert m["cost_usd"] == pytest.approx(m["wall_s"] / 3600 * 3.00)  # H100 at $3.00 per GPU-hour, mode gpu_hours
    assert m["co2_g"] == pytest.approx(m["energy_j"] / 3.6e6 * 1.2 * 400)  # kWh x PUE x gCO2/kWh
    assert any(p.key == "system/energy_j" for p in result.curve_tail)


def test_recost_with_the_live_factors_reproduces_the_live_cost(ray_cluster, compose, tracking_uri):
    summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                             "sweep.params.job.sleep_s=0.1", "resources.gpus=0.5"))
    assert summary.ok
    live = {r.run_key: r.metrics for r in summary.results.values()}
    assert all(m["cost_usd"] > 0 and "energy_j" not in m for m in live.values())  # no NVML here: never a fake 0 J
    recost = recost_runs(MlflowStore(tracking_uri, "synthetic-demo"), load_cost_model("default"))
    assert len(recost.runs) == 12
    for run in recost.runs:
        assert run.after["cost_usd"] == pytest.approx(live[run.run_key]["cost_usd"], rel=1e-12)
        assert run.after["gpu_hours"] == pytest.approx(live[run.run_key]["gpu_hours"], rel=1e-12)
    child = MlflowClient(tracking_uri=tracking_uri).get_run(recost.runs[0].run_id)
    assert child.data.tags["energy_source"] == "unavailable" and "energy_unavailable_reason" in child.data.tags
