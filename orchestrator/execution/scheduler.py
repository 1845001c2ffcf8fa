"""Dispatch runs to persistent executors: a queue per resource shape, one executor per slot that fits.

Plain Ray tasks with GPUs start a new worker process per task (80 runs of 0.5 s on 8 GPUs took 63.5 s against an
ideal 5.0 s here), so runs go to long-lived actors instead. An executor that dies is replaced; its run is retried while
`retries_on_loss` allow (a lost executor or node is the cluster's failure, not the job's, so it does not spend the
job's `retries`). With `isolate`, every run gets a fresh executor process. The scheduler re-reads the cluster's nodes
every few seconds, so a node that dies or joins mid-sweep changes how many executors it keeps.

Runs come from a `RunSource`: a static design hands over every run at once; a closed-loop planner hands over a few,
then more as runs end. The scheduler takes what the source has after every change, and ends when the source is
exhausted and nothing is queued or running.

While more runs wait than there are executors, each executor is sent its next run before the current one ends, so it
never idles for the driver's round trip (~10 ms per run here). At the tail of a queue each executor holds one run, so
no run waits behind a long one while another executor is free.

While its `hold` says so (the tracking writers are behind: `tracking.shards.WriterPace`), no new run is sent; runs
already sent go on.
"""


from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Protocol

from orchestrator.execution import pool
from orchestrator.execution.cluster import ClusterInfo, capacity, describe, fits
from orchestrator.execution.executor import RunSettings
from orchestrator.records import FAILED, KILLED, Resources, RunResult, RunSpec


log = logging.getLogger(__name__)
# Runs an executor holds at once while the queue is long: one running, one waiting behind it.
PIPELINE_DEPTH = 2
# Seconds between reads of the cluster's alive nodes, and between the launch's heartbeats to the tracker.
REFRESH_S = 5.0
HEARTBEAT_S = 30.0
# While new runs are held, how often the hold is asked again.
HOLD_POLL_S = 0.1


class RunEvents(Protocol):
    """What the scheduler tells the tracker and the progress display, in order, from the driver's thread.

    on_start: the run was sent to an executor (it starts there when the executor is free); on_requeue: it came back
    unstarted because its executor died running an earlier run; on_retry: it failed and will run again; on_end: done.
    """

    def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None: ...

    def on_requeue(self, spec: RunSpec) -> None: ...

    def on_retry(self, spec: RunSpec, failed: RunResult) -> None: ...

    def on_end(self, result: RunResult) -> None: ...


class RunSource(Protocol):
    """Where runs come from while the launch runs (the planner's feed; see `orchestrator.sweep.feed`)."""

    def take(self) -> list[RunSpec]:
        """Runs to add to the queues now (none while the source waits for results)."""
        ...

    @property
    def exhausted(self) -> bool:
        """Nothing more will come, whatever ends."""
        ...


class Given:
    """A source of runs known up front."""

    def __init__(self, specs: Iterable[RunSpec]) -> None:
        self.specs: list[RunSpec] | None = list(specs)

    def take(self) -> list[RunSpec]:
        specs, self.specs = self.specs or [], None
        return specs

    @property
    def exhausted(self) -> bool:
        return self.specs is None


@dataclass(frozen=True)
class SchedulerOptions:
    retries: int = 0
    isolate: bool = False
    max_concurrent: int | None = None
    run: RunSettings = RunSettings()
    # Seconds a run may take before it is stopped, marked FAILED with cause timeout, and its executor replaced.
    timeout_s: float | None = None
    # Exception type names (the raised type or any base class) that are never retried, e.g. a config error.
    non_retryable: frozenset[str] = frozenset({"ConfigError"})
    # Times a run whose executor process or node died is started again elsewhere (on top of `retries`).
    retries_on_loss: int = 3


def _same_board(a: pool.Slot, b: pool.Slot) -> bool:
    """Whether two started executors hold a GPU of the same node in common."""
    if a.info is None or b.info is None:
        return False
    return a.info.get("ray_node") == b.info.get("ray_node") and bool(
        set(a.info.get("gpu_ids") or ()) & set(b.info.get("gpu_ids") or ()))


def _executor_lost(spec: RunSpec, exc: Exception) -> RunResult:
    now = int(time.time() * 1000)
    message = f"executor lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return RunResult(spec.run_key, FAILED, {}, (), {"cause": "executor_lost"}, message, str(exc), now, now, spec.attempt)


class Scheduler:
    """Runs specs to completion on the cluster, reporting through `events`."""

    def _writer(self, run_key: str | None = None) -> Any:
        """The writer actor of a run (its run_key's shard), or the launch's first for launch-wide messages."""
        if not hasattr(self.writer, "of"):
            return self.writer
        return self.writer.primary if run_key is None else self.writer.of(run_key)

    def __init__(self, info: ClusterInfo, events: RunEvents, options: SchedulerOptions, writer: Any,
                 opened: Any = None, executors: Any = None, hold: Callable[[], bool] = lambda: False) -> None:
        self.info = info
        # Asked before runs are sent: while it says so, new runs wait (the tracking writers are behind:
        # `tracking.shards.WriterPace`); running runs go on.
        self.hold = hold
        self.held = False
        # The cluster's side (`pool.RayExecutors`, or a simulated cluster's).
        self.executors = executors if executors is not None else pool.RayExecutors()
        self.events = events
        self.options = options
        # The launch's tracking writer (a ShardedWriter, or one writer actor) executors stream curve points to, and
        # the ref of its open_launch.
        self.writer = writer
        self.opened = [] if opened is None else [opened]
        self.queues: dict[Resources, deque[RunSpec]] = {}
        self.slots: list[pool.Slot] = []
        self.in_flight: dict[Any, tuple[pool.Slot, RunSpec]] = {}
        # With a timeout: when each run was sent (a run is sent only to an idle executor then, so it starts at once),
        # and the runs stopped for running too long.
        self.sent_at: dict[Any, float] = {}
        self.timed_out: set[Any] = set()
        # Executor losses per run_key; the attempts that ended because the job itself failed.
        self.losses: dict[str, int] = {}
        self.job_failures: dict[str, int] = {}
        self.refreshed_at = self.beat_at = time.monotonic()
        self.warned: set[Resources] = set()
        # Some run asks for a GPU power limit: runs sharing a board (fractional GPUs) must then ask the same one.
        self.power_limited = False

    def run(self, source: RunSource | Iterable[RunSpec], should_stop: Callable[[], bool] = lambda: False) -> None:
        """Run what `source` gives (a `RunSource`, or runs known up front) until it is exhausted and every run ended,
        or `should_stop` says so."""
        self.source = source if hasattr(source, "take") else Given(source)
        self._take()
        self.executors.keep_warm(set(self.queues))
        try:
            self._loop(should_stop)
        finally:
            self._shutdown()

    # -- the loop -------------------------------------------------------------------------------------------------
    def _loop(self, should_stop: Callable[[], bool]) -> None:
        while self.in_flight or any(self.queues.values()) or not self.source.exhausted:
            if should_stop():
                return
            self._take()
            self._fill_slots()
            self._dispatch()
            self._complete_all(self._wait())
            self._stop_overdue()
            self._tick()

    def _take(self) -> None:
        for spec in self.source.take():
            self.queues.setdefault(spec.resources.executor_shape(), deque()).append(spec)
            self.power_limited = self.power_limited or spec.resources.power_limited

    def _tick(self) -> None:
        """Every few seconds re-read the alive nodes (one died, or one joined); now and then tell the tracker this
        driver is alive, so a later launch can tell its runs from a dead driver's."""
        now = time.monotonic()
        if now - self.refreshed_at > REFRESH_S:
            self.info, self.refreshed_at = describe(self.executors.nodes()), now
            self._warn_unplaceable()
        if now - self.beat_at > HEARTBEAT_S:
            self._writer().heartbeat.remote()
            self.beat_at = now

    def _wait(self) -> list[Any]:
        refs = [s.ready_ref for s in self.slots if s.info is None] + list(self.in_flight)
        timeout = HOLD_POLL_S if self.held else 1.0
        if not refs:
            if self.held:
                self.executors.pause(timeout)
            return []
        if self.options.timeout_s and self.sent_at:
            timeout = min(timeout, max(min(self.sent_at.values()) + self.options.timeout_s - time.monotonic(), 0.0))
        return self.executors.wait(refs, timeout)

    def _complete_all(self, refs: list[Any]) -> None:
        """Settle what answered: executors that started, runs that ended. The freed executors are refilled before
        anyone is told (the tracker, the display), so they idle as little as possible."""
        starting: dict[Any, pool.Slot] | None = None
        ended = []
        for ref in refs:
            if ref in self.in_flight:
                ended.append(self._complete(ref))
                continue
            if starting is None:
                starting = {s.ready_ref: s for s in self.slots if s.info is None}
            if ref in starting:
                self._mark_ready(starting[ref], ref)
            # else: a run put back in the queue when its executor died
        if ended:
            self._dispatch()
        for spec, result, sent, retry in ended:
            if retry:
                self._writer(spec.run_key).retry.remote(spec, result, sent)
                self.events.on_retry(spec, result)
            else:
                self._writer(spec.run_key).end.remote(spec, result, sent)
                self.events.on_end(result)

    def _complete(self, ref: Any) -> tuple[RunSpec, RunResult, int, bool]:
        """A run that ended: its executor retired if it was lost (or is not reused), the run queued again if it is
        retried; (spec, result, messages sent, retried)."""
        slot, spec = self.in_flight.pop(ref)
        slot.pending.remove(ref)
        self.sent_at.pop(ref, None)
        result, sent = self._timeout_result(spec) if ref in self.timed_out else self._result(ref, spec)
        lost = result.tags.get("cause") in ("executor_lost", "timeout")
        if lost or self.options.isolate:
            self._retire(slot)
        if lost:
            self._requeue_waiting(slot)
        retry = result.status == FAILED and self._retry(spec, result)
        if retry:
            self.queues[spec.resources.executor_shape()].appendleft(replace(spec, attempt=spec.attempt + 1))
        return spec, result, sent, retry

    def _warn_unplaceable(self) -> None:
        """Say once per shape when runs wait for a kind of node that is no longer alive (one was lost): they run when
        such a node joins; stopping the launch and relaunching later loses nothing."""
        for shape, queue in self.queues.items():
            if queue and shape not in self.warned and not any(fits(shape, node) for node in self.info.nodes):
                self.warned.add(shape)
                log.warning("%d runs wait for a node that can hold gpus=%g, cpus=%g: no alive node can now (one was "
                            "lost?); they start when one joins. Ctrl-C stops the launch; running the same sweep again "
                            "later resumes it.", len(queue), shape.gpus or 0, shape.cpus)

    def _retry(self, spec: RunSpec, result: RunResult) -> bool:
        """A lost executor is retried while `retries_on_loss` allow; a job that raised while `retries` allow, unless
        it raised one of the non-retryable types (e.g. a config error); a timeout never."""
        cause, key = result.tags.get("cause"), spec.run_key
        if cause == "timeout":
            return False
        if cause == "executor_lost":
            self.losses[key] = self.losses.get(key, 0) + 1
            return self.losses[key] <= self.options.retries_on_loss
        self.job_failures[key] = self.job_failures.get(key, 0) + 1
        raised = set(result.tags.get("error_types", "").split(","))
        return self.job_failures[key] <= self.options.retries and not (raised & self.options.non_retryable)

    def _stop_overdue(self) -> None:
        """Kill the executor of every run past timeout_s; its result is then a FAILED run with cause timeout."""
        if not self.options.timeout_s:
            return
        now = time.monotonic()
        for ref, sent in list(self.sent_at.items()):
            if now - sent > self.options.timeout_s and ref not in self.timed_out:
                self.timed_out.add(ref)
                self.executors.kill(self.in_flight[ref][0])

    def _timeout_result(self, spec: RunSpec) -> tuple[RunResult, int]:
        now = int(time.time() * 1000)
        error = f"timeout: the run took longer than execution.timeout_s={self.options.timeout_s:g} s and was stopped"
        return RunResult(spec.run_key, FAILED, {}, (), {"cause": "timeout"}, error, None, now, now, spec.attempt), 0

    def _requeue_waiting(self, slot: pool.Slot) -> None:
        """Runs that waited behind the one that took their executor down never started: back to the queue, no attempt
        spent (the executor runs its runs in order, so only the first sent was running)."""
        for ref in slot.pending:
            _, spec = self.in_flight.pop(ref)
            self.queues[spec.resources.executor_shape()].appendleft(spec)
            self.events.on_requeue(spec)
        slot.pending.clear()

    def _result(self, ref: Any, spec: RunSpec) -> tuple[RunResult, int]:
        """The run's result and how many tracking messages its executor sent for it (0 when the executor died)."""
        try:
            return self.executors.get(ref)
        except pool.ExecutorLost as lost:
            return _executor_lost(spec, lost.cause), 0

    def _mark_ready(self, slot: pool.Slot, ref: Any) -> None:
        try:
            slot.info = self.executors.get(ref)
        except pool.ExecutorLost:
            self._retire(slot)

    # -- slots ----------------------------------------------------------------------------------------------------
    # Every pass below is one walk over the executors, grouped by shape once: the loop makes a pass per batch of ended
    # runs, and on 1,000 executors a pass that compared shapes per executor cost ~8 ms per run.
    def _by_shape(self) -> dict[Resources, list[pool.Slot]]:
        groups: dict[Resources, list[pool.Slot]] = {}
        for slot in self.slots:
            groups.setdefault(slot.shape, []).append(slot)
        return groups

    def _fill_slots(self) -> None:
        waiting = any(self.queues.values())
        groups = self._by_shape()
        for shape, queue in self.queues.items():
            live = groups.get(shape, [])
            if not queue:
                # This shape is done: free its idle executors' resources if another shape still has runs waiting.
                for slot in live:
                    if waiting and not slot.busy:
                        self._retire(slot)
                continue
            want = min(len(queue) + sum(1 for s in live if s.busy), capacity(shape, self.info))
            if self.options.max_concurrent:
                want = min(want, self.options.max_concurrent)
            for _ in range(want - len(live)):
                self.slots.append(self.executors.start(shape))

    def _dispatch(self) -> None:
        """Send queued runs to the started executors: one to each idle one; then, when every executor of a shape
        (starting ones included) is busy and its queue still outnumbers them, a second one each to wait behind the
        running one, so no run waits behind another while an executor could take it."""
        self.held = self.hold()
        if self.held:
            return
        limit = self.options.max_concurrent
        running = sum(1 for s in self.slots if s.busy)
        for shape, slots in self._by_shape().items():
            queue = self.queues.get(shape)
            if not queue:
                continue
            for slot in slots:
                if not queue:
                    break
                if slot.info is None or slot.busy or (limit and running >= limit):
                    continue
                running += self._send_next(slot, queue)
            if self.options.isolate or self.options.timeout_s or not all(s.busy for s in slots):
                continue
            for slot in slots:
                if len(queue) < len(slots):
                    break
                if len(slot.pending) < PIPELINE_DEPTH:
                    self._send_next(slot, queue)

    def _send_next(self, slot: pool.Slot, queue: deque[RunSpec]) -> bool:
        """Send the executor its next run from the queue; False when none may go to it now."""
        spec = self._next_for(slot, queue)
        if spec is None:
            return False
        ref = self.executors.send(slot, spec, self.options.run, self._writer(spec.run_key), self.opened)
        slot.pending.append(ref)
        self.in_flight[ref] = (slot, spec)
        if self.options.timeout_s:
            self.sent_at[ref] = time.monotonic()
        self.events.on_start(spec, slot.info)
        return True

    def _next_for(self, slot: pool.Slot, queue: deque[RunSpec]) -> RunSpec | None:
        """The next run for this executor: the queue's first, except that an executor sharing its board (a fractional
        GPU) with others takes only a run with the power limit the board's runs hold, since a board has one limit
        (None when no such run waits: the executor waits until the board's runs end)."""
        fractional = slot.shape.gpus is not None and 0 < slot.shape.gpus < 1
        if not (self.power_limited and fractional):
            return queue.popleft()
        held = {spec.resources.power_limit for other in self.slots if _same_board(other, slot)
                for spec in (self.in_flight[ref][1] for ref in other.pending)}
        for index, spec in enumerate(queue):
            if not held or held == {spec.resources.power_limit}:
                del queue[index]
                return spec
        return None

    def _retire(self, slot: pool.Slot) -> None:
        if slot in self.slots:
            self.slots.remove(slot)
        self.executors.kill(slot)

    def _shutdown(self) -> None:
        """Runs still in flight end KILLED with their executors; idle executors stay warm for the next launch."""
        now = int(time.time() * 1000)
        for slot, spec in self.in_flight.values():
            result = RunResult(spec.run_key, KILLED, {}, (), {"cause": "interrupted"}, "interrupted", None, now, now,
                               spec.attempt)
            self._writer(spec.run_key).end.remote(spec, result, 0)
            self.events.on_end(result)
            if slot in self.slots:
                self._retire(slot)
        self.in_flight.clear()
        if self.options.isolate:
            for slot in list(self.slots):
                self._retire(slot)
        self.executors.give_back([s for s in self.slots if s.info is not None])
        for slot in [s for s in self.slots if s.info is None]:
            self._retire(slot)
