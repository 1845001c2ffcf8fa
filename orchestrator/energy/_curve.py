"""The run's power/energy curve under MLflow's ``system/`` prefix, one point per key every `interval_s`."""

from __future__ import annotations

from typing import Mapping

from orchestrator.records import CurvePoint

PREFIX = "system/"


class CurveRecorder:
    """Collects curve points; steps count recorded instants (0, 1, ...), timestamps are wall-clock ms."""

    def __init__(self, interval_s: float, t0: float, wall_ms0: int) -> None:
        self.points: list[CurvePoint] = []
        self._interval_s = interval_s
        self._t0 = t0
        self._wall_ms0 = wall_ms0
        self._next_t = t0
        self._step = 0

    def due(self, t: float) -> bool:
        return t >= self._next_t

    def record(self, t: float, values: Mapping[str, float | None]) -> None:
        """One point per known value at clock time `t`; the next is due one interval later."""
        timestamp_ms = self._wall_ms0 + round((t - self._t0) * 1000)
        for key, value in values.items():
            if value is not None:
                self.points.append(CurvePoint(PREFIX + key, float(value), self._step, timestamp_ms))
        self._step += 1
        self._next_t += self._interval_s
        if self._next_t <= t:  # fell behind (a slow sample): keep the spacing rather than catch up
            self._next_t = t + self._interval_s
