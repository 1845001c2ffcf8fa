"""The power/energy curve: `system/` keys, one point per curve interval plus start and stop, ending at energy_j."""

from __future__ import annotations

import pytest

from orchestrator.testing.fake_nvml import FakeBoard


def test_curve_has_points_every_interval_and_ends_at_the_run_energy(fake_nvml, make_meter, clock):
    board = FakeBoard("GPU-a", energy_mj=0, power_mw=200_000, util_pct=50, memory_used_bytes=1024)
    fake_nvml([board])
    meter = make_meter("0", curve_interval_s=2.0).start()
    for _ in range(5):
        clock.advance(1.0)
        board.energy_mj += 200_000
        meter.sample()
    clock.advance(0.5)
    board.energy_mj += 100_000
    reading = meter.stop()
    energy = [(p.step, p.value) for p in reading.curve if p.key == "system/energy_j"]
    assert energy == [(0, 0.0), (1, pytest.approx(400.0)), (2, pytest.approx(800.0)), (3, reading.metrics["energy_j"])]
    keys = {p.key for p in reading.curve}
    assert keys == {"system/energy_j", "system/gpu_0_power_usage_watts", "system/gpu_0_utilization_percentage",
                    "system/gpu_0_memory_usage_megabytes"}  # MLflow's system-metric names, per device
    power = {p.value for p in reading.curve if p.key == "system/gpu_0_power_usage_watts"}
    assert power == {200.0}
    assert {p.value for p in reading.curve if p.key == "system/gpu_0_memory_usage_megabytes"} == {1024 / 2**20}
    stamps = sorted({p.timestamp_ms for p in reading.curve})
    assert [b - a for a, b in zip(stamps, stamps[1:])] == [2000, 2000, 1500]


def test_unmeasured_energy_has_no_curve_point_never_a_zero(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard("GPU-a")], errors={"nvmlDeviceGetTotalEnergyConsumption": 4})
    reading = make_meter("0").start().stop()
    assert not [p for p in reading.curve if p.key == "system/energy_j"]


def test_each_device_of_a_run_has_its_own_curve_in_run_order(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard("GPU-a", pci_bus=0, power_mw=200_000, util_pct=10),
               FakeBoard("GPU-b", pci_bus=1, power_mw=300_000, util_pct=90)])
    meter = make_meter("1,0").start()
    clock.advance(1.0)
    reading = meter.stop()
    last = {p.key: p.value for p in reading.curve}
    assert last["system/gpu_0_power_usage_watts"] == 300.0 and last["system/gpu_1_power_usage_watts"] == 200.0
    assert last["system/gpu_0_utilization_percentage"] == 90 and last["system/gpu_1_utilization_percentage"] == 10
