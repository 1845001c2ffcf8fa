"""Dispatch overhead: M runs of t seconds on G logical GPUs, through the orchestrator, plain Ray tasks and Ray Tune.

All three run side by side in one process on one Ray instance. Each prints makespan / ideal, where
ideal = ceil(M / G) * t. The orchestrator's makespan is the whole `launch()` of a new sweep: planning, the resume
lookup, dispatch, MLflow tracking of every run (SQLite, created beforehand) and the parent run's close. It is measured
twice: cold (the launch starts its G executor processes) and warm (a second launch in the same driver reuses them, as
Hydra multirun batches or a notebook do). The `dispatch:` line reports the warm figure; the cold one is printed above it.
Beside each, `orchestrator_runs` is the same launch timed only until its last run's result reached the driver: the
rest is the writer's close and what a launch does after its runs (the analysis, report.html, notes, saved view).

    python benchmarks/dispatch.py [--runs 80] [--seconds 0.5] [--gpus 8]

Last line: `dispatch: orchestrator=<ratio> ray_tasks=<ratio> ray_tune=<ratio> orchestrator_runs=<ratio>`.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path


def orchestrator_makespan(runs: int, seconds: float, workdir: Path, sweep: str) -> tuple[float, float]:
    """(the whole launch, the launch until its last run's result reached the driver): the difference is the
    writer's close and what a launch does after its runs (the analysis, report.html, the notes and the saved view)."""
    from mlflow.tracking import MlflowClient

    from orchestrator.execution.pool import release_executors
    from orchestrator.launch import launch
    from orchestrator.project import compose

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    MlflowClient(tracking_uri=uri).search_experiments()  # create and migrate the DB outside the timing
    cfg = compose([
        "job=synthetic", "+sweep=synthetic_demo", f"sweep.name={sweep}", f"tracking.uri={uri}", "resources.gpus=1",
        "~sweep.params",
        f"+sweep.params.job.seed={{range:[0,{runs - 1}],step:1}}", f"job.sleep_s={seconds}", "job.steps=5"])
    class LastEnd:
        at = 0.0

        def on_start(self, spec: object, where: object) -> None: ...

        def on_requeue(self, spec: object) -> None: ...

        def on_retry(self, spec: object, failed: object) -> None: ...

        def on_end(self, result: object) -> None:
            LastEnd.at = time.perf_counter()

    start = time.perf_counter()
    summary = launch(cfg, events=LastEnd())
    elapsed = time.perf_counter() - start
    if sweep == "warm":
        release_executors()  # free the GPUs for the other contenders
    assert summary.count("FINISHED") == runs, summary
    return elapsed, LastEnd.at - start


def ray_tasks_makespan(runs: int, seconds: float) -> float:
    import ray

    @ray.remote(num_gpus=1, num_cpus=1)
    def run(i: int) -> int:
        time.sleep(seconds)
        return i

    start = time.perf_counter()
    ray.get([run.remote(i) for i in range(runs)])
    return time.perf_counter() - start


def ray_tune_makespan(runs: int, seconds: float, workdir: Path) -> float:
    from ray import tune

    def trainable(config: dict) -> dict:
        time.sleep(seconds)
        return {"loss": float(config["i"])}

    tuner = tune.Tuner(
        tune.with_resources(trainable, {"gpu": 1, "cpu": 1}),
        param_space={"i": tune.grid_search(list(range(runs)))},
        run_config=tune.RunConfig(storage_path=str(workdir / "tune"), verbose=0),
    )
    start = time.perf_counter()
    results = tuner.fit()
    elapsed = time.perf_counter() - start
    assert len(results) == runs and not results.errors
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=80)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ray_tasks", "ray_tune"])
    args = parser.parse_args()

    import ray

    ray.init(num_gpus=args.gpus, num_cpus=args.gpus, include_dashboard=False, logging_level="ERROR")
    ideal = math.ceil(args.runs / args.gpus) * args.seconds
    print(f"M={args.runs} runs of t={args.seconds} s on G={args.gpus} logical GPUs: ideal makespan {ideal:.2f} s")
    ratios = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        measures = {"orchestrator_cold": lambda: orchestrator_makespan(args.runs, args.seconds, workdir, "cold"),
                    "orchestrator": lambda: orchestrator_makespan(args.runs, args.seconds, workdir, "warm"),
                    "ray_tasks": lambda: ray_tasks_makespan(args.runs, args.seconds),
                    "ray_tune": lambda: ray_tune_makespan(args.runs, args.seconds, workdir)}
        for name, measure in measures.items():
            if name in args.skip:
                ratios[name] = float("nan")
                continue
            makespan = measure()
            if name.startswith("orchestrator"):
                makespan, runs_done = makespan
                ratios[f"{name}_runs"] = runs_done / ideal
                print(f"{name:>12}: last run ended at {runs_done:7.2f} s   ratio {runs_done / ideal:.3f}", flush=True)
            ratios[name] = makespan / ideal
            print(f"{name:>12}: makespan {makespan:7.2f} s   makespan/ideal {ratios[name]:.3f}", flush=True)
    ray.shutdown()
    print(f"dispatch (cold start, executors started by the launch): orchestrator={ratios['orchestrator_cold']:.3f} "
          f"orchestrator_runs={ratios['orchestrator_cold_runs']:.3f}")
    print("dispatch: " + " ".join(f"{name}={ratios[name]:.3f}" for name in
                                  ("orchestrator", "ray_tasks", "ray_tune", "orchestrator_runs")))


if __name__ == "__main__":
    main()
