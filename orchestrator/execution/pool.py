"""Ray side of execution: the executor actor, one slot per executor, and the executors kept warm between launches."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from orchestrator.execution.executor import Executor, RunSettings
from orchestrator.records import Resources, RunResult, RunSpec

class RayExecutor(Executor):
    """An `Executor` inside a Ray actor: streamed points go straight to the launch's tracking writer actor."""

    def __init__(self) -> None:
        from orchestrator.execution.priority import as_executor

        as_executor()  # below the writer on a node they share (execution/priority.py)
        super().__init__()

    def run_tracked(self, spec: RunSpec, settings: RunSettings, writer: Any, opened: list[Any]) -> tuple[
            RunResult, int]:
        """Run one job, sending its start and curves to the launch's writer without waiting on it; returns the result
        and how many messages were sent, so the writer can apply the run's end after all of them.

        `opened` holds the ref of the writer's `open_launch`: the start waits on it in the writer, not here."""
        import time

        sent = [1]

        def sink(points: Any) -> None:
            writer.points.remote(spec.run_key, spec.attempt, points)
            sent[0] += 1

        # The writer opens the run's MLflow child when the run really starts here (it may have waited behind another).
        writer.start.remote(spec, {**self.info(), "started_at_ms": int(time.time() * 1000)}, *opened)
        return self.run(spec, settings, sink=sink), sent[0]


_slot_ids = itertools.count(1)


@dataclass(eq=False)
class Slot:
    """One persistent executor and what it is doing."""

    shape: Resources
    actor: Any
    ready_ref: Any
    slot_id: int = field(default_factory=lambda: next(_slot_ids))
    info: dict[str, Any] | None = None
    # Refs of the runs sent to this executor, in the order sent: the first is running, the others wait behind it.
    pending: list[Any] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.pending)


def actor_options(shape: Resources) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": shape.cpus, "num_gpus": shape.gpus or 0, "max_restarts": 0,
                               "max_concurrency": 1}
    if shape.memory_bytes:
        options["memory"] = shape.memory_bytes
    return options


def spawn(shape: Resources) -> Slot:
    import ray

    actor = ray.remote(RayExecutor).options(**actor_options(shape)).remote()
    return Slot(shape, actor, actor.info.remote())


class WarmPool:
    """Idle executors kept between launches of one driver process, so a second launch starts at once.

    Starting executors costs ~2 s for 8 processes on a 2-core machine (Ray starts a new process per actor). A driver
    that launches repeatedly (Hydra multirun batches, a notebook, resume after adding points) reuses them. They are
    tied to the Ray session that made them, and stopped after `IDLE_S` unused so they do not hold GPUs that other
    work in the same Ray session needs (`release()` stops them at once).
    """

    IDLE_S = 60.0

    def __init__(self) -> None:
        self.session: str | None = None
        self.idle: list[Slot] = []
        self.writers: dict[tuple[Any, ...], Any] = {}
        self._timer: threading.Timer | None = None
        # The idle timer's thread and launches both touch `idle`.
        self._lock = threading.RLock()

    def _check_session(self) -> None:
        import ray

        session = ray.get_runtime_context().get_job_id()
        if session != self.session:
            self.session, self.idle, self.writers = session, [], {}

    def take(self, shape: Resources) -> Slot | None:
        """An idle executor of this shape, asked again whether it is alive (a dead one is retired by the caller)."""
        with self._lock:
            self._check_session()
            for slot in self.idle:
                if slot.shape == shape:
                    self.idle.remove(slot)
                    slot.ready_ref, slot.info = slot.actor.info.remote(), None
                    return slot
        return None

    def prestart(self, shape: Resources, count: int) -> None:
        """Start executors of `shape` now, up to `count` idle ones, without waiting for them: a launch calls this
        before it reads the sweep's tracked state, so Ray starts their processes meanwhile, and `take` hands them
        out (unused ones stop after `IDLE_S` like any idle executor)."""
        with self._lock:
            self._check_session()
            missing = count - sum(1 for slot in self.idle if slot.shape == shape)
            fresh = [spawn(shape) for _ in range(missing)]
        if fresh:
            self.give_back(fresh)

    def give_back(self, slots: list[Slot]) -> None:
        with self._lock:
            self.idle.extend(slot for slot in slots if not slot.busy)
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.IDLE_S, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        import ray

        if ray.is_initialized():
            self.release()

    def release(self, keep: set[Resources] | frozenset[Resources] = frozenset()) -> None:
        """Stop idle executors whose shape is not in `keep`, freeing their GPUs for other shapes."""
        import ray

        with self._lock:
            self._check_session()
            for slot in [s for s in self.idle if s.shape not in keep]:
                self.idle.remove(slot)
                ray.kill(slot.actor, no_restart=True)

    def writer_shards(self, uri: str, shards: int = 1) -> list[Any]:
        """The tracking writer actors for this store (`shards` of them, tracking/shards.py), started on the driver's
        node (where a SQLite file lives). Their outage journal goes where this driver says (`journal_dir`: $ORCHESTRATOR_JOURNAL_DIR, read here), and it
        sends the driver's MLflow credentials (`tracking.auth`: Ray started its process, not this driver)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from orchestrator.execution.priority import niceness
        from orchestrator.masking import secret_env_values
        from orchestrator.tracking.auth import tracking_credentials
        from orchestrator.tracking.journal import journal_dir
        from orchestrator.tracking.writer import WriterCore

        self._check_session()
        folder, credentials = str(journal_dir(uri)), tracking_credentials()
        keys = [(uri, folder, tuple(sorted(credentials.items())), shard) for shard in range(shards)]
        for key in keys:
            if key in self.writers:
                continue
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            self.writers[key] = ray.remote(WriterCore).options(
                num_cpus=0, max_restarts=0, scheduling_strategy=here).remote(uri, folder, secret_env_values(),
                                                                             credentials, background=True,
                                                                             niceness=niceness())
        return [self.writers[key] for key in keys]

    def writer(self, uri: str) -> Any:
        """The one tracking writer actor of a store with a single writer."""
        return self.writer_shards(uri)[0]


WARM = WarmPool()


class ExecutorLost(Exception):
    """An executor (its process or its node) died before it answered; `cause` is what Ray raised."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class RayExecutors:
    """What the scheduler asks of the cluster, on Ray: executors (warm or new), runs sent to them, waiting on
    answers, stopping executors, the alive nodes. `orchestrator.testing.simulated` answers the same on a virtual
    clock, so the scheduler can be measured at cluster sizes this machine cannot start."""

    def start(self, shape: Resources) -> Slot:
        """An executor of this shape: an idle warm one, or a new one (answering `ready_ref` once started)."""
        return WARM.take(shape) or spawn(shape)

    def keep_warm(self, shapes: set[Resources]) -> None:
        """Stop the idle warm executors of other shapes, freeing their resources."""
        WARM.release(keep=shapes)

    def give_back(self, slots: list[Slot]) -> None:
        """Started executors the launch no longer needs, kept warm for the driver's next launch."""
        WARM.give_back(slots)

    def send(self, slot: Slot, spec: RunSpec, settings: RunSettings, writer: Any, opened: list[Any]) -> Any:
        """Send a run to an executor; the ref answers `(RunResult, messages sent)` when it ends."""
        return slot.actor.run_tracked.remote(spec, settings, writer, opened)

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        """The refs that answered: at least one, or none after `timeout` seconds."""
        import ray

        done, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if done and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            done += more
        return done

    def pause(self, seconds: float) -> None:
        """Let `seconds` pass (the scheduler waiting, with nothing running, for its hold on new runs to lift)."""
        import time

        time.sleep(seconds)

    def get(self, ref: Any) -> Any:
        """A ref's answer; `ExecutorLost` when its executor died."""
        import ray

        try:
            return ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                ray.exceptions.ObjectLostError) as exc:
            raise ExecutorLost(exc) from exc

    def kill(self, slot: Slot) -> None:
        import ray

        ray.kill(slot.actor, no_restart=True)

    def nodes(self) -> list[dict[str, Any]]:
        """Ray's view of the cluster's nodes (`cluster.describe` reads it)."""
        import ray

        return ray.nodes()


def release_executors() -> None:
    """Stop the executors kept warm between launches, freeing their GPUs now (they also stop after 60 s idle)."""
    WARM.release()
