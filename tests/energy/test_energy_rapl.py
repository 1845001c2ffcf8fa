"""CPU package energy from RAPL sysfs: wrap-around, packages only, and its place beside GPU energy."""

from __future__ import annotations

import pytest

from orchestrator.energy import RunMeter
from orchestrator.energy.errors import EnergyUnavailableError
from orchestrator.testing.fake_nvml import FakeBoard
from orchestrator.energy.rapl import list_domains, open_packages, wrap_delta_uj

MAX_UJ = 1_000_000_000


def test_wrap_delta_counts_through_the_wrap():
    assert wrap_delta_uj(100, 350, MAX_UJ) == 250
    assert wrap_delta_uj(MAX_UJ - 1_000, 2_000, MAX_UJ) == 3_000


def test_cpu_only_run_measures_package_energy_across_a_wrap(powercap, clock):
    powercap.add("intel-rapl:0", "package-0", MAX_UJ - 1_000_000, MAX_UJ)
    meter = RunMeter(None, rapl_root=powercap.root, clock=clock, sample_interval_s=3600).start()
    clock.advance(1.0)
    powercap.set("intel-rapl:0", 1_000_000)  # wrapped: 2 J since start
    meter.sample()
    clock.advance(1.0)
    powercap.set("intel-rapl:0", 3_000_000)
    reading = meter.stop()
    assert reading.metrics["cpu_energy_j"] == pytest.approx(4.0)
    assert reading.metrics["energy_j"] == pytest.approx(4.0)
    assert reading.metrics["power_mean_w"] == pytest.approx(2.0)
    assert reading.metrics["power_peak_w"] == pytest.approx(2.0)
    assert reading.tags["energy_source"] == "rapl"
    assert reading.tags["energy_shared"] == "true"  # the package is node-wide


def test_only_package_domains_are_summed(powercap):
    powercap.add("intel-rapl:0", "package-0", 0)
    powercap.add("intel-rapl:0:0", "core", 0)
    powercap.add("intel-rapl:0:1", "dram", 0)
    powercap.add("intel-rapl:1", "package-1", 0)
    powercap.add("intel-rapl:2", "psys", 0)
    packages = open_packages(powercap.root)
    for folder in ("intel-rapl:0", "intel-rapl:0:0", "intel-rapl:0:1", "intel-rapl:1", "intel-rapl:2"):
        powercap.set(folder, 1_000_000)
    packages.update()
    assert packages.energy_j == pytest.approx(2.0)
    assert len(list_domains(powercap.root)) == 5


def test_unreadable_counter_is_unavailable_with_the_reason(powercap):
    path = powercap.add("intel-rapl:0", "package-0", 0)
    (path / "energy_uj").unlink()
    (path / "energy_uj").mkdir()  # reads fail as they would without permission
    with pytest.raises(EnergyUnavailableError) as caught:
        open_packages(powercap.root)
    assert caught.value.code == "rapl_unreadable"


def test_gpu_run_keeps_cpu_energy_in_its_own_metric(fake_nvml, powercap, clock):
    board = FakeBoard("GPU-a", energy_mj=0)
    fake_nvml([board])
    powercap.add("intel-rapl:0", "package-0", 0)
    meter = RunMeter("0", rapl_root=powercap.root, clock=clock, sample_interval_s=3600).start()
    clock.advance(2.0)
    board.energy_mj = 500_000
    powercap.set("intel-rapl:0", 60_000_000)
    reading = meter.stop()
    assert reading.metrics["energy_j"] == pytest.approx(500.0)  # energy_j is what energy_source measured
    assert reading.metrics["cpu_energy_j"] == pytest.approx(60.0)
    assert reading.tags["energy_source"] == "nvml_counter"


def test_gpu_run_without_rapl_says_why_cpu_energy_is_missing(fake_nvml, no_rapl, clock):
    fake_nvml([FakeBoard("GPU-a")])
    reading = RunMeter("0", rapl_root=no_rapl, clock=clock).start().stop()
    assert "cpu_energy_j" not in reading.metrics
    assert reading.tags["cpu_energy_unavailable_reason"].startswith("rapl_not_found:")
