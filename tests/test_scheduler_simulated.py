"""The real scheduler at cluster sizes this machine cannot start: 1,000 GPUs of stand-in executors on a virtual clock
(orchestrator.testing.simulated). Every run ends once, the GPUs stay busy, a lost node's runs run elsewhere,
`max_concurrent` holds, and no new run starts while the tracking writer says it is behind."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orchestrator.execution.cluster import describe
from orchestrator.execution.scheduler import Scheduler, SchedulerOptions
from orchestrator.records import FINISHED, Resources, RunResult, RunSpec
from orchestrator.testing.simulated import SimulatedCluster, SimulatedWriter

HOUR = 3600.0


class Recorder:
    """The scheduler's events, as the tracker and the display get them."""

    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self.ends: dict[str, RunResult] = {}
        self.ended_twice: list[str] = []
        self.retries: list[RunResult] = []
        self.requeued: list[str] = []

    def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None:
        self.starts[spec.run_key] += 1

    def on_requeue(self, spec: RunSpec) -> None:
        self.requeued.append(spec.run_key)

    def on_retry(self, spec: RunSpec, failed: RunResult) -> None:
        self.retries.append(failed)

    def on_end(self, result: RunResult) -> None:
        if result.run_key in self.ends:
            self.ended_twice.append(result.run_key)
        self.ends[result.run_key] = result


def specs(n: int) -> list[RunSpec]:
    return [RunSpec(f"run-{i:05d}", {"i": i}, Resources(gpus=1.0), f"i={i}") for i in range(n)]


def schedule(cluster: SimulatedCluster, runs: list[RunSpec], options: SchedulerOptions = SchedulerOptions()) -> Any:
    events, writer = Recorder(), SimulatedWriter()
    Scheduler(describe(cluster.nodes()), events, options, writer, executors=cluster).run(runs)
    return events, writer


def test_three_thousand_runs_on_a_thousand_gpus_end_once_each_and_keep_every_gpu_busy():
    cluster = SimulatedCluster(1000, duration_s=lambda spec: HOUR, startup_s=10.0)
    events, writer = schedule(cluster, specs(3000))
    assert len(events.ends) == 3000 and not events.ended_twice
    assert {r.status for r in events.ends.values()} == {FINISHED}
    assert cluster.actors_started == 1000  # one executor per GPU, reused for all three waves
    # Three one-hour waves after the executors' start-up: no GPU idled between its runs.
    assert cluster.clock == 10.0 + 3 * HOUR
    assert writer.calls["end"] == 3000


def test_runs_of_a_node_lost_mid_sweep_run_elsewhere_and_none_is_lost_or_run_twice():
    # Node 3 (8 GPUs) is lost half-way through the first wave, while each executor holds a second run behind its
    # running one (the queue outnumbers the executors): the 8 running runs are retried, the 8 waiting ones go back to
    # the queue unstarted.
    cluster = SimulatedCluster(1000, duration_s=lambda spec: HOUR, startup_s=10.0, lose_node=(3, 0.5 * HOUR))
    events, _ = schedule(cluster, specs(3000))
    assert len(events.ends) == 3000 and not events.ended_twice
    assert {r.status for r in events.ends.values()} == {FINISHED}
    assert len(events.retries) == 8
    assert all(r.tags["cause"] == "executor_lost" and "sim-00003" in r.error for r in events.retries)
    assert len(events.requeued) == 8
    retried = {r.run_key for r in events.retries}
    assert all(events.ends[key].attempt == 2 for key in retried)
    assert {key for key, n in events.starts.items() if n > 1} == retried | set(events.requeued)


def test_max_concurrent_caps_the_executors_on_a_large_cluster():
    cluster = SimulatedCluster(1000, duration_s=lambda spec: HOUR, startup_s=0.0)
    events, _ = schedule(cluster, specs(500), SchedulerOptions(max_concurrent=100))
    assert len(events.ends) == 500
    assert cluster.actors_started == 100
    assert cluster.clock == 5 * HOUR  # 100 at a time, five waves


def test_while_the_writer_is_behind_no_new_run_starts_and_running_ones_go_on():
    # 40 one-hour runs on 8 GPUs; the tracking writer says it is behind from the end of the first wave for two hours.
    cluster = SimulatedCluster(8, duration_s=lambda spec: HOUR, startup_s=10.0)
    behind = (10.0 + HOUR, 10.0 + 3 * HOUR)
    writer, sent_at = SimulatedWriter(), []

    class Timed(Recorder):
        def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None:
            super().on_start(spec, where)
            sent_at.append(cluster.clock)

    events = Timed()
    Scheduler(describe(cluster.nodes()), events, SchedulerOptions(), writer, executors=cluster,
              hold=lambda: behind[0] <= cluster.clock < behind[1]).run(specs(40))
    assert len(events.ends) == 40 and not events.ended_twice and max(events.starts.values()) == 1
    assert not [t for t in sent_at if behind[0] <= t < behind[1]]
    # The second wave was already waiting on its executors and ran; the third waited out the hold; then three more.
    assert cluster.clock == pytest.approx(10.0 + 6 * HOUR)
