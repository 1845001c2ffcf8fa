"""How a board's energy is apportioned to a run that shares it (MIG slices, fractional GPUs).

A board's counter and power sensor cover the whole board. A device of a run is charged

    device energy = share x (board energy over the run's own start..stop window)
    share         = board_fraction x min(gpu_share, 1)

where `board_fraction` is 1 for a whole board and, for a MIG slice, the slice's streaming multiprocessors over the
full board's (NVML's 7-slice GPU-instance profile), and `gpu_share` is the fraction of each board the scheduler gave
the run (Ray's fractional `num_gpus`, e.g. 0.25). The same share scales the run's power (mean, peak, curve). That is:
each tenant pays its share of whatever the board drew while it ran, idle co-tenants included; the board's own total
is logged beside it (`gpu_board_energy_j`) so another rule can be applied later. A run with any share below 1 is tagged
`energy_shared=true`. When a slice's fraction is unknown, its energy is unavailable (`mig_share_unknown`), not guessed.
"""

from __future__ import annotations

from typing import Sequence

from orchestrator.energy.gpu import GPU


def device_share(gpu: GPU, gpu_share: float) -> float | None:
    """The part of its board's energy charged to `gpu` (None when it cannot be known)."""
    if gpu.board_fraction is None:
        return None
    return gpu.board_fraction * min(gpu_share, 1.0)


def run_is_shared(tokens: Sequence[str], devices: Sequence[GPU], gpu_share: float) -> bool:
    """Whether a GPU run's boards are (possibly) used by someone else while it runs."""
    mig = any(t.startswith("MIG-") for t in tokens) or any(d.is_mig for d in devices)
    return bool(tokens) and (mig or gpu_share < 1.0)
