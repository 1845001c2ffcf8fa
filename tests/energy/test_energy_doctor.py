"""`diagnose` says which meters work here and why not; `render_report` prints it."""

from __future__ import annotations

import pytest

from orchestrator.energy import diagnose, render_report
from orchestrator.testing.fake_nvml import FakeBoard

VOLTA = FakeBoard("GPU-v100", name="Tesla V100-SXM2-16GB", pci_bus=1, energy_mj=42)
KEPLER = FakeBoard("GPU-k80", name="Tesla K80", pci_bus=2, energy_mj=None, instant_field=False)


def test_on_this_machine_the_report_says_why_energy_is_unavailable(no_rapl):
    report = diagnose(rapl_root=no_rapl)
    if report.status_of("nvml.init") == "ok":
        pytest.skip("this machine has a working NVIDIA driver")
    assert report.status_of("nvml.import") == "ok"
    assert report.gpu_run_source.startswith("unavailable: nvml_")
    assert report.cpu_run_source == "unavailable: rapl_not_found"
    text = render_report(report)
    assert "[FAIL] nvml.init: nvml_" in text
    assert text.splitlines()[-1].startswith("energy_source for a CPU-only run here: unavailable")


def test_each_board_reports_counter_and_power_support(fake_nvml, no_rapl):
    fake_nvml([KEPLER, VOLTA])
    report = diagnose(rapl_root=no_rapl)
    assert report.status_of("gpu0") == "ok"  # PCI order: the V100 first
    assert report.status_of("gpu0.energy_counter") == "ok"
    assert report.status_of("gpu1.energy_counter") == "warn"
    assert report.status_of("gpu1.field_power_instant") == "warn"
    assert report.status_of("gpu1.power_usage") == "ok"
    assert report.gpu_run_source == "nvml_power"  # the K80 has no counter


def test_permission_problems_are_failures_with_the_reason(fake_nvml, no_rapl):
    fake_nvml([VOLTA], errors={"nvmlDeviceGetTotalEnergyConsumption": 4})
    report = diagnose(rapl_root=no_rapl)
    assert report.status_of("gpu0.energy_counter") == "fail"
    assert "nvml_no_permission" in render_report(report)


def test_visible_devices_resolution_is_reported(fake_nvml, no_rapl):
    fake_nvml([VOLTA])
    assert diagnose("0", cuda_device_order="PCI_BUS_ID", rapl_root=no_rapl).status_of("cuda_visible_devices") == "ok"
    bad = diagnose("5", cuda_device_order="PCI_BUS_ID", rapl_root=no_rapl)
    assert bad.status_of("cuda_visible_devices") == "fail"


def test_rapl_domains_are_reported_one_by_one(fake_nvml, powercap):
    fake_nvml([VOLTA])
    powercap.add("intel-rapl:0", "package-0", 5)
    path = powercap.add("intel-rapl:0:0", "core", 5)
    (path / "energy_uj").unlink()
    report = diagnose(rapl_root=powercap.root)
    assert report.status_of("rapl.intel-rapl:0") == "ok"
    assert report.status_of("rapl.intel-rapl:0:0") == "fail"
    assert report.cpu_run_source == "rapl"


def test_power_limits_are_reported_with_their_range_and_whether_they_can_be_set(fake_nvml, no_rapl):
    fake_nvml([FakeBoard("GPU-a", pci_bus=0, limit_mw=500_000),
               FakeBoard("GPU-b", pci_bus=1, limit_settable=False)])
    report = diagnose(rapl_root=no_rapl)
    text = render_report(report)
    assert report.status_of("gpu0.power_limit") == "ok"
    assert "gpu0.power_limit: 500 W (default 700 W, allowed 200 to 700 W); settable" in text
    assert report.status_of("gpu1.power_limit") == "warn"
    assert "not settable here (nvml_no_permission): power-limit sweeps need root or CAP_SYS_ADMIN" in text
