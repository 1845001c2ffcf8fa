"""Ray side of execution: the executor actor, the inbox that carries streamed curves, and one slot per executor."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Sequence

from orchestrator.execution.executor import Executor
from orchestrator.records import CurvePoint, Resources


class Inbox:
    """Holds curve points streamed by running jobs until the driver drains them (a Ray actor, no resources)."""

    def __init__(self) -> None:
        self._batches: list[tuple[str, list[CurvePoint]]] = []

    def put(self, run_key: str, points: Sequence[CurvePoint]) -> None:
        self._batches.append((run_key, list(points)))

    def drain(self) -> list[tuple[str, list[CurvePoint]]]:
        batches, self._batches = self._batches, []
        return batches


class RayExecutor(Executor):
    """An `Executor` inside a Ray actor: streamed points go to the shared inbox (acknowledged, so none is lost)."""

    def __init__(self, inbox: Any) -> None:
        import ray

        super().__init__(sink=lambda run_key, points: ray.get(inbox.put.remote(run_key, points)))


_slot_ids = itertools.count(1)


@dataclass(eq=False)
class Slot:
    """One persistent executor and what it is doing."""

    shape: Resources
    actor: Any
    ready_ref: Any
    slot_id: int = field(default_factory=lambda: next(_slot_ids))
    info: dict[str, Any] | None = None
    busy: bool = False


def actor_options(shape: Resources, runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    options: dict[str, Any] = {"num_cpus": shape.cpus, "num_gpus": shape.gpus or 0, "max_restarts": 0,
                               "max_concurrency": 1}
    if shape.memory_bytes:
        options["memory"] = shape.memory_bytes
    if runtime_env:
        options["runtime_env"] = runtime_env
    return options


def spawn(shape: Resources, inbox: Any, runtime_env: dict[str, Any] | None = None) -> Slot:
    import ray

    actor = ray.remote(RayExecutor).options(**actor_options(shape, runtime_env)).remote(inbox)
    return Slot(shape, actor, actor.info.remote())


def start_inbox() -> Any:
    import ray

    return ray.remote(Inbox).options(num_cpus=0).remote()
