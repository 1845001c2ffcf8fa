"""`orchestrator doctor`: which energy meters work here and why not; a report, so it always exits 0."""

from __future__ import annotations

import pytest

from orchestrator.cli.main import main
from orchestrator.energy import _nvml
from orchestrator.testing.fake_nvml import FakeBoard, FakeNVML


def test_doctor_says_why_nvml_is_unavailable_here_and_exits_0(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    if "[ ok ] nvml.init" in out:
        pytest.skip("this machine has a working NVIDIA driver")
    assert "[FAIL] nvml.init: nvml_" in out  # the reason code, then what it means
    assert "energy_source for a GPU run here: unavailable: nvml_" in out


def test_doctor_reports_each_board_and_how_cuda_visible_devices_resolves(capsys, monkeypatch):
    monkeypatch.setattr(_nvml, "pynvml", FakeNVML([FakeBoard("GPU-h100", pci_bus=1, energy_mj=42)]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[ ok ] gpu0: NVIDIA H100 80GB HBM3 GPU-h100" in out
    assert "[ ok ] cuda_visible_devices: '0': 0 -> GPU-h100" in out
    assert "energy_source for a GPU run here: nvml_counter" in out
