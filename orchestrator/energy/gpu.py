"""The GPU seam: a small ABC for one device a run holds, the set a run holds, and the factory that opens it.

`open_gpus` never raises: where nothing can be metered it returns the null object, an empty `GPUSet` that says why.
pynvml is imported only here, inside `open_gpus`, through `orchestrator.energy._nvml`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

from orchestrator.energy.errors import EnergyError


class GPU(ABC):
    """One device as the run sees it: a whole board, or a MIG slice of one. Readings raise `EnergyError`s."""

    def __init__(
        self, uuid: str, name: str, board_uuid: str, board_fraction: float | None, power_api: str | None
    ) -> None:
        # The device's own UUID (GPU-... for a board, MIG-... for a slice).
        self.uuid = uuid
        # Model name as NVML reports it (a slice's name ends in its profile, e.g. "MIG 1g.10gb").
        self.name = name
        # UUID of the physical board whose energy counter and power sensor cover this device.
        self.board_uuid = board_uuid
        # Part of the board this device is: 1.0 for a whole board, a slice's SM fraction, None when unknown.
        self.board_fraction = board_fraction
        # Which NVML power reading `board_power_w` uses ("field_power_instant", "power_usage"), None for none.
        self.power_api = power_api

    @property
    def is_mig(self) -> bool:
        """Whether this device is a MIG slice of a larger board."""
        return self.uuid != self.board_uuid

    @abstractmethod
    def board_energy_mj(self) -> int:
        """The board's total-energy counter, in mJ (NotSupportedError before Volta)."""

    @abstractmethod
    def board_power_w(self) -> float:
        """The board's power draw now, in W."""

    @abstractmethod
    def utilization_pct(self) -> float:
        """Percent of the last sample period in which a kernel ran on this device."""

    @abstractmethod
    def memory_used_bytes(self) -> int:
        """Device memory in use now (board-wide for a whole board, the slice's for MIG)."""


@dataclass(frozen=True)
class GPUSet:
    """The devices one run holds, in `CUDA_VISIBLE_DEVICES` order; empty (the null object) when none can be read."""

    devices: tuple[GPU, ...] = ()
    # Why the run's GPUs could not be opened (code first, see EnergyError); None when opened or none was asked for.
    unavailable_reason: str | None = None


def open_gpus(tokens: Sequence[str], device_order: str | None) -> GPUSet:
    """Open the devices named by parsed `CUDA_VISIBLE_DEVICES` tokens (see `orchestrator.energy.devices`)."""
    if not tokens:
        return GPUSet()
    try:
        from orchestrator.energy import _resolve
    except ImportError as err:  # nvidia-ml-py is a dependency, but a stripped environment may lack it
        return GPUSet(unavailable_reason=f"nvml_not_installed: cannot import pynvml ({err}); pip install nvidia-ml-py")
    try:
        return GPUSet(devices=_resolve.open_devices(tokens, device_order))
    except EnergyError as err:
        return GPUSet(unavailable_reason=str(err))
