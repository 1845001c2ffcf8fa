"""From `CUDA_VISIBLE_DEVICES` tokens to NVML devices, by UUID, never by position (rules: `energy.devices`)."""

from __future__ import annotations

from typing import Any, Sequence

from orchestrator.energy import _nvml
from orchestrator.energy.devices import TokenKind, parse_legacy_mig, token_kind
from orchestrator.energy.errors import EnergyUnavailableError
from orchestrator.energy.gpu import GPU


def open_devices(tokens: Sequence[str], device_order: str | None) -> tuple[GPU, ...]:
    """One device per token, in order; raises EnergyUnavailableError for any token it cannot resolve."""
    boards = _nvml.boards()
    return tuple(open_device(token, boards, device_order) for token in tokens)


def open_device(token: str, boards: Sequence[_nvml.Board], device_order: str | None) -> GPU:
    kind = token_kind(token)
    if kind is TokenKind.INDEX:
        return _whole(_by_index(int(token), boards, device_order))
    if kind is TokenKind.GPU_UUID:
        return _whole(_by_uuid(token, boards))
    if kind is TokenKind.MIG_UUID:
        return _slice(_nvml.handle_by_uuid(token), boards)
    board_uuid, gi, ci = parse_legacy_mig(token)
    return _slice(_legacy_mig_handle(_by_uuid(board_uuid, boards), gi, ci, token), boards)


def _by_index(index: int, boards: Sequence[_nvml.Board], device_order: str | None) -> _nvml.Board:
    if index >= len(boards):
        raise EnergyUnavailableError("device_not_found", f"CUDA index {index}, but this node has {len(boards)} GPU(s)")
    if device_order != "PCI_BUS_ID" and len({b.name for b in boards}) > 1:
        raise EnergyUnavailableError(
            "device_order_ambiguous",
            f"CUDA index {index} on a node with mixed GPU models depends on CUDA's FASTEST_FIRST order; "
            "set CUDA_DEVICE_ORDER=PCI_BUS_ID or put GPU UUIDs in CUDA_VISIBLE_DEVICES",
        )
    return boards[index]


def _by_uuid(token: str, boards: Sequence[_nvml.Board]) -> _nvml.Board:
    matches = [b for b in boards if b.uuid == token] or [b for b in boards if b.uuid.startswith(token)]
    if len(matches) != 1:
        found = "matches several GPUs" if matches else "matches no GPU on this node"
        raise EnergyUnavailableError("device_not_found", f"{token} {found}")
    return matches[0]


def _whole(board: _nvml.Board) -> GPU:
    if board.mig_enabled:
        raise EnergyUnavailableError(
            "mig_device_ambiguous",
            f"{board.uuid} is in MIG mode, so CUDA picks one slice of it; name the slice by its MIG-... UUID",
        )
    return _nvml.NVMLGPU(board.handle, board, board.uuid, board.name, board_fraction=1.0)


def _legacy_mig_handle(board: _nvml.Board, gi: int, ci: int, token: str) -> Any:
    for handle in _nvml.mig_handles(board.handle):
        if _nvml.mig_ids(handle) == (gi, ci):
            return handle
    raise EnergyUnavailableError("device_not_found", f"{token}: no such MIG slice on {board.uuid}")


def _slice(handle: Any, boards: Sequence[_nvml.Board]) -> GPU:
    board_uuid = _nvml.uuid_of(_nvml.parent_of(handle))
    board = next((b for b in boards if b.uuid == board_uuid), None)
    if board is None:
        raise EnergyUnavailableError("device_not_found", f"the board {board_uuid} of a MIG slice is not on this node")
    fraction = _nvml.mig_fraction(handle, board.handle)
    return _nvml.NVMLGPU(handle, board, _nvml.uuid_of(handle), _nvml.name_of(handle), board_fraction=fraction)
