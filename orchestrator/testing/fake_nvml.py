"""An in-process stand-in for the part of `pynvml` this package calls, for tests and benchmarks without a GPU.

Counter-driven: each board's readings are plain attributes (or zero-argument callables, e.g. of a fake clock) that a
test sets between calls. Errors are real `pynvml.NVMLError`s, so the translation at the boundary is exercised.

    fake = FakeNVML([FakeBoard("GPU-aaaa", pci_bus=1)])
    monkeypatch.setattr(orchestrator.energy._nvml, "pynvml", fake)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Union

import pynvml

# A reading is a number, or a zero-argument callable giving one (e.g. a function of a fake clock).
Reading = Union[int, float, Callable[[], Union[int, float]]]


def _value(reading: Reading) -> int:
    return int(reading() if callable(reading) else reading)


@dataclass
class FakeMig:
    """A MIG slice: no energy counter and no power reading of its own, as on real hardware."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    gi: int = 1
    ci: int = 0
    sms: int = 16
    memory_used_bytes: Reading = 0
    board: FakeBoard | None = None


@dataclass
class FakeBoard:
    """A physical GPU. `energy_mj`/`power_mw` None means the board does not support that reading."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    pci_bus: int = 0
    energy_mj: Reading | None = 0
    power_mw: Reading | None = 300_000
    # Whether the NVML_FI_DEV_POWER_INSTANT field answers (else only nvmlDeviceGetPowerUsage).
    instant_field: bool = True
    util_pct: Reading = 0
    memory_used_bytes: Reading = 0
    migs: list[FakeMig] = field(default_factory=list)
    full_profile_sms: int = 112

    def __post_init__(self) -> None:
        for mig in self.migs:
            mig.board = self


class FakeNVML:
    """Module-like object with pynvml's names. `errors` maps a function name to the NVML error code it raises."""

    NVMLError = pynvml.NVMLError

    def __init__(self, boards: list[FakeBoard], errors: dict[str, int] | None = None) -> None:
        self.boards = boards
        self.errors = dict(errors or {})
        self.calls: Counter[str] = Counter()
        for name in dir(pynvml):
            if name.startswith("NVML_") and not callable(getattr(pynvml, name)):
                setattr(self, name, getattr(pynvml, name))

    def _enter(self, name: str) -> None:
        self.calls[name] += 1
        if name in self.errors:
            raise pynvml.NVMLError(self.errors[name])

    def _board(self, handle: Any) -> FakeBoard:
        if not isinstance(handle, FakeBoard):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle

    def nvmlInit(self) -> None:
        self._enter("nvmlInit")

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.boards)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeBoard:
        self._enter("nvmlDeviceGetHandleByIndex")
        return self.boards[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeBoard | FakeMig:
        self._enter("nvmlDeviceGetHandleByUUID")
        devices: list[FakeBoard | FakeMig] = [*self.boards, *(m for b in self.boards for m in b.migs)]
        for device in devices:
            if device.uuid == uuid:
                return device
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetUUID(self, handle: FakeBoard | FakeMig) -> str:
        self._enter("nvmlDeviceGetUUID")
        return handle.uuid

    def nvmlDeviceGetName(self, handle: FakeBoard | FakeMig) -> str:
        self._enter("nvmlDeviceGetName")
        return handle.name

    def nvmlDeviceGetPciInfo(self, handle: FakeBoard) -> SimpleNamespace:
        self._enter("nvmlDeviceGetPciInfo")
        board = self._board(handle)
        return SimpleNamespace(domain=0, bus=board.pci_bus, device=0, busId=f"00000000:{board.pci_bus:02X}:00.0")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetTotalEnergyConsumption")
        board = self._board(handle)
        if board.energy_mj is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return _value(board.energy_mj)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetPowerUsage")
        board = self._board(handle)
        if board.power_mw is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return _value(board.power_mw)

    def nvmlDeviceGetFieldValues(self, handle: Any, field_ids: list[int]) -> list[SimpleNamespace]:
        self._enter("nvmlDeviceGetFieldValues")
        return [self._field(self._board(handle), field_id) for field_id in field_ids]

    def _field(self, board: FakeBoard, field_id: int) -> SimpleNamespace:
        ok = field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and board.instant_field and board.power_mw is not None
        value = SimpleNamespace(uiVal=_value(board.power_mw) if ok else 0)  # type: ignore[arg-type]
        ret = pynvml.NVML_SUCCESS if ok else pynvml.NVML_ERROR_NOT_SUPPORTED
        value_type = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
        return SimpleNamespace(fieldId=field_id, nvmlReturn=ret, valueType=value_type, value=value)

    def nvmlDeviceGetUtilizationRates(self, handle: Any) -> SimpleNamespace:
        self._enter("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=_value(self._board(handle).util_pct), memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle: FakeBoard | FakeMig) -> SimpleNamespace:
        self._enter("nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(used=_value(handle.memory_used_bytes), total=80 * 2**30, free=0)

    def nvmlDeviceGetMigMode(self, handle: Any) -> list[int]:
        self._enter("nvmlDeviceGetMigMode")
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if self._board(handle).migs else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> FakeMig:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex")
        migs = self._board(handle).migs
        if index >= len(migs):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return migs[index]

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: FakeMig) -> FakeBoard:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle")
        if not isinstance(handle, FakeMig) or handle.board is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return handle.board

    def nvmlDeviceGetGpuInstanceId(self, handle: FakeMig) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId")
        return handle.gi

    def nvmlDeviceGetComputeInstanceId(self, handle: FakeMig) -> int:
        self._enter("nvmlDeviceGetComputeInstanceId")
        return handle.ci

    def nvmlDeviceGetAttributes_v2(self, handle: FakeMig) -> SimpleNamespace:
        self._enter("nvmlDeviceGetAttributes_v2")
        return SimpleNamespace(multiprocessorCount=handle.sms)

    def nvmlDeviceGetGpuInstanceProfileInfo(self, handle: Any, profile: int) -> SimpleNamespace:
        self._enter("nvmlDeviceGetGpuInstanceProfileInfo")
        return SimpleNamespace(multiprocessorCount=self._board(handle).full_profile_sms, sliceCount=7)
