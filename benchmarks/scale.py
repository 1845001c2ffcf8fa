"""Large sweeps: tracked runs per second against a bare MLflow loop, reads that do not grow with the history, writer
shards against an `mlflow server`, the writer under a load of many running runs, and driver memory.

    python benchmarks/scale.py [--runs 10000] [--bare-runs RUNS] [--shard-runs 400] [--load-runs 1000]
                               [--load-seconds 120] [--skip shards load] [--set OVERRIDE ...]
    python benchmarks/scale.py --simulate-gpus 1000 [--simulate-runs 100000] [--simulate-hours 1]

All in one run, side by side, on one Ray instance started first (its start-up is not counted):
1. bare: a single `MlflowClient` loop writing `--bare-runs` runs (default: as many as step 2, since SQLite's cost
   per run grows with the store) shaped like the orchestrator's child runs (the same tags at creation, params, final
   metrics and curve points, read from the warm-up's runs) as `create_run(tags=...)`, one `log_batch`,
   `set_terminated`, into its own SQLite file; its CPU per run. It runs before step 2 and again after it, and the
   ratio is against the mean of the two: this shared machine's speed drifts by tens of percent within minutes.
2. orchestrator: `--runs` zero-length synthetic runs through `launch()` (SQLite; Ray started as `orchestrator run`
   starts it; the executors and the store's writer warmed by a small launch of another sweep into the same store
   right before), its runs/s, the writer's store calls per run, their time and CPU per run (against the bare loop's:
   what the writer adds inside MLflow), its largest backlog, when the first run started and the last ended, the
   writer's and the executors' niceness, the driver's peak resident memory (sampled every 0.2 s through the launch
   and the reads).
3. reads on that sweep: the relaunch (the resume lookup, nothing left to run), `orchestrator status` (its function,
   in-process) and `load_sweep(...).runs`.
4. shards: `--shard-runs` runs against one `mlflow server` (SQLite behind it, 4 workers) with 1, 2 and 4 writer
   shards; on 2 cores the server's own CPU bounds this.
5. load: `--load-runs` runs held open at once, each sending a curve point per second to the writer for
   `--load-seconds`, through the same actor messages executors send; the writer's largest backlog (ops waiting) and
   the points that did not arrive in MLflow.

Last line: `scale: runs=<n> runs_per_s=<x> bare_mlflow_runs_per_s=<x> relaunch_s=<s> status_s=<s> load_s=<s>
driver_rss_mb=<m> writer_backlog_max=<k> points_lost=<n>` (the backlog of step 5, or of step 2's launch when step 5 is
skipped).

`--simulate-gpus N` runs only a simulation instead: the real planner, scheduler, result collection and progress
display driving `--simulate-runs` runs against N stand-in GPUs on a virtual clock (orchestrator/testing/simulated.py),
no Ray and no MLflow; it prints the driver's CPU per run, its peak memory and the packing (makespan over the ideal).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PeakRss:
    """The driver's resident memory, sampled in a thread; `peak_mb` is the most seen."""

    def __init__(self) -> None:
        import psutil

        self.process, self.peak = psutil.Process(), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def fresh_store(path: Path) -> str:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri).search_experiments()  # create and migrate outside the timing
    return uri


def sweep_config(uri: str, name: str, runs: int, *extra: str) -> Any:
    from orchestrator.project import compose

    return compose(["job=synthetic", "+sweep=synthetic_demo", f"sweep.name={name}", f"tracking.uri={uri}",
                    "resources.gpus=1", "~sweep.params", f"+sweep.params.job.seed={{range:[0,{runs - 1}],step:1}}",
                    "job.sleep_s=0", "tracking.report=false", *extra])


def run_shape(uri: str, sweep: str) -> dict[str, Any]:
    """Tags at creation, params, final metrics and curve points of one of the sweep's child runs."""
    from orchestrator.tracking.store import MlflowStore

    store = MlflowStore(uri, sweep)
    run = store.child_runs(use_index=False)[0]
    curves = {k: len(store.metric_history(run.info.run_id, k)) for k in run.data.metrics}
    return {"tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
            "params": dict(run.data.params), "metrics": dict(run.data.metrics), "curves": curves}


def bare_loop(uri: str, runs: int, shape: dict[str, Any]) -> tuple[float, float]:
    """Runs/s of one MlflowClient writing `runs` runs of `shape` (create_run, one log_batch, set_terminated), and
    the CPU milliseconds per run it took."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("bare")
    start, cpu = time.perf_counter(), time.thread_time()
    for i in range(runs):
        now = int(time.time() * 1000)
        run = client.create_run(experiment, run_name=f"run-{i}", tags={**shape["tags"], "run_key": f"k{i}"},
                                start_time=now)
        metrics = [Metric(k, v + i, now, 0) for k, v in shape["metrics"].items()]
        metrics += [Metric(k, float(s), now + s, s) for k, n in shape["curves"].items() if n > 1 for s in range(n - 1)]
        client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, v) for k, v in shape["params"].items()])
        client.set_terminated(run.info.run_id, "FINISHED")
    return runs / (time.perf_counter() - start), 1000 * (time.thread_time() - cpu) / runs


def executor_niceness() -> list[int]:
    """The niceness of each warm executor (execution/priority.py)."""
    import ray

    from orchestrator.execution import pool
    from orchestrator.execution.priority import niceness

    return sorted(set(ray.get([slot.actor.__ray_call__.remote(lambda self: niceness()) for slot in pool.WARM.idle])))


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def status_seconds(uri: str, sweep: str) -> float:
    from orchestrator.cli.status import main as status

    with redirect_stdout(io.StringIO()):
        seconds, code = timed(lambda: status([sweep, "--tracking-uri", uri]))
    assert code == 0
    return seconds


def writer_stats(uri: str, shards: int = 1) -> list[dict[str, int]]:
    import ray

    from orchestrator.execution import pool

    return ray.get([w.stats.remote() for w in pool.WARM.writer_shards(uri, shards)])


def shards_curve(workdir: Path, runs: int) -> dict[int, float]:
    """Runs/s with 1, 2 and 4 writer shards against one `mlflow server` (4 workers)."""
    from orchestrator.launch import launch
    from tests.mlflow_server import MlflowServer

    folder = workdir / "server"
    folder.mkdir()
    fresh_store(folder / "mlflow.db")
    server = MlflowServer(folder, args=("--workers", "4")).start()
    try:
        curve = {}
        for shards in (1, 2, 4):
            cfg = sweep_config(server.uri, f"shards-{shards}", runs, f"tracking.writer_shards={shards}")
            seconds, summary = timed(lambda: launch(cfg))
            assert summary.count("FINISHED") == runs, summary
            curve[shards] = runs / seconds
            print(f"shards={shards}: {curve[shards]:.1f} runs/s ({runs} runs against {server.uri})", flush=True)
        return curve
    finally:
        server.stop()


def writer_under_load(uri: str, runs: int, seconds: float) -> tuple[int, int]:
    """`runs` runs held open at once, each logging one point a second for `seconds` through the writer actor, as
    executors do; (the writer's largest backlog, points that did not arrive)."""
    import ray

    from orchestrator.execution import pool
    from orchestrator.records import CurvePoint, Resources, RunResult, RunSpec
    from orchestrator.tracking.store import MlflowStore

    writer = pool.WARM.writer(uri)
    ray.get(writer.open_launch.remote("load", "load", {}, {}, {}, int(time.time() * 1000)))
    specs = [RunSpec(f"load-{i}", {"i": i}, Resources(), f"load-{i}", {}) for i in range(runs)]
    for spec in specs:
        writer.start.remote(spec, {"node": "load", "started_at_ms": int(time.time() * 1000)})
    sent, start = 0, time.monotonic()
    for second in range(int(seconds)):
        now = int(time.time() * 1000)
        for spec in specs:
            writer.points.remote(spec.run_key, spec.attempt, [CurvePoint("loss", 1.0 / (second + 1), second, now)])
        sent += runs
        time.sleep(max(0.0, start + second + 1 - time.monotonic()))
    for spec in specs:
        now = int(time.time() * 1000)
        writer.end.remote(spec, RunResult(spec.run_key, "FINISHED", {"loss": 0.0}, (), {}, started_at_ms=now,
                                          ended_at_ms=now), 1 + int(seconds))
    while not ray.get(writer.close_launch.remote("FINISHED", {}, {"status": "FINISHED"}))[0]:
        time.sleep(0.5)
    backlog = ray.get(writer.stats.remote())["backlog_max"]
    store = MlflowStore(uri, "load")
    arrived = sum(len(store.metric_history(r.info.run_id, "loss")) for r in store.child_runs())
    # Each run's end adds its final "loss" point at the end's time.
    return backlog, sent + runs - arrived


def simulate(gpus: int, runs: int, run_hours: float) -> dict[str, float]:
    """The driver's scheduling of `runs` runs of ~`run_hours` each (lognormal spread) on `gpus` simulated GPUs
    (orchestrator.testing.simulated: stand-in executors on a virtual clock, 8 GPUs a node): the real plan, scheduler,
    result collection and progress display, no Ray and no MLflow. What it costs the driver per run and in memory,
    and how well it packs (makespan over the ideal: every GPU busy until the last run ends)."""
    import random

    from rich.console import Console

    from orchestrator.cli.progress import ProgressDisplay
    from orchestrator.execution.cluster import describe
    from orchestrator.execution.scheduler import Scheduler
    from orchestrator.launch import Collector, Fanout, bind, scheduler_options
    from orchestrator.sweep.expand import plan_sweep
    from orchestrator.sweep.feed import Feed
    from orchestrator.testing.simulated import SimulatedCluster, SimulatedWriter

    rss = PeakRss()
    cfg = sweep_config("sqlite:///simulated.db", "simulated", runs)
    plan_s, plan = timed(lambda: plan_sweep(cfg))
    rng = random.Random(0)
    hours = {spec.run_key: run_hours * rng.lognormvariate(0.0, 0.5) for spec in plan.runs}
    cluster = SimulatedCluster(gpus, duration_s=lambda spec: 3600.0 * hours[spec.run_key],
                               metrics=lambda spec: {"val_loss": 1.0 / (1.0 + hours[spec.run_key]),
                                                     "gpu_hours": hours[spec.run_key]})
    info = describe(cluster.nodes())
    plan = bind(plan, info)
    feed = Feed(plan.planner(list(plan.runs), slots=gpus), {}, expand=plan.expand)
    collector, writer = Collector(), SimulatedWriter()
    display = ProgressDisplay(Console(file=io.StringIO(), force_terminal=True, width=160))
    display.on_plan(plan, 0, 0)
    cpu, start = time.process_time(), time.perf_counter()
    Scheduler(info, Fanout(collector, feed, display), scheduler_options(cfg), writer,
              executors=cluster).run(feed)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - start
    display.stop()
    assert sum(r.status == "FINISHED" for r in collector.results.values()) == runs, "a simulated run did not finish"
    return {"gpus": gpus, "runs": runs, "plan_s": plan_s, "schedule_s": wall, "cpu_ms_per_run": 1000 * cpu / runs,
            "driver_rss_mb": rss.peak_mb, "makespan_over_ideal": cluster.clock / (cluster.gpu_seconds / gpus),
            "executors_started": cluster.actors_started, "writer_messages": sum(writer.calls.values())}


def print_simulated(result: dict[str, float]) -> None:
    print(f"simulated {result['gpus']:.0f} GPUs, {result['runs']:.0f} runs: plan {result['plan_s']:.1f} s, scheduling "
          f"{result['schedule_s']:.1f} s of driver time ({result['cpu_ms_per_run']:.2f} ms CPU per run), driver peak "
          f"RSS {result['driver_rss_mb']:.0f} MB, makespan {result['makespan_over_ideal']:.3f}x the ideal, "
          f"{result['executors_started']:.0f} executors started, {result['writer_messages']:.0f} driver messages to "
          "the writer", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--bare-runs", type=int, default=None,
                        help="runs of the bare loop (default: --runs, so both write a store that grows alike)")
    parser.add_argument("--shard-runs", type=int, default=400)
    parser.add_argument("--load-runs", type=int, default=1000)
    parser.add_argument("--load-seconds", type=float, default=120)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--skip", nargs="*", default=[], choices=["shards", "load"])
    parser.add_argument("--set", nargs="*", default=[], metavar="OVERRIDE",
                        help="Hydra overrides for the measured launch only (e.g. tracking.max_lag_s=5)")
    parser.add_argument("--simulate-gpus", type=int, default=None,
                        help="only simulate: the driver scheduling --simulate-runs runs on this many stand-in GPUs")
    parser.add_argument("--simulate-runs", type=int, default=100000)
    parser.add_argument("--simulate-hours", type=float, default=1.0, help="a simulated run's median length")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.simulate_gpus:
        result = simulate(args.simulate_gpus, args.simulate_runs, args.simulate_hours)
        print_simulated(result)
        print("scale-simulated: " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in result.items()))
        return

    import ray

    from orchestrator.execution.cluster import connect
    from orchestrator.launch import launch
    from orchestrator.sweeps import load_sweep

    rss = PeakRss()
    connect({"num_gpus": args.gpus, "num_cpus": args.gpus})  # as `orchestrator run` starts Ray
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        uri = fresh_store(workdir / "mlflow.db")
        # Executors and this store's writer up before timing (a writer serves one store: warmed on another, the
        # timed launch would pay its start, MLflow's import included, while its runs wait).
        launch(sweep_config(uri, "warm-up", 2 * args.gpus))
        shape = run_shape(uri, "warm-up")
        bare_runs = args.bare_runs or args.runs
        before, before_cpu_ms = bare_loop(fresh_store(workdir / "bare-before.db"), bare_runs, shape)
        print(f"bare MlflowClient loop, before the launch: {before:.1f} runs/s ({bare_runs} runs, 3 store calls "
              f"each, {before_cpu_ms:.1f} ms CPU per run)", flush=True)

        # Again, right before timing: a bare loop longer than a minute outlasts idle executors (`WarmPool.IDLE_S`).
        launch(sweep_config(uri, "warm-up-again", 2 * args.gpus))
        executors_niceness = executor_niceness()
        cfg = sweep_config(uri, "scale", args.runs, *args.set)
        cpu_before = sum(rss.process.cpu_times()[:2])
        launched_ms = time.time() * 1000
        seconds, summary = timed(lambda: launch(cfg))
        driver_cpu_ms = 1000 * (sum(rss.process.cpu_times()[:2]) - cpu_before) / args.runs
        assert summary.count("FINISHED") == args.runs, summary
        first_s = (min(r.started_at_ms for r in summary.results.values()) - launched_ms) / 1000
        last_s = (max(r.ended_at_ms for r in summary.results.values()) - launched_ms) / 1000
        [stats] = writer_stats(uri)
        # This machine's speed drifts (other tenants): the bare loop again after the launch, and their mean.
        after, after_cpu_ms = bare_loop(fresh_store(workdir / "bare-after.db"), bare_runs, shape)
        bare = (before + after) / 2
        print(f"bare MlflowClient loop, after the launch: {after:.1f} runs/s ({after_cpu_ms:.1f} ms CPU per run); "
              f"mean {bare:.1f}", flush=True)
        runs_per_s = args.runs / seconds
        print(f"orchestrator: {runs_per_s:.1f} runs/s ({args.runs} runs in {seconds:.0f} s) = {runs_per_s / bare:.2f}x "
              f"the bare loop; {stats['store_calls'] / args.runs:.2f} store calls per run (and "
              f"{stats['notes_calls']} for the launch's notes, {stats['notes_seconds']:.1f} s); writer backlog max "
              f"{stats['backlog_max']} ops; its store calls took {1000 * stats['store_seconds'] / args.runs:.1f} ms "
              f"per run ({1000 * stats['store_cpu_seconds'] / args.runs:.1f} ms CPU); curve points "
              f"{stats['points_in']} in, {stats['points_out']} out; driver "
              f"CPU {driver_cpu_ms:.1f} ms per run (planning, scheduling, events, the end-of-launch analysis); "
              f"driver peak RSS so far {rss.peak_mb:.0f} MB; the first run started {first_s:.1f} s into the "
              f"launch, the last ended at {last_s:.1f} s, the launch returned at {seconds:.1f} s; the writer ran at "
              f"niceness {stats['niceness']}, executors at {executors_niceness}", flush=True)
        relaunch_s, again = timed(lambda: launch(cfg))
        assert again.skipped == args.runs and not again.results, again
        status_s = status_seconds(uri, "scale")
        load_s, runs = timed(lambda: load_sweep("scale", tracking_uri=uri).runs)
        assert len(runs) == args.runs
        driver_mb = rss.peak_mb  # the launch and the reads; the load generator below is no driver's work
        print(f"reads of {args.runs} runs: relaunch {relaunch_s:.1f} s, status {status_s:.1f} s, "
              f"load_sweep().runs {load_s:.1f} s; driver peak RSS {driver_mb:.0f} MB", flush=True)

        if "shards" not in args.skip:
            shards_curve(workdir, args.shard_runs)
        backlog, lost = stats["backlog_max"], 0  # without the load step: the big launch's own backlog
        if "load" not in args.skip:
            backlog, lost = writer_under_load(fresh_store(workdir / "load.db"), args.load_runs, args.load_seconds)
            print(f"writer under load: {args.load_runs} runs x 1 point/s for {args.load_seconds:.0f} s: backlog max "
                  f"{backlog} ops, {lost} points lost", flush=True)
    ray.shutdown()
    print(f"scale: runs={args.runs} runs_per_s={runs_per_s:.1f} bare_mlflow_runs_per_s={bare:.1f} "
          f"relaunch_s={relaunch_s:.1f} status_s={status_s:.1f} load_s={load_s:.1f} driver_rss_mb={driver_mb:.0f} "
          f"writer_backlog_max={backlog} points_lost={lost}")


if __name__ == "__main__":
    main()
