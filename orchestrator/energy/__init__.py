"""Energy of a run: meter (`RunMeter`), cost model (`CostModel`, `cost_metrics`) and diagnostics (`diagnose`).

Importing this package is cheap: pynvml is loaded by the first `RunMeter.start()` (or `diagnose()`) that needs it, and
NVML then stays initialised for the life of the process (one init per executor worker, not per run).

Metrics of a run (`EnergyReading.metrics`); a quantity that could not be measured is absent, never 0:
    energy_j            energy of what `energy_source` measured: the run's GPUs (nvml_*), or the CPU packages (rapl)
    gpu_energy_j        the run's GPUs, summed; gpu<i>_energy_j for the i-th entry of CUDA_VISIBLE_DEVICES
    gpu_board_energy_j  shared runs only: the boards' whole energy over the run, before apportioning
    cpu_energy_j        RAPL package energy over the run (node-wide, not apportioned), wherever readable
    power_mean_w        energy_j / the metered window;  power_peak_w: highest sampled power of the same quantity
    gpu_util_mean_pct   mean of sampled utilisation (averaged over devices);  gpu_mem_peak_bytes: highest device's peak
                        (both are board-wide on a fractionally shared board; a MIG slice has no utilisation reading)
    gpus_held           devices x min(gpu_share, 1): the GPU count `cost_metrics` multiplies by wall_s
Tags (`EnergyReading.tags`): energy_source (nvml_counter | nvml_power | rapl | unavailable), energy_unavailable_reason
("<code>: <what to do>"), energy_shared ("true"/"false"), energy_share, energy_counter_fallback (short_run |
counter_not_advanced), gpu_name, gpu_uuid, gpu_board_uuid (MIG), gpu_power_api, cpu_energy_unavailable_reason.
Curve (`EnergyReading.curve`), every `curve_interval_s` plus a point at start and at stop: system/energy_j (the run's
energy so far), system/cpu_power_w, and per device i of the run, under MLflow's own system-metric names,
system/gpu_<i>_power_usage_watts (the run's share of its board's power), system/gpu_<i>_utilization_percentage and
system/gpu_<i>_memory_usage_megabytes.

Rules: device resolution in `orchestrator.energy.devices`; apportioning of shared boards in `orchestrator.energy.share`;
short runs in `RunMeter` (the counter is used when it advanced over at least `counter_min_s`, default 1 s, else the
power samples taken at start, every `sample_interval_s` and at stop are integrated, tagged energy_counter_fallback).
"""

from __future__ import annotations

from orchestrator.energy.cost import CostModel, compute_cost, cost_metrics, load_cost_model
from orchestrator.energy.doctor import DoctorReport, Finding, diagnose, render_report
from orchestrator.energy.errors import EnergyError, EnergyUnavailableError, NotSupportedError
from orchestrator.energy.meter import (
    DEFAULT_COUNTER_MIN_S,
    DEFAULT_CURVE_INTERVAL_S,
    DEFAULT_SAMPLE_INTERVAL_S,
    EnergyReading,
    RunMeter,
)

__all__ = [
    "DEFAULT_COUNTER_MIN_S",
    "DEFAULT_CURVE_INTERVAL_S",
    "DEFAULT_SAMPLE_INTERVAL_S",
    "CostModel",
    "DoctorReport",
    "EnergyError",
    "EnergyReading",
    "EnergyUnavailableError",
    "Finding",
    "NotSupportedError",
    "RunMeter",
    "compute_cost",
    "cost_metrics",
    "diagnose",
    "load_cost_model",
    "render_report",
]
