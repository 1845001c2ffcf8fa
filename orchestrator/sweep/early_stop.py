"""Early stopping: stop a run at a checkpoint when even its optimistic end would be dominated (MO-ASHA style).

    early_stop: {metric: val_loss, mode: min, min_fraction: 0.0625}      # in any sweep section; cost: gpu_hours

Checkpoints are at min_fraction * 2^k below 1 (0.0625 gives 1/16, 1/8, 1/4 and 1/2); the job should log the metric
at each. At a checkpoint, a run's optimistic final value is its value there improved by the gain it may still make,
times 1 + margin (0.5), and by the measurement noise of what that rests on:
- with earlier checkpoints of its own, its mean gain per doubling of progress since its first one times the doublings
  left. Gains per doubling shrink along a power-law curve, so the mean over past doublings bounds the next ones, and
  averaging over several doublings keeps one noisy value from looking like a flat curve. The noise allowance is the
  tolerance (3% of the value, about 2 standard deviations of the difference of two values with 1% noise each)
  scaled by how much the extrapolation multiplies the noise of the two values it rests on;
- at its first checkpoint, the best gain any ended run made from there to the end (absolute or relative to the
  value, whichever is larger), plus the tolerance.
Its full cost is its cost so far divided by its progress. If some ended run is at least as cheap and at least as good
as that (strictly better in one), the run cannot reach the front of cost vs metric and is stopped. With fewer than
`min_history` finished runs seen at that checkpoint, nothing is stopped. Stopped (pruned) runs stay out of the front
unless their checkpoints are declared valid measurements. Pure: no clock, no I/O; the engine calls `report` at
checkpoints and `tell` when runs end.

What it is for: finding the front of cost vs metric (goal frontier, and grids or random searches read for their
front). It does not apply to a law design (`kind: adaptive`, goal law): there each run's (N, D) was chosen for what
its final value tells the fit, front or not, so stopping off-front runs throws away the rows the design paid for (in
benchmarks/adaptive.py it cost the law goal about twice the GPU-hours to pin the exponent). A stopped run's valid
checkpoints are rows at (N, p·D) that the design could have proposed directly at the same cost. A law sweep should
run without `early_stop`; an engine driving goal law should not build a stopper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

from orchestrator.errors import ConfigError
from orchestrator.sweep.values import as_number

MODES = ("min", "max")
EARLY_STOP_KEYS = {"metric", "mode", "min_fraction", "cost"}
FINISHED = "FINISHED"
# Tolerance when matching a reported progress to a checkpoint (a job logs at whole steps).
PROGRESS_SLACK = 1e-6


@dataclass(frozen=True)
class EarlyStopSpec:
    """A checked `early_stop` section."""

    # Metric the rule watches, logged part-way and at the end (e.g. val_loss).
    metric: str
    # "min" or "max".
    mode: str
    # First checkpoint, a fraction of the run in (0, 1); later ones double it while below 1.
    min_fraction: float
    # Final metric the front's cost axis is read from.
    cost: str = "gpu_hours"


def parse_early_stop(raw: Any, field: str = "sweep.early_stop") -> EarlyStopSpec | None:
    """Check an `early_stop` section (None when absent); ConfigError names the field and what is allowed."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(field, f"expected {{metric: <name>, mode: min|max, min_fraction: <0..1>}}, got {raw!r}")
    unknown = set(raw) - EARLY_STOP_KEYS
    if unknown:
        allowed = ", ".join(sorted(EARLY_STOP_KEYS))
        raise ConfigError(f"{field}.{sorted(unknown)[0]}", f"unknown key; allowed: {allowed}")
    metric, cost = raw.get("metric"), raw.get("cost", "gpu_hours")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{field}.metric", f"expected the name of a logged metric, got {metric!r}")
    if not isinstance(cost, str) or not cost:
        raise ConfigError(f"{field}.cost", f"expected the name of a final cost metric, got {cost!r}")
    mode = raw.get("mode", "min")
    if mode not in MODES:
        raise ConfigError(f"{field}.mode", f"expected min or max, got {mode!r}")
    fraction = as_number(f"{field}.min_fraction", raw.get("min_fraction", 0.25))
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"{field}.min_fraction", f"expected a fraction strictly between 0 and 1, got {fraction:g}")
    return EarlyStopSpec(metric, mode, fraction, cost)


def checkpoint_fractions(min_fraction: float) -> tuple[float, ...]:
    """min_fraction * 2^k for every k with a value below 1."""
    out, fraction = [], min_fraction
    while fraction < 1.0 - PROGRESS_SLACK:
        out.append(fraction)
        fraction *= 2.0
    return tuple(out)


class EarlyStopper:
    """Decides at each checkpoint whether a run is stopped; learns from the runs that ended."""

    def __init__(self, metric: str, mode: str = "min", min_fraction: float = 0.25, cost: str = "gpu_hours", *,
                 margin: float = 0.5, tolerance: float = 0.03, min_history: int = 3) -> None:
        section = {"metric": metric, "mode": mode, "min_fraction": min_fraction, "cost": cost}
        spec = parse_early_stop(section, "early_stop")
        assert spec is not None
        self.spec, self.margin, self.tolerance, self.min_history = spec, margin, tolerance, min_history
        self.checkpoints = checkpoint_fractions(spec.min_fraction)
        # Running runs: key -> checkpoint index -> (value, cost so far) reported there.
        self._reported: dict[Hashable, dict[int, tuple[float, float]]] = {}
        # Per checkpoint index: (value there, final value) of every run that finished after reporting there.
        self._curves: list[list[tuple[float, float]]] = [[] for _ in self.checkpoints]
        # (cost, value) of every measurement on the front's side: finished runs, and valid checkpoints.
        self._ended: list[tuple[float, float]] = []

    @classmethod
    def from_spec(cls, spec: EarlyStopSpec, **options: Any) -> EarlyStopper:
        return cls(spec.metric, spec.mode, spec.min_fraction, spec.cost, **options)

    def report(self, key: Hashable, progress: float, value: float, cost_so_far: float) -> bool:
        """A run reached `progress` (0..1] with `value` of the metric, having cost `cost_so_far`; True: stop it now."""
        index = self._checkpoint_index(progress)
        if index is None:
            return False
        reported = self._reported.setdefault(key, {})
        reported[index] = (float(value), float(cost_so_far))
        history = self._curves[index]
        if len(history) < self.min_history or progress <= 0:
            return False
        optimistic = self._optimistic(float(value), reported, index, history, progress)
        return self._dominated(cost_so_far / progress, optimistic)

    def tell(self, key: Hashable, status: str, final_metrics: Mapping[str, float], valid_checkpoints: bool = False,
             checkpoints: Sequence[tuple[float, float, float]] = ()) -> None:
        """A run ended: FINISHED runs join the front and teach how much curves improve; others only drop out.
        `checkpoints` ((progress, value, cost so far) each) stand in for `report` calls this stopper did not see, as
        when a relaunch tells the runs of an earlier launch; valid ones join the front with `valid_checkpoints`."""
        for progress, value, cost in checkpoints:
            index = self._checkpoint_index(progress)
            if index is not None:
                self._reported.setdefault(key, {})[index] = (float(value), float(cost))
        reported = self._reported.pop(key, {})
        if valid_checkpoints:
            self._ended.extend((cost, value) for value, cost in reported.values())
        if status != FINISHED:
            return
        final = self._final(final_metrics, self.spec.metric)
        self._ended.append((self._final(final_metrics, self.spec.cost), final))
        for index, (value, _) in reported.items():
            self._curves[index].append((value, final))

    def _checkpoint_index(self, progress: float) -> int | None:
        reached = [i for i, f in enumerate(self.checkpoints) if progress >= f * (1.0 - PROGRESS_SLACK)]
        return reached[-1] if reached else None

    def _optimistic(self, value: float, reported: dict[int, tuple[float, float]], index: int,
                    history: list[tuple[float, float]], progress: float) -> float:
        """The best final value the run may still reach: `value` improved by the gain it may still make, times
        1 + margin, and by the measurement noise of what that rests on."""
        sign = 1.0 if self.spec.mode == "min" else -1.0
        first = min(reported)
        if first < index:  # its own curve: mean gain per doubling since its first checkpoint, times doublings left
            seen, left = index - first, math.log2(1.0 / progress)
            gain = sign * (reported[first][0] - value) / seen * left
            # value·(1 + r) - first·r against an ended value has noise variance (1 + r)² + r² + 1 (in units of one
            # value's); the tolerance is sized for 2, the difference of two values.
            ratio = left / seen
            noise = self.tolerance * abs(value) * math.sqrt(((1.0 + ratio) ** 2 + ratio**2 + 1.0) / 2.0)
        else:  # its first checkpoint: the best gain any ended run made from there, absolute or relative
            relative = max((sign * (v - f) / abs(v) for v, f in history if v != 0), default=0.0)
            gain = max(max(sign * (v - f) for v, f in history), relative * abs(value))
            noise = self.tolerance * abs(value)
        return value - sign * (max(gain, 0.0) * (1.0 + self.margin) + noise)

    def _dominated(self, cost: float, value: float) -> bool:
        for ended_cost, ended_value in self._ended:
            no_worse = ended_value <= value if self.spec.mode == "min" else ended_value >= value
            if ended_cost <= cost and no_worse and (ended_cost < cost or ended_value != value):
                return True
        return False

    def _final(self, metrics: Mapping[str, float], name: str) -> float:
        value = metrics.get(name)
        if value is None or not isinstance(value, (int, float)) or value != value:
            raise ValueError(f"early stopping needs the final metric {name!r} of every finished run; "
                             f"got metrics {sorted(metrics)}")
        return float(value)
