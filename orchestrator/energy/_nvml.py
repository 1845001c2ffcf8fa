"""The NVML boundary: every pynvml call of the package goes through this module, and its errors are translated here.

Not imported by `orchestrator.energy`; `gpu.open_gpus`, `doctor` and `power_limits` load it when needed. Tests replace
the module-level name `pynvml` (e.g. with `orchestrator.testing.fake_nvml.FakeNVML`), or, for processes they start
(Ray executors, a CLI run), set ORCHESTRATOR_FAKE_NVML to a `SharedFakeNVML` file; the board table is cached per pynvml
object.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pynvml

if os.environ.get("ORCHESTRATOR_FAKE_NVML"):  # the testing seam: one fake node shared by the processes of a test
    from orchestrator.testing.fake_nvml import SharedFakeNVML

    pynvml = SharedFakeNVML(os.environ["ORCHESTRATOR_FAKE_NVML"])  # type: ignore[assignment]  # noqa: F811

from orchestrator.energy.errors import EnergyError, EnergyUnavailableError, NotSupportedError
from orchestrator.energy.gpu import GPU

POWER_INSTANT = "field_power_instant"
POWER_USAGE = "power_usage"
_FIELD_VALUE_ATTRS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
_lock = threading.Lock()
_cache: dict[str, Any] = {"module": None, "boards": ()}


def _error_codes() -> dict[int, tuple[str, str]]:
    return {
        pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: ("nvml_library_not_found", "no NVIDIA driver on this node"),
        pynvml.NVML_ERROR_DRIVER_NOT_LOADED: ("nvml_driver_not_loaded", "load the NVIDIA kernel driver"),
        pynvml.NVML_ERROR_NO_PERMISSION: ("nvml_no_permission", "this user may not query the GPU"),
        pynvml.NVML_ERROR_NOT_FOUND: ("device_not_found", "no such device on this node"),
        pynvml.NVML_ERROR_GPU_IS_LOST: ("gpu_lost", "the GPU stopped responding"),
    }


def translate(err: Exception, what: str) -> EnergyError:
    """The project's error for an NVML error met while doing `what`."""
    value = getattr(err, "value", None)
    if value == pynvml.NVML_ERROR_NOT_SUPPORTED:
        return NotSupportedError("not_supported", f"{what}: not supported on this device")
    code, hint = _error_codes().get(value, ("nvml_error", "unexpected NVML error"))  # type: ignore[arg-type]
    return EnergyUnavailableError(code, f"{what}: {err} ({hint})")


def call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), with NVML errors translated."""
    try:
        return fn(*args)
    except pynvml.NVMLError as err:
        raise translate(err, what) from err


@dataclass(frozen=True)
class Board:
    """One physical GPU of this node."""

    handle: Any
    uuid: str
    name: str
    # (domain, bus, device): CUDA's PCI_BUS_ID order sorts on this.
    pci: tuple[int, int, int]
    power_api: str | None
    mig_enabled: bool


def boards() -> tuple[Board, ...]:
    """This node's boards in PCI bus order; initialises NVML once per process (and per pynvml object)."""
    with _lock:
        if _cache["module"] is not pynvml:
            call("initialising NVML", pynvml.nvmlInit)
            _cache["boards"] = _scan_boards()
            _cache["module"] = pynvml
        return _cache["boards"]  # type: ignore[no-any-return]


def _scan_boards() -> tuple[Board, ...]:
    count = call("counting GPUs", pynvml.nvmlDeviceGetCount)
    handles = [call(f"opening GPU {i}", pynvml.nvmlDeviceGetHandleByIndex, i) for i in range(count)]
    return tuple(sorted((_board(h) for h in handles), key=lambda b: b.pci))


def _board(handle: Any) -> Board:
    pci = call("reading PCI info", pynvml.nvmlDeviceGetPciInfo, handle)
    return Board(
        handle=handle,
        uuid=uuid_of(handle),
        name=name_of(handle),
        pci=(int(pci.domain), int(pci.bus), int(pci.device)),
        power_api=probe_power_api(handle),
        mig_enabled=mig_enabled(handle),
    )


def uuid_of(handle: Any) -> str:
    return str(call("reading the UUID", pynvml.nvmlDeviceGetUUID, handle))


def name_of(handle: Any) -> str:
    return str(call("reading the name", pynvml.nvmlDeviceGetName, handle))


def mig_enabled(handle: Any) -> bool:
    """Whether the board is in MIG mode now (False where MIG is not supported)."""
    try:
        return bool(call("reading MIG mode", pynvml.nvmlDeviceGetMigMode, handle)[0] == pynvml.NVML_DEVICE_MIG_ENABLE)
    except EnergyError:
        return False


def probe_power_api(handle: Any) -> str | None:
    """The best power reading this board answers: the instant field, else the (averaged) power usage, else None."""
    for api in (POWER_INSTANT, POWER_USAGE):
        try:
            read_power_w(handle, api)
            return api
        except EnergyError:
            continue
    return None


def read_power_w(handle: Any, api: str) -> float:
    """Board power in W through `api` (NVML reports mW)."""
    if api == POWER_USAGE:
        return float(call("reading power usage", pynvml.nvmlDeviceGetPowerUsage, handle)) / 1000.0
    what = "reading field NVML_FI_DEV_POWER_INSTANT"
    value = call(what, pynvml.nvmlDeviceGetFieldValues, handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise translate(pynvml.NVMLError(value.nvmlReturn), what)
    return float(getattr(value.value, _FIELD_VALUE_ATTRS[value.valueType])) / 1000.0


def power_limit_mw(handle: Any) -> int:
    """The board's power limit now, in mW."""
    return int(call("reading the power limit", pynvml.nvmlDeviceGetPowerManagementLimit, handle))


def default_power_limit_mw(handle: Any) -> int:
    return int(call("reading the default power limit", pynvml.nvmlDeviceGetPowerManagementDefaultLimit, handle))


def power_limit_range_mw(handle: Any) -> tuple[int, int]:
    """(min, max) power limit the board accepts, in mW."""
    low, high = call("reading the power-limit range", pynvml.nvmlDeviceGetPowerManagementLimitConstraints, handle)
    return int(low), int(high)


def set_power_limit_mw(handle: Any, limit_mw: int) -> None:
    """Set the board's power limit (needs root or CAP_SYS_ADMIN: EnergyUnavailableError nvml_no_permission)."""
    call(f"setting the power limit to {limit_mw / 1000:g} W", pynvml.nvmlDeviceSetPowerManagementLimit, handle,
         int(limit_mw))


def energy_counter_mj(handle: Any) -> int:
    return int(call("reading the total-energy counter", pynvml.nvmlDeviceGetTotalEnergyConsumption, handle))


def handle_by_uuid(uuid: str) -> Any:
    return call(f"looking up {uuid}", pynvml.nvmlDeviceGetHandleByUUID, uuid)


def parent_of(mig_handle: Any) -> Any:
    return call("finding a MIG slice's board", pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle, mig_handle)


def mig_handles(board_handle: Any) -> Iterator[Any]:
    """The MIG slices that exist on a board in MIG mode."""
    for index in range(call("counting MIG slots", pynvml.nvmlDeviceGetMaxMigDeviceCount, board_handle)):
        try:
            yield call("opening a MIG slice", pynvml.nvmlDeviceGetMigDeviceHandleByIndex, board_handle, index)
        except EnergyError:
            continue  # an empty slot


def mig_ids(mig_handle: Any) -> tuple[int, int]:
    """(GPU-instance id, compute-instance id) of a slice."""
    gi = call("reading the GPU-instance id", pynvml.nvmlDeviceGetGpuInstanceId, mig_handle)
    return int(gi), int(call("reading the compute-instance id", pynvml.nvmlDeviceGetComputeInstanceId, mig_handle))


def mig_fraction(mig_handle: Any, board_handle: Any) -> float | None:
    """A slice's SMs over the full board's (its 7-slice GPU-instance profile), or None when NVML cannot say."""
    try:
        slice_sms = call("reading slice attributes", pynvml.nvmlDeviceGetAttributes_v2, mig_handle).multiprocessorCount
        profile = pynvml.NVML_GPU_INSTANCE_PROFILE_7_SLICE
        full = call("reading the full profile", pynvml.nvmlDeviceGetGpuInstanceProfileInfo, board_handle, profile)
    except EnergyError:
        return None
    return slice_sms / full.multiprocessorCount if full.multiprocessorCount and slice_sms else None


class NVMLGPU(GPU):
    """A device read through NVML; energy and power come from its board (MIG slices have neither)."""

    def __init__(self, handle: Any, board: Board, uuid: str, name: str, board_fraction: float | None) -> None:
        super().__init__(uuid, name, board.uuid, board_fraction, board.power_api)
        self._handle = handle
        self._board_handle = board.handle

    def board_energy_mj(self) -> int:
        return energy_counter_mj(self._board_handle)

    def board_power_w(self) -> float:
        if self.power_api is None:
            raise NotSupportedError("not_supported", f"no NVML power reading on {self.board_uuid}")
        return read_power_w(self._board_handle, self.power_api)

    def utilization_pct(self) -> float:
        return float(call("reading utilization", pynvml.nvmlDeviceGetUtilizationRates, self._handle).gpu)

    def memory_used_bytes(self) -> int:
        return int(call("reading memory", pynvml.nvmlDeviceGetMemoryInfo, self._handle).used)
