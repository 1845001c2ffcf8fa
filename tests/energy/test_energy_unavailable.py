"""No GPU, no driver, no permission: energy is recorded as missing with the reason, never as 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.energy import RunMeter
from orchestrator.testing.fake_nvml import FakeBoard

ENERGY_METRICS = ("energy_j", "gpu_energy_j", "gpu0_energy_j", "power_mean_w", "power_peak_w")


def nvml_works_here() -> bool:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


def assert_unavailable(reading, code: str) -> None:
    assert reading.tags["energy_source"] == "unavailable"
    assert reading.tags["energy_unavailable_reason"].startswith(code + ":")
    assert not set(ENERGY_METRICS) & set(reading.metrics)


@pytest.mark.skipif(nvml_works_here(), reason="this machine has a working NVIDIA driver")
def test_gpu_run_on_this_machine_without_nvidia_driver_records_why(no_rapl):
    reading = RunMeter("0", rapl_root=no_rapl).start().stop()
    code = reading.tags["energy_unavailable_reason"].split(":")[0]
    assert code in ("nvml_library_not_found", "nvml_driver_not_loaded")
    assert_unavailable(reading, code)
    assert reading.metrics["gpus_held"] == 1.0


def test_cpu_run_without_rapl_records_why(no_rapl):
    reading = RunMeter(None, rapl_root=no_rapl).start().stop()
    assert_unavailable(reading, "no_gpu")
    assert "rapl_not_found" in reading.tags["energy_unavailable_reason"]
    assert reading.tags["energy_shared"] == "false"
    assert reading.metrics == {"gpus_held": 0.0}


@pytest.mark.parametrize(
    ("error", "code"),
    [(4, "nvml_no_permission"), (9, "nvml_driver_not_loaded"), (12, "nvml_library_not_found")],
)
def test_nvml_init_errors_are_translated_into_reasons(fake_nvml, make_meter, error, code):
    fake_nvml([FakeBoard("GPU-a")], errors={"nvmlInit": error})
    assert_unavailable(make_meter("0").start().stop(), code)


def test_permission_denied_on_the_counter_makes_the_run_unavailable(fake_nvml, make_meter):
    fake_nvml([FakeBoard("GPU-a")], errors={"nvmlDeviceGetTotalEnergyConsumption": 4})
    reading = make_meter("0").start().stop()
    assert_unavailable(reading, "nvml_no_permission")
    assert reading.tags["gpu_uuid"] == "GPU-a"


def test_a_meter_bug_is_reported_and_never_fails_the_run(fake_nvml, make_meter, monkeypatch):
    fake = fake_nvml([FakeBoard("GPU-a")])
    monkeypatch.setattr(fake, "nvmlDeviceGetMemoryInfo", lambda handle: 1 / 0)
    reading = make_meter("0").start().stop()
    assert_unavailable(reading, "meter_error")


def test_stop_before_start_is_unavailable(make_meter):
    assert_unavailable(make_meter("0").stop(), "meter_not_started")


def test_importing_the_package_does_not_import_pynvml():
    code = "import sys, orchestrator, orchestrator.energy; sys.exit('pynvml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
