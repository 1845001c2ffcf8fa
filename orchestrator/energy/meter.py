"""`RunMeter`: energy, power, utilisation and memory of one run, measured around it on the executor that runs it."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable, Mapping

from orchestrator.energy import _reading
from orchestrator.energy._curve import CurveRecorder
from orchestrator.energy._run import RunState
from orchestrator.energy.devices import parse_visible_devices
from orchestrator.energy.rapl import DEFAULT_RAPL_ROOT
from orchestrator.errors import ConfigError
from orchestrator.records import CurvePoint

# Power/utilisation/memory/RAPL sampling period: about NVML's counter update period.
DEFAULT_SAMPLE_INTERVAL_S = 0.1
# Spacing of the `system/` curve points.
DEFAULT_CURVE_INTERVAL_S = 5.0
# Runs shorter than this (ten counter updates) are integrated from power samples instead of the counter.
DEFAULT_COUNTER_MIN_S = 1.0
_JOIN_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class EnergyReading:
    """What a meter measured for one run: metrics (absent when not measured, never 0), tags, and the curve."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    curve: tuple[CurvePoint, ...] = ()

    @property
    def energy_j(self) -> float | None:
        return self.metrics.get("energy_j")


def _unavailable(reason: str) -> EnergyReading:
    return EnergyReading(tags={"energy_source": _reading.UNAVAILABLE, "energy_unavailable_reason": reason})


class RunMeter:
    """Meters one run: `start()`, the job, `stop()` (or `with RunMeter(...) as meter:`; then `meter.reading`).

    Neither `start` nor `stop` raises for a measurement problem: what cannot be measured is left out of the
    metrics and the reason is tagged. A background thread samples every `sample_interval_s` and ends in `stop`.
    """

    def __init__(
        self,
        visible_devices: str | None,
        gpu_share: float = 1.0,
        *,
        sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S,
        curve_interval_s: float = DEFAULT_CURVE_INTERVAL_S,
        counter_min_s: float = DEFAULT_COUNTER_MIN_S,
        cuda_device_order: str | None = None,
        rapl_root: str | os.PathLike[str] = DEFAULT_RAPL_ROOT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """
        visible_devices: the run's CUDA_VISIBLE_DEVICES (indices, GPU-/MIG- UUIDs); None or "" for no GPU.
        gpu_share: fraction of each board the run holds (Ray's fractional num_gpus); >= 1 means exclusive.
        sample_interval_s: period of the background power/utilisation/memory/RAPL sampler.
        curve_interval_s: spacing of the `system/` curve points.
        counter_min_s: shortest run whose energy is the counter difference; shorter ones integrate power samples.
        cuda_device_order: CUDA_DEVICE_ORDER the run's CUDA uses; None reads it from the environment at start.
        rapl_root: the powercap sysfs folder.  clock: monotonic seconds (injectable for tests).
        """
        checks = (("gpu_share", gpu_share), ("sample_interval_s", sample_interval_s))
        for name, value in (*checks, ("curve_interval_s", curve_interval_s)):
            if not value > 0:
                raise ConfigError(name, f"must be > 0, got {value}")
        # Parsed CUDA_VISIBLE_DEVICES of the run (see orchestrator.energy.devices).
        self.tokens = parse_visible_devices(visible_devices)
        self._gpu_share = gpu_share
        self._sample_interval_s = sample_interval_s
        self._curve_interval_s = curve_interval_s
        self._counter_min_s = counter_min_s
        self._device_order = cuda_device_order
        self._rapl_root = rapl_root
        self._clock = clock
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: RunState | None = None
        self._start_error: str | None = None
        self._sampler_error: str | None = None
        self.reading: EnergyReading | None = None

    def start(self) -> RunMeter:
        """Open the run's devices, take the first sample and start the sampler thread."""
        if self._state is not None or self._start_error is not None:
            raise RuntimeError("a RunMeter measures one run; make a new one for the next run")
        order = self._device_order if self._device_order is not None else os.environ.get("CUDA_DEVICE_ORDER")
        try:
            state = RunState(self.tokens, self._gpu_share, order, self._rapl_root)
            self._t0 = self._clock()
            self._curve = CurveRecorder(self._curve_interval_s, self._t0, int(time.time() * 1000))
            self._state = state
            self._sample_locked(self._t0)
        except Exception as err:  # a meter bug must not fail the run it measures; stop() reports it
            self._state, self._start_error = None, f"meter_error: {type(err).__name__}: {err}"
            return self
        if state.devices or state.cpu is not None:
            self._thread = threading.Thread(target=self._loop, name="orchestrator-energy-sampler", daemon=True)
            self._thread.start()
        return self

    def sample(self) -> None:
        """Take one sample now (the sampler thread calls this; a caller may too, e.g. around a phase change)."""
        with self._lock:
            if self._state is not None and self.reading is None:
                self._sample_locked(self._clock())

    def stop(self) -> EnergyReading:
        """End the sampler thread and return the reading; safe to call twice, and after the job raised."""
        if self.reading is None:
            self._stop_event.set()
            if self._thread is not None:
                self._thread.join(timeout=_JOIN_TIMEOUT_S)
            with self._lock:
                self.reading = self._finish()
        return self.reading

    def _finish(self) -> EnergyReading:
        if self._state is None:
            return _unavailable(self._start_error or "meter_not_started: stop() was called before start()")
        try:
            t_end = self._clock()
            self._state.sample(t_end)
            for board in self._state.boards.values():
                board.stop_counter()
            metrics, tags = _reading.summarise(self._state, t_end - self._t0, self._counter_min_s)
            self._curve.record(t_end, _reading.curve_values(self._state, metrics.get("energy_j")))
        except Exception as err:  # as in start(): report, never fail the run
            return _unavailable(f"meter_error: {type(err).__name__}: {err}")
        if self._sampler_error is not None:
            tags["energy_sampler_error"] = self._sampler_error
        return EnergyReading(metrics, tags, tuple(self._curve.points))

    def _loop(self) -> None:
        while not self._stop_event.wait(self._sample_interval_s):
            try:
                self.sample()
            except Exception as err:  # keep what was sampled; stop() tags why sampling ended early
                self._sampler_error = f"{type(err).__name__}: {err}"
                return

    def _sample_locked(self, t: float) -> None:
        assert self._state is not None
        self._state.sample(t)
        if self._curve.due(t):
            at_start = 0.0 if self._state.measures_energy else None
            energy_j = self._state.energy_so_far_j() if t > self._t0 else at_start
            self._curve.record(t, _reading.curve_values(self._state, energy_j))

    def __enter__(self) -> RunMeter:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
