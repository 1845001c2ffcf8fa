"""GPUs with the total-energy counter: a run's energy is the counter difference; short runs use power samples."""

from __future__ import annotations

import pytest

from orchestrator.testing.fake_nvml import FakeBoard

UUID_A = "GPU-aaaaaaaa-0000-0000-0000-000000000001"
UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000002"


def test_energy_is_the_counter_difference_exactly(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=5_000_000, power_mw=250_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(10.0)
    board.energy_mj = 5_000_000 + 2_345_678
    reading = meter.stop()
    assert reading.metrics["energy_j"] == pytest.approx(2345.678, abs=1e-9)
    assert reading.metrics["gpu_energy_j"] == reading.metrics["gpu0_energy_j"] == reading.metrics["energy_j"]
    assert reading.metrics["power_mean_w"] == pytest.approx(234.5678)
    assert reading.tags["energy_source"] == "nvml_counter"
    assert reading.tags["energy_shared"] == "false"
    assert "energy_counter_fallback" not in reading.tags


def test_counter_energy_ignores_what_the_power_samples_say(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=0, power_mw=999_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(2.0)
    meter.sample()
    board.energy_mj = 400_000
    assert meter.stop().metrics["energy_j"] == pytest.approx(400.0)


def test_run_shorter_than_counter_min_is_integrated_from_power_not_read_as_zero(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=7_000, power_mw=200_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(0.05)  # the counter has not ticked
    reading = meter.stop()
    assert reading.metrics["energy_j"] == pytest.approx(200.0 * 0.05)
    assert reading.tags["energy_source"] == "nvml_power"
    assert reading.tags["energy_counter_fallback"] == "short_run"


def test_short_run_straddling_one_counter_tick_is_not_charged_the_whole_tick(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=0, power_mw=300_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(0.01)
    board.energy_mj = 30_000  # one 100 ms tick at 300 W landed inside a 10 ms run
    reading = meter.stop()
    assert reading.metrics["energy_j"] == pytest.approx(3.0)
    assert reading.tags["energy_counter_fallback"] == "short_run"


def test_counter_that_did_not_advance_over_a_long_run_falls_back_to_power(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=123, power_mw=100_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.metrics["energy_j"] == pytest.approx(200.0)
    assert reading.tags["energy_counter_fallback"] == "counter_not_advanced"


def test_counter_reset_during_the_run_falls_back_to_power(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=10_000_000, power_mw=50_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(4.0)
    board.energy_mj = 1_000  # driver reloaded
    assert meter.stop().metrics["energy_j"] == pytest.approx(200.0)


def test_short_run_on_a_board_without_power_reading_is_unavailable_not_zero(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(UUID_A, energy_mj=0, power_mw=None)])
    meter = make_meter("0").start()
    clock.advance(0.02)
    reading = meter.stop()
    assert "energy_j" not in reading.metrics and "gpu_energy_j" not in reading.metrics
    assert reading.tags["energy_source"] == "unavailable"
    assert reading.tags["energy_unavailable_reason"].startswith("no_energy_reading:")


def test_each_device_gets_its_own_counter_difference(fake_nvml, make_meter, clock):
    a = FakeBoard(UUID_A, pci_bus=1, energy_mj=0)
    b = FakeBoard(UUID_B, pci_bus=2, energy_mj=0)
    fake_nvml([a, b])
    meter = make_meter("0,1").start()
    clock.advance(5.0)
    a.energy_mj, b.energy_mj = 1_000_000, 3_000_000
    reading = meter.stop()
    assert reading.metrics["gpu0_energy_j"] == pytest.approx(1000.0)
    assert reading.metrics["gpu1_energy_j"] == pytest.approx(3000.0)
    assert reading.metrics["gpu_energy_j"] == pytest.approx(4000.0)
    assert reading.metrics["gpus_held"] == 2.0
    assert reading.tags["gpu_uuid"] == f"{UUID_A},{UUID_B}"
    assert reading.tags["gpu_name"] == "NVIDIA H100 80GB HBM3"


def test_meter_records_utilisation_memory_and_power_peak(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=0, power_mw=100_000, util_pct=20, memory_used_bytes=1_000)
    fake_nvml([board])
    meter = make_meter("0").start()
    clock.advance(1.0)
    board.power_mw, board.util_pct, board.memory_used_bytes = 400_000, 60, 9_000
    meter.sample()
    clock.advance(1.0)
    board.power_mw, board.util_pct, board.memory_used_bytes, board.energy_mj = 100_000, 100, 5_000, 500_000
    reading = meter.stop()
    assert reading.metrics["power_peak_w"] == pytest.approx(400.0)
    assert reading.metrics["gpu_util_mean_pct"] == pytest.approx(60.0)
    assert reading.metrics["gpu_mem_peak_bytes"] == 9_000
    assert reading.metrics["power_mean_w"] == pytest.approx(250.0)


def test_context_manager_stops_the_meter_and_keeps_the_reading(fake_nvml, make_meter, clock):
    board = FakeBoard(UUID_A, energy_mj=0)
    fake_nvml([board])
    with make_meter("0") as meter:
        clock.advance(3.0)
        board.energy_mj = 3_000
    assert meter.reading is not None and meter.reading.energy_j == pytest.approx(3.0)
    assert meter.stop() is meter.reading  # a second stop returns the same reading


def test_a_meter_measures_one_run_only(fake_nvml, make_meter):
    fake_nvml([FakeBoard(UUID_A)])
    meter = make_meter("0").start()
    meter.stop()
    with pytest.raises(RuntimeError, match="one run"):
        meter.start()
