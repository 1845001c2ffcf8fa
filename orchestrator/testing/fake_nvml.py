"""An in-process stand-in for the part of `pynvml` this package calls, for tests and benchmarks without a GPU.

Counter-driven: each board's readings are plain attributes (or zero-argument callables, e.g. of a fake clock) that a
test sets between calls. Errors are real `pynvml.NVMLError`s, so the translation at the boundary is exercised.

    fake = FakeNVML([FakeBoard("GPU-aaaa", pci_bus=1)])
    monkeypatch.setattr(orchestrator.energy._nvml, "pynvml", fake)

Power limits behave as on a data-centre board: a default, a range NVML allows (setting outside it is
NVML_ERROR_INVALID_ARGUMENT), a limit now, and permission (`limit_settable=False`: NVML_ERROR_NO_PERMISSION, as for a
user who is not root). The power a board draws is what it would draw (`power_mw`) capped at its limit; with
`energy_mj=INTEGRATED` its energy counter integrates that draw over `clock`, so a meter sees a lower limit's effect.

`SharedFakeNVML` keeps the boards in a JSON file so that several processes (Ray executors, a driver, a CLI run in a
subprocess) see one node's boards: installed by `orchestrator.energy._nvml` when `ORCHESTRATOR_FAKE_NVML` names the
file. Its `events` list every limit set (time, pid, board, limit), so a test can read back who set and restored what.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator, Union

import pynvml

# A reading is a number, or a zero-argument callable giving one (e.g. a function of a fake clock).
Reading = Union[int, float, Callable[[], Union[int, float]]]
# `FakeBoard.energy_mj` value: the counter integrates the power drawn (capped at the limit) over the board's clock.
INTEGRATED = "integrated"
# Environment variable naming a SharedFakeNVML file; `orchestrator.energy._nvml` then uses it instead of pynvml.
FAKE_NVML_ENV = "ORCHESTRATOR_FAKE_NVML"


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
    # Power limits in mW: the board's default, the range NVML allows, the limit now (None: the default), and whether
    # this user may set them (False: NVML_ERROR_NO_PERMISSION).
    default_limit_mw: int = 700_000
    min_limit_mw: int = 200_000
    max_limit_mw: int = 700_000
    limit_mw: int | None = None
    limit_settable: bool = True
    # Time for an INTEGRATED energy counter, in seconds.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    # INTEGRATED counter state: energy up to `integrated_at` (mJ), folded in whenever the limit changes.
    integrated_mj: float = 0.0
    integrated_at: float | None = None

    def __post_init__(self) -> None:
        for mig in self.migs:
            mig.board = self
        if self.energy_mj == INTEGRATED and self.integrated_at is None:
            self.integrated_at = self.clock()

    @property
    def limit_now_mw(self) -> int:
        return self.default_limit_mw if self.limit_mw is None else self.limit_mw

    def drawn_mw(self) -> int | None:
        """What the board draws now: what it would draw, capped at its power limit (None: no power reading)."""
        if self.power_mw is None:
            return None
        return min(_value(self.power_mw), self.limit_now_mw)

    def energy_now_mj(self) -> int | None:
        if self.energy_mj != INTEGRATED:
            return None if self.energy_mj is None else _value(self.energy_mj)  # type: ignore[arg-type]
        now = self.clock()
        return int(self.integrated_mj + (self.drawn_mw() or 0) * (now - (self.integrated_at or now)))

    def set_limit(self, limit_mw: int) -> None:
        if self.energy_mj == INTEGRATED:  # energy so far was drawn under the old limit
            self.integrated_mj, self.integrated_at = float(self.energy_now_mj() or 0), self.clock()
        self.limit_mw = limit_mw


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
        energy = self._board(handle).energy_now_mj()
        if energy is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return energy

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetPowerUsage")
        drawn = self._board(handle).drawn_mw()
        if drawn is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return drawn

    def nvmlDeviceGetPowerManagementLimit(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetPowerManagementLimit")
        return self._board(handle).limit_now_mw

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: Any) -> int:
        self._enter("nvmlDeviceGetPowerManagementDefaultLimit")
        return self._board(handle).default_limit_mw

    def nvmlDeviceGetPowerManagementLimitConstraints(self, handle: Any) -> list[int]:
        self._enter("nvmlDeviceGetPowerManagementLimitConstraints")
        board = self._board(handle)
        return [board.min_limit_mw, board.max_limit_mw]

    def nvmlDeviceSetPowerManagementLimit(self, handle: Any, limit_mw: int) -> None:
        self._enter("nvmlDeviceSetPowerManagementLimit")
        board = self._board(handle)
        if not board.limit_settable:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
        if not board.min_limit_mw <= limit_mw <= board.max_limit_mw:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        board.set_limit(int(limit_mw))

    def nvmlDeviceGetFieldValues(self, handle: Any, field_ids: list[int]) -> list[SimpleNamespace]:
        self._enter("nvmlDeviceGetFieldValues")
        return [self._field(self._board(handle), field_id) for field_id in field_ids]

    def _field(self, board: FakeBoard, field_id: int) -> SimpleNamespace:
        ok = field_id == pynvml.NVML_FI_DEV_POWER_INSTANT and board.instant_field and board.power_mw is not None
        value = SimpleNamespace(uiVal=board.drawn_mw() if ok else 0)
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


# FakeBoard fields a SharedFakeNVML file keeps (no MIG slices, plain numbers only).
_SHARED_FIELDS = ("uuid", "name", "pci_bus", "energy_mj", "power_mw", "instant_field", "util_pct", "memory_used_bytes",
                  "default_limit_mw", "min_limit_mw", "max_limit_mw", "limit_mw", "limit_settable", "integrated_mj",
                  "integrated_at")


class SharedFakeNVML(FakeNVML):
    """A FakeNVML whose boards live in a JSON file, shared by every process that opens it: each call reads the
    boards' state, and setting a limit writes it back (under a file lock) and appends to the file's `events`.
    Energy counters are INTEGRATED over wall-clock time, so they agree across processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(self._read()["boards"])

    @classmethod
    def create(cls, path: str | os.PathLike[str], boards: list[FakeBoard]) -> SharedFakeNVML:
        """Write `boards` (whole boards; their clocks become wall time) to `path` and open it."""
        rows = [{name: getattr(b, name) for name in _SHARED_FIELDS} for b in boards]
        for row in rows:
            if callable(row["power_mw"]) or callable(row["energy_mj"]):
                raise ValueError("a shared fake board takes plain numbers, not callables")
            row["energy_mj"], row["integrated_at"] = INTEGRATED, time.time()
        Path(path).write_text(json.dumps({"boards": rows, "events": []}))
        return cls(path)

    def events(self) -> list[dict[str, Any]]:
        """Every limit set through any process: {t, pid, uuid, limit_mw}, in order."""
        return list(self._load()["events"])

    def _load(self) -> dict[str, Any]:
        with self._locked(fcntl.LOCK_SH):
            return json.loads(self.path.read_text())  # type: ignore[no-any-return]

    def _read(self) -> dict[str, Any]:
        state = self._load()
        state["boards"] = [FakeBoard(**row, clock=time.time) for row in state["boards"]]
        return state

    @contextmanager
    def _locked(self, mode: int) -> Iterator[None]:
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, mode)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _enter(self, name: str) -> None:
        super()._enter(name)
        self._refresh(self._load())

    def _refresh(self, state: dict[str, Any]) -> None:
        rows = {row["uuid"]: row for row in state["boards"]}
        for board in self.boards:  # keep the handles this process holds; refresh what they say
            for name in ("limit_mw", "limit_settable", "integrated_mj", "integrated_at", "power_mw"):
                setattr(board, name, rows[board.uuid][name])

    def nvmlDeviceSetPowerManagementLimit(self, handle: Any, limit_mw: int) -> None:
        FakeNVML._enter(self, "nvmlDeviceSetPowerManagementLimit")
        board = self._board(handle)
        with self._locked(fcntl.LOCK_EX):
            state = json.loads(self.path.read_text())
            self._refresh(state)
            if not board.limit_settable:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NO_PERMISSION)
            if not board.min_limit_mw <= limit_mw <= board.max_limit_mw:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
            board.set_limit(int(limit_mw))
            row = next(r for r in state["boards"] if r["uuid"] == board.uuid)
            row.update(limit_mw=board.limit_mw, integrated_mj=board.integrated_mj, integrated_at=board.integrated_at)
            state["events"].append({"t": time.time(), "pid": os.getpid(), "uuid": board.uuid,
                                    "limit_mw": int(limit_mw)})
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.path)
