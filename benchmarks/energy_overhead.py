"""What the energy meter costs a run, against the fake NVML (no GPU needed).

* sampler_core_frac: process CPU time with a meter's sampler running at its default interval, minus the same idle
  wait without one, over the wait's wall time; the goal is under 0.01 (1% of one core).
* window_ms: median wall time of one meter start() + stop() on the counter path (the fake counter has ticked, the
  injected clock says the run lasted 2 s); the goal is under 1 ms.

    .venv/bin/python benchmarks/energy_overhead.py [--seconds 3] [--runs 300] [--gpus 1]

The last line is exactly `energy: sampler_core_frac=<fraction> window_ms=<ms>`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from itertools import count
from typing import Callable

from orchestrator.energy import DEFAULT_SAMPLE_INTERVAL_S, RunMeter, _nvml
from orchestrator.testing.fake_nvml import FakeBoard, FakeNVML


def install_fake_nvml(n_gpus: int) -> None:
    """Boards whose counters tick on every read, as a busy GPU's would between a run's start and stop."""
    boards = [FakeBoard(f"GPU-{i:08x}", pci_bus=i, energy_mj=ticking_counter_mj(), util_pct=90) for i in range(n_gpus)]
    setattr(_nvml, "pynvml", FakeNVML(boards))  # the seam the tests patch


def ticking_counter_mj() -> Callable[[], int]:
    """A counter that has moved on by one 100 ms tick at 300 W each time it is read."""
    ticks = count()
    return lambda: 30_000 * next(ticks)


def cpu_seconds_over(wall_s: float, meter: RunMeter | None) -> float:
    """Process CPU time (all threads) spent while the main thread sleeps `wall_s`, with or without a meter."""
    if meter is not None:
        meter.start()
    before = time.process_time()
    time.sleep(wall_s)
    spent = time.process_time() - before
    if meter is not None:
        meter.stop()
    return spent


def sampler_core_frac(seconds: float, visible: str, rapl_root: str) -> float:
    idle = cpu_seconds_over(seconds, None)
    metered = cpu_seconds_over(seconds, RunMeter(visible, rapl_root=rapl_root))
    return max(metered - idle, 0.0) / seconds


class StepClock:
    """Each start/stop pair sees a 2 s run, so the counter path (not the short-run fallback) is timed."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 2.0
        return self.t


def window_ms(runs: int, visible: str, rapl_root: str) -> float:
    durations = []
    for _ in range(runs + 1):
        meter = RunMeter(visible, rapl_root=rapl_root, clock=StepClock())
        begin = time.perf_counter()
        meter.start()
        reading = meter.stop()
        durations.append(time.perf_counter() - begin)
        assert reading.tags["energy_source"] == "nvml_counter", reading.tags
    return statistics.median(durations[1:]) * 1000  # the first run also scans the boards


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time of each CPU-time window")
    parser.add_argument("--runs", type=int, default=300, help="start+stop pairs timed")
    parser.add_argument("--gpus", type=int, default=1, help="fake boards the run holds")
    args = parser.parse_args()
    install_fake_nvml(args.gpus)
    visible = ",".join(str(i) for i in range(args.gpus))
    with tempfile.TemporaryDirectory() as no_rapl:  # keep host RAPL out of the numbers
        window = window_ms(args.runs, visible, no_rapl)
        frac = sampler_core_frac(args.seconds, visible, no_rapl)
    print(f"sample_interval_s={DEFAULT_SAMPLE_INTERVAL_S} gpus={args.gpus} seconds={args.seconds} runs={args.runs}")
    print(f"energy: sampler_core_frac={frac:.5f} window_ms={window:.3f}")


if __name__ == "__main__":
    main()
