"""Reading `CUDA_VISIBLE_DEVICES` the way CUDA does, before any NVML call (pure functions).

The rule this package implements, from the run's `CUDA_VISIBLE_DEVICES` to the boards it meters:

* Tokens are read left to right, separated by commas, spaces stripped. As in CUDA, the first token that is not a
  device identifier (e.g. ``-1`` or ``NoDevFiles``), or that repeats an earlier one, ends the list. ``None`` and ``""``
  mean the run holds no GPU.
* ``GPU-<uuid>`` (or a unique prefix of it, as CUDA accepts) names a whole board by UUID.
* ``MIG-<uuid>`` names a MIG slice by its own UUID (R470+); ``MIG-GPU-<uuid>/<gi>/<ci>`` is the older form (board UUID,
  GPU-instance id, compute-instance id). A slice shares its board's energy counter: see `orchestrator.energy.share`.
* An integer is a CUDA index into the node's physical GPUs. It is mapped through PCI bus order, which is CUDA's order
  when ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` and NVML's enumeration order. Under CUDA's default ``FASTEST_FIRST`` the same
  mapping holds when every board on the node is the same model (CUDA breaks speed ties by PCI bus id); on a node with
  mixed models the index is ambiguous and energy is recorded as unavailable (``device_order_ambiguous``) rather than
  measured on a guessed board. Ray sets ``CUDA_VISIBLE_DEVICES`` to the physical indices it assigned, so an executor
  should also set ``CUDA_DEVICE_ORDER=PCI_BUS_ID`` for its workers.
* An integer index or ``GPU-`` UUID naming a board in MIG mode is unsupported (CUDA then picks one slice we cannot
  identify): energy is unavailable with ``mig_device_ambiguous``.
"""

from __future__ import annotations

import re
from enum import Enum

_UUID_BODY = r"[0-9a-fA-F-]+"
_LEGACY_MIG = re.compile(rf"^MIG-(GPU-{_UUID_BODY})/(\d+)/(\d+)$")
_MIG = re.compile(rf"^MIG-{_UUID_BODY}$")
_GPU = re.compile(rf"^GPU-{_UUID_BODY}$")


class TokenKind(Enum):
    """What one `CUDA_VISIBLE_DEVICES` entry names."""

    INDEX = "index"
    GPU_UUID = "gpu_uuid"
    MIG_UUID = "mig_uuid"
    MIG_LEGACY = "mig_legacy"


def token_kind(token: str) -> TokenKind | None:
    """The kind of identifier `token` is, or None when CUDA would not accept it."""
    if token.isdigit():
        return TokenKind.INDEX
    if _LEGACY_MIG.match(token):
        return TokenKind.MIG_LEGACY
    if _MIG.match(token):
        return TokenKind.MIG_UUID
    if _GPU.match(token):
        return TokenKind.GPU_UUID
    return None


def parse_visible_devices(value: str | None) -> tuple[str, ...]:
    """The device tokens CUDA would use from a `CUDA_VISIBLE_DEVICES` value (see the module docstring)."""
    tokens: list[str] = []
    for raw in (value or "").split(","):
        token = raw.strip()
        if token_kind(token) is None:
            break
        token = str(int(token)) if token.isdigit() else token
        if token in tokens:
            break
        tokens.append(token)
    return tuple(tokens)


def parse_legacy_mig(token: str) -> tuple[str, int, int]:
    """(board UUID, GPU-instance id, compute-instance id) of a ``MIG-GPU-<uuid>/<gi>/<ci>`` token."""
    match = _LEGACY_MIG.match(token)
    if match is None:
        raise ValueError(f"not a legacy MIG identifier: {token!r}")
    return match.group(1), int(match.group(2)), int(match.group(3))
