"""One board's record over a run: its energy counter at start and stop, and its power samples, integrated."""

from __future__ import annotations

from typing import Sequence

from orchestrator.energy.errors import EnergyError, NotSupportedError
from orchestrator.energy.gpu import GPU

COUNTER = "counter"
POWER = "power"


def trapezoid_j(points: Sequence[tuple[float, float]]) -> float:
    """Energy in J of (time s, power W) samples by the trapezoid rule."""
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(points, points[1:]))


class BoardTrack:
    """A board's counter and power over one run; the integral is kept running, so memory does not grow."""

    def __init__(self, gpu: GPU) -> None:
        # Any device of the run on this board; it reads the board-wide counter and power.
        self.gpu = gpu
        self.counter_start_mj = self._read_counter()
        self.counter_end_mj: int | None = None
        self.integral_j = 0.0
        self.samples = 0
        self.last_w: float | None = None
        self._last_t = 0.0

    def _read_counter(self) -> int | None:
        """The counter now; None where the board has none. Other errors propagate (the run is then unmeasured)."""
        try:
            return self.gpu.board_energy_mj()
        except NotSupportedError:
            return None

    def add_power(self, t: float) -> float | None:
        """Sample power at clock time `t` and extend the integral; None when this sample could not be read."""
        try:
            watts = self.gpu.board_power_w()
        except EnergyError:
            return None
        if self.samples:
            self.integral_j += (t - self._last_t) * (watts + self.last_w) / 2  # type: ignore[operator]
        self._last_t, self.last_w, self.samples = t, watts, self.samples + 1
        return watts

    def stop_counter(self) -> None:
        """Read the counter at the end of the run (left None if the board stopped answering)."""
        if self.counter_start_mj is None:
            return
        try:
            self.counter_end_mj = self.gpu.board_energy_mj()
        except EnergyError:
            self.counter_end_mj = None

    def energy_so_far_j(self) -> float | None:
        """Board energy since the run started, for the live curve."""
        if self.counter_start_mj is not None:
            try:
                return (self.gpu.board_energy_mj() - self.counter_start_mj) / 1000.0
            except EnergyError:
                pass
        return self.integral_j if self.samples >= 2 else None

    def energy_j(self, window_s: float, counter_min_s: float) -> tuple[float | None, str]:
        """(board energy over the run, COUNTER or POWER): the counter difference when it advanced over a window of
        at least `counter_min_s`, else the power integral (short runs); (None, "") when neither exists."""
        delta_mj = self.counter_delta_mj()
        if delta_mj is not None and delta_mj > 0 and window_s >= counter_min_s:
            return delta_mj / 1000.0, COUNTER
        if self.samples >= 2:
            return self.integral_j, POWER
        return None, ""

    def counter_delta_mj(self) -> int | None:
        if self.counter_start_mj is None or self.counter_end_mj is None:
            return None
        return self.counter_end_mj - self.counter_start_mj
