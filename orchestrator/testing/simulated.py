"""A simulated cluster for the scheduler: the `pool.RayExecutors` interface answered on a virtual clock.

`Scheduler(..., executors=SimulatedCluster(gpus=1000))` runs the real scheduling code (queues, executor slots,
pipelining, retries, node loss) against stand-in executors: a run "takes" `duration_s(spec)` virtual seconds, the
clock jumps to the next answer whenever the scheduler waits, and nothing sleeps. So a sweep of 100,000 one-hour runs
on 1,000 GPUs is scheduled in the time the driver needs for its decisions, which is what it measures
(`benchmarks/scale.py --simulate-gpus 1000`), and tests can check the scheduler at sizes this machine cannot start.

What is simulated: nodes of `gpus_per_node` GPUs (whole GPUs only), executors placed where their shape fits
(waiting for room like a Ray actor otherwise), an executor start-up delay, runs held in order per executor, a node
lost at a virtual time (its executors' runs answer "executor lost", later reads of the nodes leave it out). Not
simulated: the tracking writer (`SimulatedWriter` counts the driver's messages), timeouts (they are real seconds).
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from orchestrator.execution.pool import ExecutorLost, Slot
from orchestrator.records import FINISHED, Resources, RunResult, RunSpec


class SimulatedLoss(Exception):
    """What a simulated executor's runs answer when its node was lost."""


@dataclass(eq=False)
class _Actor:
    node: int
    gpu_ids: tuple[int, ...]
    shape: Resources
    free_at: float = 0.0
    dead: bool = False
    pending: list[int] = field(default_factory=list)


class SimulatedCluster:
    """`gpus` GPUs on nodes of `gpus_per_node`; runs take `duration_s(spec)` virtual seconds and end FINISHED with
    `metrics(spec)`. `lose_node=(node, at_s)` loses one node (0-based) at a virtual time."""

    def __init__(self, gpus: int, gpus_per_node: int = 8, cpus_per_node: int = 64, *,
                 duration_s: Callable[[RunSpec], float] = lambda spec: 3600.0,
                 metrics: Callable[[RunSpec], dict[str, float]] = lambda spec: {},
                 startup_s: float = 10.0, lose_node: tuple[int, float] | None = None) -> None:
        if gpus % gpus_per_node:
            raise ValueError(f"gpus={gpus} is not a whole number of nodes of {gpus_per_node}")
        self.nodes_total = gpus // gpus_per_node
        self.gpus_per_node, self.cpus_per_node = gpus_per_node, cpus_per_node
        self.duration_s, self.metrics, self.startup_s = duration_s, metrics, startup_s
        self.lose_node = lose_node
        self.lost: set[int] = set()
        self.clock = 0.0
        # Per node: free GPU ids and free CPUs; executors waiting for room, in the order they were started.
        self.free_gpus = [list(range(gpus_per_node)) for _ in range(self.nodes_total)]
        self.free_cpus = [float(cpus_per_node)] * self.nodes_total
        self.unplaced: list[tuple[_Actor, int]] = []
        # Answers by ref, and when each is due: (virtual time, sequence, ref).
        self.answers: dict[int, Any] = {}
        self.due: list[tuple[float, int, int]] = []
        self.ready: set[int] = set()
        self._refs = itertools.count(1)
        self.placed: list[_Actor] = []
        self.actors_started = 0
        self.runs_sent = 0
        # GPU-seconds of the runs sent (an ideal packing spreads them over every GPU).
        self.gpu_seconds = 0.0

    # -- the interface the scheduler uses ----------------------------------------------------------------------------
    def start(self, shape: Resources) -> Slot:
        actor = _Actor(-1, (), shape)
        ref = next(self._refs)
        self.actors_started += 1
        if not self._place(actor, ref):
            self.unplaced.append((actor, ref))
        return Slot(shape, actor, ref)

    def keep_warm(self, shapes: set[Resources]) -> None:
        pass

    def give_back(self, slots: list[Slot]) -> None:
        for slot in slots:
            self.kill(slot)

    def send(self, slot: Slot, spec: RunSpec, settings: Any, writer: Any, opened: list[Any]) -> int:
        actor: _Actor = slot.actor
        ref = next(self._refs)
        self.runs_sent += 1
        start = max(self.clock, actor.free_at)
        duration = self.duration_s(spec)
        actor.free_at = end = start + duration
        self.gpu_seconds += duration * (actor.shape.gpus or 0)
        self.answers[ref] = (RunResult(spec.run_key, FINISHED, self.metrics(spec), (), {}, None, None,
                                       int(start * 1000), int(end * 1000), spec.attempt), 1)
        actor.pending.append(ref)
        self._due(end, ref)
        return ref

    def wait(self, refs: list[Any], timeout: float) -> list[Any]:
        """What answered by now; when nothing has, the clock jumps to the next answer (the timeout is not waited).
        An answer the scheduler no longer waits for (a run it put back in the queue) is dropped: it never will."""
        wanted = set(refs)
        while True:
            done = sorted(ref for ref in self.ready if ref in wanted)
            for ref in self.ready.difference(done):
                self.answers.pop(ref, None)
            self.ready.clear()
            if done or not self.due:
                return done
            self._advance(self.due[0][0])

    def pause(self, seconds: float) -> None:
        """Let `seconds` pass on the virtual clock."""
        self._advance(self.clock + seconds)

    def get(self, ref: Any) -> Any:
        answer = self.answers.pop(ref)
        if isinstance(answer, Exception):
            raise ExecutorLost(answer)
        return answer

    def kill(self, slot: Slot) -> None:
        actor: _Actor = slot.actor
        if actor.dead:
            return
        actor.dead = True
        self._lose(actor, "killed")
        if actor.node >= 0 and actor.node not in self.lost:
            self.free_gpus[actor.node].extend(actor.gpu_ids)
            self.free_cpus[actor.node] += actor.shape.cpus
        self.unplaced = [(a, r) for a, r in self.unplaced if a is not actor]
        self._place_waiting()

    def nodes(self) -> list[dict[str, Any]]:
        """The alive nodes, as `ray.nodes()` gives them."""
        return [{"NodeID": f"sim-{n:05d}", "NodeManagerAddress": f"10.0.{n // 256}.{n % 256}", "Alive": True,
                 "Resources": {"GPU": float(self.gpus_per_node), "CPU": float(self.cpus_per_node),
                               "memory": 512 * 2.0**30}}
                for n in range(self.nodes_total) if n not in self.lost]

    # -- the simulation ----------------------------------------------------------------------------------------------
    def _due(self, at: float, ref: int) -> None:
        heapq.heappush(self.due, (at, ref, ref))

    def _advance(self, to: float) -> None:
        if self.lose_node and self.clock < self.lose_node[1] <= to:
            self.clock = self.lose_node[1]
            self._lose_node(self.lose_node[0])
        self.clock = max(self.clock, to)
        while self.due and self.due[0][0] <= self.clock:
            _, _, ref = heapq.heappop(self.due)
            if ref in self.answers:  # not answered already (by a loss)
                self.ready.add(ref)

    def _lose(self, actor: _Actor, why: str) -> None:
        """Every run the executor holds answers at once that its executor was lost."""
        for ref in actor.pending:
            if ref in self.answers and ref not in self.ready:
                self.answers[ref] = SimulatedLoss(f"simulated executor {why}")
                self.ready.add(ref)
        actor.pending.clear()

    def _lose_node(self, node: int) -> None:
        self.lost.add(node)
        self.free_gpus[node], self.free_cpus[node] = [], 0.0
        for actor in self._actors_on(node):
            actor.dead = True
            self._lose(actor, f"lost with its node sim-{node:05d}")

    def _actors_on(self, node: int) -> list[_Actor]:
        return [a for a in self.placed if a.node == node and not a.dead]

    def _place(self, actor: _Actor, ref: int) -> bool:
        gpus = int(actor.shape.gpus or 0)
        for node in range(self.nodes_total):
            if node in self.lost or len(self.free_gpus[node]) < gpus or self.free_cpus[node] < actor.shape.cpus:
                continue
            actor.node, actor.gpu_ids = node, tuple(self.free_gpus[node][:gpus])
            del self.free_gpus[node][:gpus]
            self.free_cpus[node] -= actor.shape.cpus
            self.placed.append(actor)
            actor.free_at = self.clock + self.startup_s
            self.answers[ref] = {"ray_node": f"sim-{node:05d}", "gpu_ids": [str(g) for g in actor.gpu_ids]}
            self._due(actor.free_at, ref)
            return True
        return False

    def _place_waiting(self) -> None:
        waiting, self.unplaced = self.unplaced, []
        for actor, ref in waiting:
            if not self._place(actor, ref):
                self.unplaced.append((actor, ref))



class _Counted:
    """One of the writer's methods: `.remote(...)` counts the call."""

    def __init__(self, calls: Counter[str], name: str) -> None:
        self.calls, self.name = calls, name

    def remote(self, *args: Any, **kwargs: Any) -> None:
        self.calls[self.name] += 1


class SimulatedWriter:
    """Stands in for the tracking writer actor: counts the messages the driver sends it (starts, ends, retries,
    heartbeats; executors send the rest)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        for name in ("start", "points", "end", "retry", "heartbeat"):
            setattr(self, name, _Counted(self.calls, name))
