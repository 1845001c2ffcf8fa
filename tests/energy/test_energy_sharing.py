"""Runs that share a board (fractional GPUs, MIG slices) are tagged shared and charged their share, never the board."""

from __future__ import annotations

import pytest

from orchestrator.testing.fake_nvml import FakeBoard, FakeMig

A = "GPU-aaaaaaaa-1111-1111-1111-111111111111"


def test_fractional_run_is_charged_its_share_of_the_board_over_its_window(fake_nvml, make_meter, clock):
    board = FakeBoard(A, energy_mj=0, power_mw=400_000)
    fake_nvml([board])
    meter = make_meter("0", gpu_share=0.25).start()
    clock.advance(10.0)
    board.energy_mj = 4_000_000
    reading = meter.stop()
    assert reading.tags["energy_shared"] == "true"
    assert reading.tags["energy_share"] == "0.25"
    assert reading.metrics["gpu_board_energy_j"] == pytest.approx(4000.0)
    assert reading.metrics["energy_j"] == pytest.approx(1000.0)
    assert reading.metrics["power_mean_w"] == pytest.approx(100.0)
    assert reading.metrics["power_peak_w"] == pytest.approx(100.0)
    assert reading.metrics["gpus_held"] == 0.25


def test_a_share_of_one_or_more_is_exclusive(fake_nvml, make_meter, clock):
    board = FakeBoard(A, energy_mj=0)
    fake_nvml([board])
    meter = make_meter("0", gpu_share=2.0).start()  # Resources.gpus may be passed as is
    clock.advance(2.0)
    board.energy_mj = 1_000_000
    reading = meter.stop()
    assert reading.tags["energy_shared"] == "false"
    assert "gpu_board_energy_j" not in reading.metrics and "energy_share" not in reading.tags
    assert reading.metrics["energy_j"] == pytest.approx(1000.0)


def test_two_slices_of_one_board_read_the_board_once_and_are_charged_each_share(fake_nvml, make_meter, clock):
    s1, s2 = "MIG-11111111-0000-0000-0000-000000000000", "MIG-22222222-0000-0000-0000-000000000000"
    board = FakeBoard(A, energy_mj=0, migs=[FakeMig(s1, gi=1, sms=14), FakeMig(s2, gi=2, sms=28)], full_profile_sms=98)
    fake = fake_nvml([board])
    meter = make_meter(f"{s1},{s2}").start()
    clock.advance(5.0)
    board.energy_mj = 7_000_000
    reading = meter.stop()
    assert reading.metrics["gpu0_energy_j"] == pytest.approx(1000.0)
    assert reading.metrics["gpu1_energy_j"] == pytest.approx(2000.0)
    assert reading.metrics["gpu_board_energy_j"] == pytest.approx(7000.0)
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2  # start and stop, one board
