"""Frozen records shared by every layer: what a run is (`RunSpec`) and what came of it (`RunResult`).

Only the scheduler and tracker adapters talk to Ray or MLflow; everything else passes these plain values around.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

# Final statuses, spelled as MLflow spells them so they can be stored without translation.
FINISHED = "FINISHED"
FAILED = "FAILED"
KILLED = "KILLED"
# A run stopped early because it could no longer reach the front (its curve so far is kept). MLflow has no such
# status: the run is stored KILLED with the tags status=PRUNED and cause=pruned, and is never rerun.
PRUNED = "PRUNED"


@dataclass(frozen=True)
class Resources:
    """What one run holds while it runs."""

    # GPUs: a fraction (0.25, 0.5) packs runs onto one device; an integer >= 1 gives whole devices; None is "auto"
    # (one GPU where the cluster has GPUs, none where it has none), settled when the cluster is known.
    gpus: float | None = None
    # Logical CPUs reserved for the run.
    cpus: float = 1.0
    # Memory reserved for the run, in bytes (None: no reservation).
    memory_bytes: int | None = None
    # GPU power limit the run's boards are set to while it runs, in W, or as a fraction of each board's default limit
    # (at most one of the two; None: the boards stay as they are). See orchestrator/energy/power_limits.py.
    power_limit_w: float | None = None
    power_limit_frac: float | None = None

    def __post_init__(self) -> None:
        # The scheduler keys executors and queues by shape many times per run ended: hash once. Only numbers go in
        # (None as -1), so the hash is the same in every process a pickled copy reaches (hash(None) is not, < 3.12).
        values = (self.gpus, self.cpus, self.memory_bytes, self.power_limit_w, self.power_limit_frac)
        object.__setattr__(self, "_hash", hash(tuple(-1 if v is None else v for v in values)))

    def __hash__(self) -> int:
        return self._hash  # type: ignore[attr-defined, no-any-return]

    @property
    def power_limited(self) -> bool:
        return self.power_limit_w is not None or self.power_limit_frac is not None

    @property
    def power_limit(self) -> tuple[str, float] | None:
        """("w", watts) or ("frac", fraction) as asked, None when the run leaves limits alone."""
        if self.power_limit_w is not None:
            return ("w", self.power_limit_w)
        return None if self.power_limit_frac is None else ("frac", self.power_limit_frac)

    def executor_shape(self) -> Resources:
        """What an executor holds for such runs: the same resources, any power limit (set per run) left out."""
        if not self.power_limited:
            return self
        return Resources(self.gpus, self.cpus, self.memory_bytes)


@dataclass(frozen=True)
class RunSpec:
    """One fully resolved run of a sweep."""

    # Stable hash of the resolved job config; the identity used for resume and dedup.
    run_key: str
    # Resolved job config (plain dict, `_target_` included).
    job: Mapping[str, Any]
    # Resources the run asks for.
    resources: Resources
    # Human-readable name built from the parameters that vary across the sweep.
    name: str
    # The swept values for this run, by config path (e.g. {"job.lr": 0.001}).
    varied: Mapping[str, Any] = field(default_factory=dict)
    # Attempt number, starting at 1.
    attempt: int = 1
    # Opaque data an entry point hands its job through `ctx.payload` (the Hydra launcher's task function and
    # config); not part of the run_key, never logged. None for sweep jobs.
    payload: Any = field(default=None, compare=False)
    # Extra tags for the run in MLflow, e.g. why a planner proposed it (proposal.goal, proposal.score, ...).
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Checkpoint:
    """Values a job logged part-way through, at `progress` (0..1] of its run (`ctx.log(..., progress=p)`)."""

    progress: float
    metrics: Mapping[str, float]
    # The job declared this a valid measurement of a shorter run (`checkpoint=True`: constant LR with a cooldown,
    # say), so fits and fronts may use it as one.
    valid: bool = False


@dataclass(frozen=True)
class JobOutput:
    """What a job may return instead of a plain metrics mapping: final metrics plus any value for its caller."""

    metrics: Mapping[str, float] = field(default_factory=dict)
    # Returned as is in `RunResult.value` (e.g. Hydra's JobReturn); never logged.
    value: Any = None
    # The job failed with this exception but still hands back `value` (Hydra's run_job catches the task's error into
    # its JobReturn): the run ends FAILED with the error and its traceback, as if the job had raised it.
    error: BaseException | None = None


@dataclass(frozen=True)
class CurvePoint:
    """One logged value of a curve."""

    key: str
    value: float
    step: int
    timestamp_ms: int


@dataclass(frozen=True)
class RunResult:
    """What an executor reports back when a run ends, successfully or not."""

    run_key: str
    # FINISHED, FAILED or PRUNED (KILLED is decided by the driver, never by the job).
    status: str
    # Final metrics returned by the job (plus what the executor measured, e.g. wall_s).
    metrics: Mapping[str, float]
    # Curve points not yet streamed when the run ended.
    curve_tail: tuple[CurvePoint, ...] = ()
    # Executor-side facts: node, device, pid, ...
    tags: Mapping[str, str] = field(default_factory=dict)
    # Exception type and message, and the traceback, when the job raised.
    error: str | None = None
    traceback: str | None = None
    started_at_ms: int = 0
    ended_at_ms: int = 0
    attempt: int = 1
    # The job's `JobOutput.value`, when it returned one.
    value: Any = None
    # The checkpoints the job logged with a progress (what early stopping and planners learn from a pruned run).
    checkpoints: tuple[Checkpoint, ...] = ()
