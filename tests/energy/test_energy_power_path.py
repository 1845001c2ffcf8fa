"""GPUs without the energy counter: power is sampled in the background and integrated by the trapezoid rule."""

from __future__ import annotations

import math
import time

import pytest

from orchestrator.energy import RunMeter
from orchestrator.energy._tracks import trapezoid_j
from orchestrator.testing.fake_nvml import FakeBoard

UUID = "GPU-0b1d0000-0000-0000-0000-00000000000a"


def power_w(t_s: float) -> float:
    """A known trace: 250 W with a 100 W swing every 3 s."""
    return 250.0 + 100.0 * math.sin(2 * math.pi * t_s / 3.0)


def energy_j(t_s: float) -> float:
    """The trace's exact integral from 0 to t_s."""
    return 250.0 * t_s + 100.0 * 3.0 / (2 * math.pi) * (1 - math.cos(2 * math.pi * t_s / 3.0))


def test_trapezoid_of_a_known_trace_is_within_one_percent_of_the_analytic_energy(fake_nvml, make_meter, clock):
    t0 = clock.t
    fake_nvml([FakeBoard(UUID, energy_mj=None, power_mw=lambda: 1000 * power_w(clock.t - t0))])
    meter = make_meter("0", sample_interval_s=0.1).start()
    for _ in range(82):  # 8.2 s at the default 100 ms
        clock.advance(0.1)
        meter.sample()
    reading = meter.stop()
    assert reading.tags["energy_source"] == "nvml_power"
    assert reading.metrics["energy_j"] == pytest.approx(energy_j(8.2), rel=0.01)
    assert reading.metrics["power_peak_w"] == pytest.approx(350.0, rel=0.01)


def test_instant_power_field_is_preferred_over_the_averaged_power_usage(fake_nvml, make_meter, clock):
    fake = fake_nvml([FakeBoard(UUID, energy_mj=None, power_mw=120_000)])
    meter = make_meter("0").start()
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.tags["gpu_power_api"] == "field_power_instant"
    assert reading.metrics["energy_j"] == pytest.approx(240.0)
    assert fake.calls["nvmlDeviceGetPowerUsage"] == 0


def test_power_usage_is_used_where_the_driver_lacks_the_instant_field(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(UUID, energy_mj=None, power_mw=80_000, instant_field=False)])
    meter = make_meter("0").start()
    clock.advance(1.5)
    reading = meter.stop()
    assert reading.tags["gpu_power_api"] == "power_usage"
    assert reading.metrics["energy_j"] == pytest.approx(120.0)


def test_a_board_with_neither_counter_nor_power_is_unavailable(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(UUID, energy_mj=None, power_mw=None)])
    meter = make_meter("0").start()
    clock.advance(1.0)
    reading = meter.stop()
    assert "energy_j" not in reading.metrics
    assert reading.tags["energy_unavailable_reason"].startswith("energy_not_supported:")
    assert reading.tags["gpu_uuid"] == UUID  # what could be read still is


def test_background_sampler_integrates_at_its_interval(fake_nvml, no_rapl):
    fake = fake_nvml([FakeBoard(UUID, energy_mj=None, power_mw=100_000)])
    meter = RunMeter("0", sample_interval_s=0.01, rapl_root=no_rapl).start()
    time.sleep(0.3)
    reading = meter.stop()
    assert fake.calls["nvmlDeviceGetFieldValues"] >= 10
    assert reading.metrics["power_mean_w"] == pytest.approx(100.0)


def test_trapezoid_rule_on_a_ramp_is_exact():
    assert trapezoid_j([(0.0, 0.0), (1.0, 100.0), (3.0, 100.0)]) == pytest.approx(50.0 + 200.0)
