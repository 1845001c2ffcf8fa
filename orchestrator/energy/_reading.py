"""From a stopped run's state to its metrics and tags (names and meanings: the `orchestrator.energy` docstring)."""

from __future__ import annotations

from itertools import zip_longest

from orchestrator.energy._run import RunState
from orchestrator.energy._tracks import COUNTER, POWER
from orchestrator.energy.share import run_is_shared

NVML_COUNTER = "nvml_counter"
NVML_POWER = "nvml_power"
RAPL = "rapl"
UNAVAILABLE = "unavailable"


def summarise(state: RunState, window_s: float, counter_min_s: float) -> tuple[dict[str, float], dict[str, str]]:
    """The run's metrics (only what was measured) and tags."""
    metrics: dict[str, float] = {"gpus_held": len(state.tokens) * min(state.gpu_share, 1.0)}
    tags = _device_tags(state)
    metrics.update(_device_stats(state))
    gpu_source, reason = _gpu_energy(state, window_s, counter_min_s, metrics, tags)
    if state.cpu is not None:
        metrics["cpu_energy_j"] = state.cpu.energy_j
    else:
        tags["cpu_energy_unavailable_reason"] = state.cpu_reason or "rapl_not_found"
    if not state.tokens:
        gpu_source = RAPL if state.cpu is not None else None
        reason = None if state.cpu is not None else f"no_gpu: the run holds no GPU, and {state.cpu_reason}"
    tags["energy_source"] = gpu_source or UNAVAILABLE
    shared = run_is_shared(state.tokens, state.devices, state.gpu_share) or gpu_source == RAPL
    tags["energy_shared"] = "true" if shared else "false"
    if gpu_source is None:
        tags["energy_unavailable_reason"] = reason or "unknown"
        return metrics, tags
    metrics.update(_totals(state, metrics, gpu_source, window_s))
    return metrics, tags


def _totals(state: RunState, metrics: dict[str, float], source: str, window_s: float) -> dict[str, float]:
    """energy_j (the energy of `source`) and the power of that same quantity."""
    energy_j = metrics["cpu_energy_j"] if source == RAPL else metrics["gpu_energy_j"]
    totals = {"energy_j": energy_j}
    if window_s > 0:
        totals["power_mean_w"] = energy_j / window_s
    peak_w = state.cpu_power_peak_w if source == RAPL else state.gpu_power_peak_w
    if peak_w is not None:
        totals["power_peak_w"] = peak_w
    return totals


def _gpu_energy(
    state: RunState, window_s: float, counter_min_s: float, metrics: dict[str, float], tags: dict[str, str]
) -> tuple[str | None, str | None]:
    """Adds per-device and total GPU energy; returns (energy source, None) or (None, why unavailable)."""
    if not state.gpu_energy_available:
        return None, state.gpu_reason
    boards = {uuid: board.energy_j(window_s, counter_min_s) for uuid, board in state.boards.items()}
    for uuid, (joules, _) in boards.items():
        if joules is None:
            return None, f"no_energy_reading: {uuid} gave neither a counter difference nor power samples"
    for i, (device, share) in enumerate(zip(state.devices, state.shares)):
        metrics[f"gpu{i}_energy_j"] = share * boards[device.board_uuid][0]  # type: ignore[operator]
    metrics["gpu_energy_j"] = sum(metrics[f"gpu{i}_energy_j"] for i in range(len(state.devices)))
    if run_is_shared(state.tokens, state.devices, state.gpu_share):
        metrics["gpu_board_energy_j"] = sum(j for j, _ in boards.values())  # type: ignore[misc]
    fell_back = any(b.counter_start_mj is not None and boards[u][1] == POWER for u, b in state.boards.items())
    if fell_back:
        tags["energy_counter_fallback"] = "short_run" if window_s < counter_min_s else "counter_not_advanced"
    methods = {method for _, method in boards.values()}
    return (NVML_COUNTER if methods == {COUNTER} else NVML_POWER), None


def _device_tags(state: RunState) -> dict[str, str]:
    if not state.devices:
        return {}
    names = [d.name for d in state.devices]
    tags = {"gpu_name": names[0] if len(set(names)) == 1 else ",".join(names)}
    tags["gpu_uuid"] = ",".join(d.uuid for d in state.devices)
    if any(d.is_mig for d in state.devices):
        tags["gpu_board_uuid"] = ",".join(d.board_uuid for d in state.devices)
    apis = sorted({d.power_api for d in state.devices if d.power_api})
    if apis:
        tags["gpu_power_api"] = ",".join(apis)
    if state.shares and run_is_shared(state.tokens, state.devices, state.gpu_share):
        tags["energy_share"] = ",".join(f"{s:.6g}" for s in state.shares)
    return tags


def _device_stats(state: RunState) -> dict[str, float]:
    stats: dict[str, float] = {}
    if state.util_samples:
        stats["gpu_util_mean_pct"] = state.util_sum_pct / state.util_samples
    peaks = [p for p in state.mem_peak_bytes if p is not None]
    if peaks:
        stats["gpu_mem_peak_bytes"] = float(max(peaks))
    return stats


def curve_values(state: RunState, energy_j: float | None) -> dict[str, float | None]:
    """The values of one curve point (keys get the ``system/`` prefix when recorded): per device i of the run, under
    the names MLflow's own system metrics use (so the UI puts them with its System metrics charts), the run's share of
    the board's power, utilisation and memory; the run's energy so far and the CPU packages' power."""
    values: dict[str, float | None] = {"energy_j": energy_j, "cpu_power_w": state.cpu_power_w}
    for i, (power, util, mem) in enumerate(zip_longest(state.device_power_w, state.device_util_pct,
                                                       state.device_mem_bytes)):
        values[f"gpu_{i}_power_usage_watts"] = power
        values[f"gpu_{i}_utilization_percentage"] = util
        values[f"gpu_{i}_memory_usage_megabytes"] = None if mem is None else mem / 2**20
    return values
