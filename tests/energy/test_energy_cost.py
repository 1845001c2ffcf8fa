"""Cost and carbon from stored metrics: known factors give known numbers; recost equals the live result."""

from __future__ import annotations

import json

import pytest

from orchestrator.energy import CostModel, compute_cost, cost_metrics, load_cost_model
from orchestrator.testing.fake_nvml import FakeBoard
from orchestrator.errors import ConfigError


def model(mode: str = "both") -> CostModel:
    return CostModel(
        usd_per_gpu_hour={"H100": 3.0, "A100": 2.0, "L4": 0.8, "MIG 1g.10gb": 0.5},
        default_usd_per_gpu_hour=1.0,
        usd_per_kwh=0.10,
        pue=1.5,
        grid_co2_g_per_kwh=400.0,
        mode=mode,
    )


def test_known_factors_give_known_numbers():
    out = compute_cost(model(), wall_s=1800.0, gpus_held=2.0, gpu_name="NVIDIA H100 80GB HBM3", energy_j=3.6e6)
    assert out["gpu_seconds"] == pytest.approx(3600.0)
    assert out["gpu_hours"] == pytest.approx(1.0)
    assert out["cost_gpu_usd"] == pytest.approx(3.0)
    assert out["cost_energy_usd"] == pytest.approx(0.15)  # 1 kWh x PUE 1.5 x $0.10
    assert out["co2_g"] == pytest.approx(600.0)
    assert out["cost_usd"] == pytest.approx(3.15)


@pytest.mark.parametrize(("mode", "cost_usd"), [("gpu_hours", 3.0), ("energy", 0.15), ("both", 3.15)])
def test_mode_selects_what_cost_usd_is_and_both_components_are_kept(mode, cost_usd):
    out = compute_cost(model(mode), wall_s=3600.0, gpus_held=1.0, gpu_name="NVIDIA H100", energy_j=3.6e6)
    assert out["cost_usd"] == pytest.approx(cost_usd)
    assert {"cost_gpu_usd", "cost_energy_usd"} <= set(out)


@pytest.mark.parametrize(("mode", "has_cost_usd"), [("gpu_hours", True), ("energy", False), ("both", False)])
def test_unavailable_energy_leaves_energy_values_absent_never_zero(mode, has_cost_usd):
    out = compute_cost(model(mode), wall_s=3600.0, gpus_held=1.0, gpu_name="NVIDIA H100", energy_j=None)
    assert "cost_energy_usd" not in out and "co2_g" not in out
    assert ("cost_usd" in out) == has_cost_usd
    assert out["cost_gpu_usd"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("gpu_name", "usd"),
    [
        ("NVIDIA H100 80GB HBM3", 3.0),
        ("NVIDIA A100-SXM4-80GB", 2.0),
        ("NVIDIA L40S", 1.0),  # "L4" is not a word of it: default
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 0.5),  # the longest matching key wins
        ("nvidia h100", 3.0),
        (None, 1.0),
        ("NVIDIA H100,NVIDIA A100", 2.5),  # mixed run: the mean
    ],
)
def test_gpu_hour_price_is_looked_up_by_model_name(gpu_name, usd):
    assert model().gpu_hour_usd(gpu_name) == pytest.approx(usd)


def test_recost_from_stored_metrics_equals_the_live_result(fake_nvml, make_meter, clock):
    board = FakeBoard("GPU-a", name="NVIDIA A100-SXM4-80GB", energy_mj=0)
    fake_nvml([board])
    meter = make_meter("0", gpu_share=0.5).start()
    clock.advance(60.0)
    board.energy_mj = 12_345_678
    reading = meter.stop()
    metrics = {**reading.metrics, "wall_s": 60.2}
    live = cost_metrics(model(), metrics, reading.tags)
    stored_metrics, stored_tags = json.loads(json.dumps(metrics)), json.loads(json.dumps(dict(reading.tags)))
    assert cost_metrics(model(), stored_metrics, stored_tags) == live
    assert live["gpu_seconds"] == pytest.approx(30.1)
    assert live["cost_energy_usd"] == pytest.approx(12345.678 / 2 * 1.5 / 3.6e6 * 0.10)


def test_default_cost_model_loads_from_conf():
    default = load_cost_model("default")
    assert default.name == "default"
    assert default.gpu_hour_usd("NVIDIA H100 80GB HBM3") == default.usd_per_gpu_hour["H100"]
    assert default.pue >= 1


def test_as_params_flattens_the_model_for_the_parent_run():
    params = model().as_params()
    assert params["cost.mode"] == "both"
    assert params["cost.pue"] == "1.5"
    assert params["cost.usd_per_gpu_hour.H100"] == "3.0"
    assert params["cost.usd_per_gpu_hour.MIG 1g.10gb"] == "0.5"
    assert all(isinstance(v, str) for v in params.values())


@pytest.mark.parametrize(
    ("change", "field"),
    [({"mode": "cheapest"}, "cost.mode"), ({"pue": 0.9}, "cost.pue"), ({"usd_per_kwh": -1}, "cost.usd_per_kwh"),
     ({"price": 1}, "cost.price")],
)
def test_invalid_cost_models_are_rejected_with_the_field(change, field):
    data = {"usd_per_gpu_hour": {}, "default_usd_per_gpu_hour": 1, "usd_per_kwh": 0.1, "pue": 1.2,
            "grid_co2_g_per_kwh": 300, **change}
    with pytest.raises(ConfigError) as caught:
        CostModel.from_dict(data)
    assert caught.value.field == field


def test_a_cost_model_file_path_can_be_loaded(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("usd_per_gpu_hour: {H100: 2}\ndefault_usd_per_gpu_hour: 1\nusd_per_kwh: 0.2\npue: 1.1\n"
                    "grid_co2_g_per_kwh: 50\nmode: energy\n")
    loaded = load_cost_model(path)
    assert (loaded.name, loaded.mode, loaded.usd_per_kwh) == ("mine", "energy", 0.2)
