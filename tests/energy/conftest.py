"""Fixtures for energy tests: a fake clock, the fake NVML patched where it is used, and fake RAPL sysfs trees."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from orchestrator.energy import RunMeter, _nvml
from orchestrator.testing.fake_nvml import FakeBoard, FakeNVML


class FakeClock:
    """A monotonic clock a test moves by hand."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt_s: float) -> None:
        self.t += dt_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeNVML]:
    """install(boards, errors=None): a FakeNVML patched in as `orchestrator.energy._nvml.pynvml`."""

    def install(boards: list[FakeBoard], errors: dict[str, int] | None = None) -> FakeNVML:
        fake = FakeNVML(boards, errors)
        monkeypatch.setattr(_nvml, "pynvml", fake)
        return fake

    return install


@pytest.fixture
def no_rapl(tmp_path: Path) -> Path:
    """A powercap root with no RAPL domains, so host RAPL never leaks into a test."""
    root = tmp_path / "no-rapl"
    root.mkdir()
    return root


@pytest.fixture
def make_meter(clock: FakeClock, no_rapl: Path) -> Callable[..., RunMeter]:
    """RunMeter with the fake clock, no RAPL and a sampler thread that never wakes (tests call `sample()`)."""

    def make(visible_devices: str | None = "0", gpu_share: float = 1.0, **kwargs: object) -> RunMeter:
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("rapl_root", no_rapl)
        kwargs.setdefault("sample_interval_s", 3600.0)
        kwargs.setdefault("cuda_device_order", "PCI_BUS_ID")
        return RunMeter(visible_devices, gpu_share, **kwargs)  # type: ignore[arg-type]

    return make


class FakePowercap:
    """A powercap sysfs tree in a temporary folder, laid out as the kernel does (`<root>/intel-rapl:0/energy_uj`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, folder: str, name: str, energy_uj: int, max_energy_range_uj: int = 262_143_328_850) -> Path:
        path = self.root / folder
        path.mkdir()
        (path / "name").write_text(f"{name}\n")
        (path / "max_energy_range_uj").write_text(f"{max_energy_range_uj}\n")
        self.set(folder, energy_uj)
        return path

    def set(self, folder: str, energy_uj: int) -> None:
        (self.root / folder / "energy_uj").write_text(f"{energy_uj}\n")


@pytest.fixture
def powercap(tmp_path: Path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")
