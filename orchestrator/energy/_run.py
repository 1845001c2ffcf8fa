"""The live state of one metered run: what was opened at start, and running statistics updated by each sample."""

from __future__ import annotations

import os
from typing import Callable, Iterable, Sequence, TypeVar

from orchestrator.energy import rapl
from orchestrator.energy._tracks import BoardTrack
from orchestrator.energy.errors import EnergyError
from orchestrator.energy.gpu import GPU, open_gpus
from orchestrator.energy.share import device_share

T = TypeVar("T")


def _read(fn: Callable[[], T]) -> T | None:
    try:
        return fn()
    except EnergyError:
        return None


class RunState:
    """Opened by `RunMeter.start`, sampled under the meter's lock, summarised by `_reading` at stop."""

    def __init__(
        self, tokens: Sequence[str], gpu_share: float, device_order: str | None, rapl_root: os.PathLike[str] | str
    ) -> None:
        self.tokens = tuple(tokens)
        self.gpu_share = gpu_share
        self.devices: tuple[GPU, ...] = ()
        self.shares: tuple[float, ...] = ()
        self.boards: dict[str, BoardTrack] = {}
        self.gpu_reason = self._open_gpus(device_order) if tokens else None
        self.cpu, self.cpu_reason = _open_cpu(rapl_root)
        self.util_sum_pct, self.util_samples = 0.0, 0
        self.mem_peak_bytes: list[int | None] = [None] * len(self.devices)
        self.gpu_power_w: float | None = None
        self.gpu_power_peak_w: float | None = None
        self.cpu_power_w: float | None = None
        self.cpu_power_peak_w: float | None = None
        self.util_pct: float | None = None
        self.mem_used_bytes: int | None = None
        # Per device, in CUDA_VISIBLE_DEVICES order, at the last sample: the run's share of its board's power, its
        # utilisation and memory in use (None where not read).
        self.device_power_w: list[float | None] = [None] * len(self.devices)
        self.device_util_pct: list[float | None] = [None] * len(self.devices)
        self.device_mem_bytes: list[int | None] = [None] * len(self.devices)
        self._cpu_last: tuple[float, float] | None = None

    def _open_gpus(self, device_order: str | None) -> str | None:
        """Open devices and board tracks; the reason GPU energy is unavailable, or None."""
        opened = open_gpus(self.tokens, device_order)
        self.devices = opened.devices
        if opened.unavailable_reason:
            return opened.unavailable_reason
        shares = [device_share(gpu, self.gpu_share) for gpu in self.devices]
        if any(share is None for share in shares):
            return "mig_share_unknown: NVML did not say what fraction of its board the MIG slice is"
        self.shares = tuple(s for s in shares if s is not None)
        try:
            for gpu in self.devices:
                if gpu.board_uuid not in self.boards:
                    self.boards[gpu.board_uuid] = BoardTrack(gpu)
        except EnergyError as err:
            self.boards = {}
            return str(err)
        return _unsupported_reason(self.boards.values())

    @property
    def gpu_energy_available(self) -> bool:
        return bool(self.tokens) and self.gpu_reason is None

    def sample(self, t: float) -> None:
        """One round of readings at clock time `t`."""
        self._sample_power(t)
        self.device_util_pct = [_read(d.utilization_pct) for d in self.devices]
        utils = [u for u in self.device_util_pct if u is not None]
        self.util_pct = sum(utils) / len(utils) if utils else None
        if self.util_pct is not None:
            self.util_sum_pct += self.util_pct
            self.util_samples += 1
        used = [_read(device.memory_used_bytes) for device in self.devices]
        self.device_mem_bytes = used
        for i, value in enumerate(used):
            if value is not None:
                self.mem_peak_bytes[i] = max(value, self.mem_peak_bytes[i] or 0)
        self.mem_used_bytes = max((u for u in used if u is not None), default=None)
        self._sample_cpu(t)

    def _sample_power(self, t: float) -> None:
        per_board = {uuid: board.add_power(t) for uuid, board in self.boards.items()}
        self.device_power_w = [None if per_board.get(d.board_uuid) is None else share * per_board[d.board_uuid]
                               for d, share in zip(self.devices, self.shares)] if self.boards else []
        self.gpu_power_w = self._apportion(per_board)
        if self.gpu_power_w is not None:
            self.gpu_power_peak_w = max(self.gpu_power_w, self.gpu_power_peak_w or 0.0)

    def _sample_cpu(self, t: float) -> None:
        if self.cpu is None:
            return
        try:
            self.cpu.update()
        except EnergyError:
            return
        if self._cpu_last is not None and t > self._cpu_last[0]:
            self.cpu_power_w = (self.cpu.energy_j - self._cpu_last[1]) / (t - self._cpu_last[0])
            self.cpu_power_peak_w = max(self.cpu_power_w, self.cpu_power_peak_w or 0.0)
        self._cpu_last = (t, self.cpu.energy_j)

    @property
    def measures_energy(self) -> bool:
        """Whether `energy_j` can be measured: the GPUs' for a GPU run, RAPL's for a run holding none."""
        return self.gpu_energy_available if self.tokens else self.cpu is not None

    def energy_so_far_j(self) -> float | None:
        """The run's energy since start as its final `energy_j` will count it, for the live curve."""
        if not self.measures_energy:
            return None
        if not self.tokens:
            return self.cpu.energy_j  # type: ignore[union-attr]
        return self._apportion({uuid: board.energy_so_far_j() for uuid, board in self.boards.items()})

    def _apportion(self, per_board: dict[str, float | None]) -> float | None:
        """The run's part of per-board values (power, energy): sum of share x its board's; None if any is missing."""
        if not self.boards:
            return None
        values = [per_board[d.board_uuid] for d in self.devices]
        if None in values:
            return None
        return sum(share * value for share, value in zip(self.shares, values) if value is not None)


def _open_cpu(root: os.PathLike[str] | str) -> tuple[rapl.PackageEnergy | None, str | None]:
    try:
        return rapl.open_packages(root), None
    except EnergyError as err:
        return None, str(err)


def _unsupported_reason(boards: Iterable[BoardTrack]) -> str | None:
    for board in boards:
        if board.counter_start_mj is None and board.gpu.power_api is None:
            return f"energy_not_supported: {board.gpu.board_uuid} has neither the energy counter nor a power reading"
    return None
