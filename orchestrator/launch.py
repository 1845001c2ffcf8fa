"""One launch of a sweep: plan, check, skip what is done, run the rest on Ray, track it all in MLflow.

Order matters: every config and resource error is raised before the tracking store is opened, so bad input leaves
MLflow untouched.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, OmegaConf

from orchestrator.energy.recost import sweep_totals
from orchestrator.errors import ConfigError, TrackingError
from orchestrator.execution import pool
from orchestrator.execution.cluster import ClusterInfo, capacity, check_feasible, connect
from orchestrator.execution.executor import RunSettings
from orchestrator.execution.scheduler import RunEvents, Scheduler, SchedulerOptions
from orchestrator.records import FAILED, FINISHED, KILLED, PRUNED, Resources, RunResult, RunSpec
from orchestrator.sweep.expand import SweepPlan, plan_sweep
from orchestrator.sweep.feed import DONE, Feed, observation_of
from orchestrator.sweep.planner import BudgetState, Observation, Planner
from orchestrator.sweep.resources import parse_resources, settle_gpus
from orchestrator.masking import mask_secrets
from orchestrator.tracking import absolute_uri
from orchestrator.tracking.buffer import JOURNALED, fail_fast_http
from orchestrator.tracking.journal import replay_journals
from orchestrator.tracking.orphans import driver_tags, settle_dead_drivers
from orchestrator.tracking.shards import MAX_WRITER_LAG_S, ShardedWriter, WriterPace, check_shards
from orchestrator.tracking.store import MlflowStore, run_status
from orchestrator.tracking.writer import OUTAGE_GRACE_S

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchSummary:
    """What a launch did, for the CLI's table and exit status."""

    sweep: str
    tracking_uri: str
    experiment_id: str | None
    parent_run_id: str | None
    planned: int
    # Runs not started because an earlier launch finished them, or (without --rerun-failed) saw them fail.
    skipped: int
    skipped_failed: int = 0
    results: dict[str, RunResult] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    tracking_errors: tuple[str, ...] = ()
    wall_s: float = 0.0
    analysis_warnings: tuple[str, ...] = ()
    # The analysis's headline lines (each front's best runs, each fit's exponents), logged on the parent run.
    analysis_summary: tuple[str, ...] = ()
    # A closed-loop sweep's budget after the launch (None for static designs).
    budget: BudgetState | None = None
    # Proposals the engine did not run, and why (a closed-loop sweep's; e.g. a run that already ended).
    refused: tuple[str, ...] = ()
    # The sweep's saved view in the MLflow UI ("#/experiments/<id>/runs?viewStateShareKey=..."), None without one.
    view_link: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.results.values() if r.status == status)

    @property
    def failed(self) -> list[RunResult]:
        """Runs that did not end well (a run stopped early by design, PRUNED, is not one)."""
        return [r for r in self.results.values() if r.status not in DONE]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.tracking_errors


class Fanout:
    """Send each scheduler event to several listeners (tracker, progress display, result collector)."""

    def __init__(self, *listeners: Any) -> None:
        self.listeners = listeners

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args: [getattr(x, name)(*args) for x in self.listeners if hasattr(x, name)]


class Collector:
    def __init__(self) -> None:
        self.results: dict[str, RunResult] = {}
        self.specs: dict[str, RunSpec] = {}

    def on_start(self, spec: RunSpec, where: Any) -> None:
        self.specs[spec.run_key] = spec

    def on_end(self, result: RunResult) -> None:
        self.results[result.run_key] = result


def _positive(field: str, value: Any) -> float:
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")
    if not number > 0:
        raise ConfigError(field, f"expected a positive number of seconds, got {value!r}")
    return number


def _count(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(field, f"expected a whole number >= 0, got {value!r}")
    return value


def run_settings(cfg: DictConfig) -> RunSettings:
    """How each run is executed and measured (the `execution`, `energy` and `cost` sections of the schema)."""
    from orchestrator.energy.cost import cost_model_from_settings

    energy = cfg.energy
    return RunSettings(
        flush_interval_s=_positive("execution.flush_interval_s", cfg.execution.flush_interval_s),
        energy=bool(energy.enabled),
        sample_interval_s=_positive("energy.sample_interval_s", energy.sample_interval_s),
        curve_interval_s=_positive("energy.curve_interval_s", energy.curve_interval_s),
        cost=cost_model_from_settings(OmegaConf.to_container(cfg.cost, resolve=True)),
    )


def scheduler_options(cfg: DictConfig) -> SchedulerOptions:
    """The `execution` section (ExecutionConf), checked: how runs are retried, isolated, limited and timed out."""
    ex = cfg.execution
    max_concurrent = ex.max_concurrent
    if max_concurrent is not None and max_concurrent < 1:
        raise ConfigError("execution.max_concurrent", f"expected null or a whole number >= 1, got {max_concurrent!r}")
    # Executors get no runtime_env: Ray already puts the driver's working directory on their sys.path (so a project's
    # jobs import there too), and a runtime_env made executor start-up 4 s slower here.
    timeout_s = None if ex.timeout_s is None else _positive("execution.timeout_s", ex.timeout_s)
    return SchedulerOptions(retries=_count("execution.retries", ex.retries), isolate=bool(ex.isolate),
                            max_concurrent=max_concurrent, run=run_settings(cfg), timeout_s=timeout_s,
                            non_retryable=frozenset(str(n) for n in ex.non_retryable),
                            retries_on_loss=_count("execution.retries_on_loss", ex.retries_on_loss))


def bind(plan: SweepPlan, info: ClusterInfo) -> SweepPlan:
    """Settle gpus=auto against the cluster and fail fast on requests no node can hold."""
    runs = tuple(replace(r, resources=settle_gpus(r.resources, info.total_gpus)) for r in plan.runs)
    for shape in {r.resources.executor_shape() for r in runs}:
        check_feasible(shape, info)
    return replace(plan, runs=runs)


def todo(plan: SweepPlan, statuses: dict[str, str], rerun_failed: bool) -> list[RunSpec]:
    """Runs still to do: never a FINISHED or PRUNED run_key; a FAILED one only with rerun_failed; interrupted ones
    always."""
    def wanted(spec: RunSpec) -> bool:
        status = statuses.get(spec.run_key)
        return status not in DONE and (status != FAILED or rerun_failed)

    return [spec for spec in plan.runs if wanted(spec)]


def _parent_params(cfg: DictConfig, plan: SweepPlan, settings: RunSettings) -> dict[str, Any]:
    """The launch's settings, so every figure on its runs can be reproduced (cost factors included)."""
    params = {"sweep.kind": plan.kind, "sweep.varied": ",".join(plan.varied),
              **({"sweep.runs": len(plan.runs)} if not plan.closed_loop else _search_params(plan)),
              "job._target_": cfg.job.get("_target_"), "cluster.address": cfg.cluster.get("address"),
              "energy.enabled": settings.energy, "energy.sample_interval_s": settings.sample_interval_s,
              "energy.curve_interval_s": settings.curve_interval_s}
    return {**params, **(settings.cost.as_params() if settings.cost is not None else {})}


def _search_params(plan: SweepPlan) -> dict[str, Any]:
    spec = plan.adaptive
    assert spec is not None
    params: dict[str, Any] = {"sweep.goal": spec.goal, "sweep.initial": spec.initial, "sweep.seed": spec.seed,
                              **{f"sweep.budget.{unit}": f"{limit:g}" for unit, limit in spec.budget.items()},
                              **{f"sweep.objectives.{m}": sense for m, sense in spec.objectives.items()}}
    if plan.early_stop is not None:
        params.update({f"sweep.early_stop.{k}": v for k, v in vars(plan.early_stop).items()})
    return params


def _parent_texts(cfg: DictConfig, plan: SweepPlan) -> dict[str, str]:
    texts = {"config.yaml": OmegaConf.to_yaml(mask_secrets(OmegaConf.to_container(cfg, resolve=False)))}
    if plan.dropped:
        dropped = [{"point": d.point, "reason": d.reason} for d in plan.dropped]
        texts["dropped_cells.json"] = json.dumps(dropped, indent=1, default=str)
    return texts


def tracked_state(uri: str, sweep: str, skip_done: bool) -> tuple[MlflowStore, dict[str, str]]:
    """What the store knows before a launch: first the writes an earlier driver kept in a journal during an MLflow
    outage, then its dead drivers' runs marked, then each run_key's best status. An unreachable server fails here
    within seconds (not after MLflow's two minutes of retries), before anything runs."""
    with fail_fast_http():
        store = MlflowStore(uri, sweep)
        replay_journals(uri)
        settle_dead_drivers(store, sweep)
        return store, store.statuses() if skip_done else {}


def launch(cfg: DictConfig, events: RunEvents | None = None,
           should_stop: Callable[[], bool] = lambda: False,
           on_plan: Callable[[SweepPlan, int, int], None] | None = None,
           tags: dict[str, str] | None = None) -> LaunchSummary:
    """Run the sweep described by the composed config; returns when every run has ended (or the launch stopped).
    `tags` go on the launch's parent run (e.g. the command line that `orchestrator resume` repeats)."""
    plan = plan_sweep(cfg)
    options = scheduler_options(cfg)
    return execute(plan, cfg.cluster, str(cfg.tracking.uri), options, _parent_params(cfg, plan, options.run),
                   _parent_texts(cfg, plan), events=events, should_stop=should_stop, on_plan=on_plan,
                   rerun_failed=bool(cfg.execution.rerun_failed), tags=tags,
                   report=bool(cfg.tracking.get("report", True)),
                   writer_shards=check_shards(str(cfg.tracking.uri), cfg.tracking.get("writer_shards", 1)),
                   max_writer_lag_s=_max_lag(cfg.tracking.get("max_lag_s", MAX_WRITER_LAG_S)))


def _max_lag(value: Any) -> float | None:
    """`tracking.max_lag_s`: null, or at least a second (the writer's answer itself takes a moment; under that, new
    runs could wait on it for good)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 1:
        raise ConfigError("tracking.max_lag_s", f"expected null or a number of seconds >= 1, got {value!r}")
    return float(value)


def execute(plan: SweepPlan, cluster: Any, tracking_uri: str, options: SchedulerOptions,
            params: dict[str, Any], texts: dict[str, str], *, events: RunEvents | None = None,
            should_stop: Callable[[], bool] = lambda: False,
            on_plan: Callable[[SweepPlan, int, int], None] | None = None,
            skip_done: bool = True, rerun_failed: bool = False,
            resume: LaunchSummary | None = None, tags: dict[str, str] | None = None,
            report: bool = False, writer_shards: int = 1,
            max_writer_lag_s: float | None = MAX_WRITER_LAG_S) -> LaunchSummary:
    """Run a validated plan: connect, check resources, skip what is done (unless `skip_done` is off, as for a
    Hydra multirun, which expects every job to run), track the launch as one parent run. Entry points build the plan
    (`launch` from the sweep config, the Hydra launcher from its job overrides) and call this.

    With `resume`, the summary of an earlier launch of the same experiment (a Hydra multirun's previous batch), the
    runs join that launch's parent run, and the summary and the parent's totals count both.

    Earlier launches of the sweep whose driver died are marked first (their RUNNING runs KILLED, then rerun here);
    while another driver is alive on the sweep, this raises `SweepBusyError` and runs nothing."""
    import ray

    started, started_at_ms = time.monotonic(), int(time.time() * 1000)
    uri = absolute_uri(tracking_uri)
    info = connect(cluster)
    plan = bind(plan, info)
    if plan.closed_loop:
        check_closed_loop(plan, info, options)
    limited_nodes = check_power_limits(plan, info)
    options = replace(options, run=replace(options.run, power_limit_required=plan.power_limit_required))
    # Executors and the writer start in Ray while the tracked state is read (a cold launch's start-up, overlapped).
    prestart_executors(plan, info, options)
    writer = ShardedWriter(pool.WARM.writer_shards(uri, writer_shards), uri)
    store, statuses = tracked_state(uri, plan.name, skip_done)
    specs = todo(plan, statuses, rerun_failed)
    history = ended_history(store) if plan.closed_loop and skip_done else []
    skipped = len(history) if plan.closed_loop else len(plan.runs) - len(specs)
    skipped_failed = sum(1 for s in plan.runs if statuses.get(s.run_key) == FAILED) - sum(
        1 for s in specs if statuses.get(s.run_key) == FAILED)
    planner = plan.planner(specs, slots=executor_slots(plan, info, options))
    for _, observation in history:
        planner.tell(observation)
    if plan.closed_loop and planner.done:  # its budget was spent by earlier launches
        return LaunchSummary(plan.name, uri, store.experiment_id(), None, skipped, skipped, budget=planner.budget())
    if on_plan is not None:
        on_plan(plan, skipped, skipped_failed)
    if not specs and not plan.closed_loop:
        return LaunchSummary(plan.name, uri, store.experiment_id(), None, len(plan.runs), skipped, skipped_failed)
    planned = len(plan.runs)
    parent_ref = writer.open(plan.name, f"launch {time.strftime('%Y-%m-%d %H:%M:%S')}", params,
                             {"sweep": plan.name, **driver_tags(), **(tags or {})}, texts, started_at_ms,
                             resume.parent_run_id if resume else None)
    collector = Collector()
    if resume is not None:
        collector.results.update(resume.results)
        planned, skipped, started = planned + resume.planned, skipped + resume.skipped, started - resume.wall_s
    options, pruner = with_early_stopping(plan, options, history)
    feed = Feed(planner, statuses, expand=plan.expand, admit=lambda spec: admit(spec, info),
                limit=plan.adaptive.in_flight if plan.adaptive else None, rerun_failed=rerun_failed,
                ended=len(history), on_progress=_reporter(writer.primary, events))
    status = KILLED
    try:
        listeners = [collector, feed, *([_PrunerTeller(pruner)] if pruner else []), *([events] if events else [])]
        pace = WriterPace(writer, max_writer_lag_s)
        if plan.analysis or plan.primary or report:
            preload_end_of_launch()
        Scheduler(info, Fanout(*listeners), options, writer, parent_ref, hold=pace.hold).run(feed, should_stop)
        if feed.error is not None:
            raise feed.error
        results = collector.results.values()
        status = KILLED if should_stop() else FINISHED if all(r.status in DONE for r in results) else FAILED
    finally:
        if plan.closed_loop:
            planned = skipped + len(collector.results)
        counts = {s: sum(1 for r in collector.results.values() if r.status == s)
                  for s in (FINISHED, FAILED, KILLED, PRUNED)}
        metrics = {"runs_planned": planned, "runs_skipped": skipped, "runs_finished": counts[FINISHED],
                   "runs_failed": counts[FAILED], "runs_killed": counts[KILLED], "runs_pruned": counts[PRUNED],
                   "wall_s": time.monotonic() - started,
                   **sweep_totals(r.metrics for r in collector.results.values() if r.status in DONE)}
        errors = close_writer(writer, status, metrics)
        if pruner is not None:
            ray.kill(pruner)
        if limited_nodes:
            restore_power_limits(limited_nodes)
    parent_id = ray.get(parent_ref)
    analysis = Analyzed()
    if (plan.analysis or plan.primary) and status != KILLED and not any(JOURNALED in e for e in errors):
        try:
            analysis = analyze(uri, plan.name, plan.analysis, parent_id, plan.primary)
        except Exception as exc:  # noqa: BLE001 - every run is tracked; an analysis that breaks is a warning
            log.warning("the launch's analysis failed: %s", exc)
            analysis = Analyzed(warnings=[f"analysis failed: {type(exc).__name__}: {exc}"])
    names = {**(resume.names if resume else {}), **{s.run_key: s.name for s in specs}, **feed.names}
    summary = LaunchSummary(plan.name, uri, _experiment_id(store), parent_id, planned, skipped, skipped_failed,
                            collector.results, names, tuple(errors),
                            time.monotonic() - started, tuple(analysis.warnings), tuple(analysis.summary),
                            planner.budget(),
                            tuple(f"{point}: {why}" for point, why in feed.refused if "already" not in why))
    if not any(JOURNALED in e for e in errors):
        summary = replace(summary, view_link=write_sweep_view(store, plan, summary))
        # The writer process writes the notes (a tag per run) while this one builds the report.
        notes = write_notes(writer.primary, store, plan, summary, analysis, collector.specs, tags or {})
        if report and status != KILLED:
            log_report(store, plan, parent_id, analysis.sweep)
        notes_written(notes)
    return summary


# -- GPU power limits --------------------------------------------------------------------------------------------------
def check_power_limits(plan: SweepPlan, info: ClusterInfo) -> list[str]:
    """Read every GPU node's power-limit ranges and permission when runs ask for limits, and refuse the sweep (before
    anything is tracked) when a limit is out of range or cannot be set; the GPU nodes' ids (none when no run asks)."""
    runs = list(plan.runs) + ([_base_shape_spec(plan, info)] if plan.closed_loop else [])
    requests = {r.resources.power_limit for r in runs if r.resources.power_limit is not None}
    if plan.closed_loop and any(p.startswith("resources.power_limit") for p in plan.varied):
        requests |= _adaptive_limit_bounds(plan)
    if not requests:
        return []
    from orchestrator.energy.power_limits import check_limits, probe_cluster

    nodes = [n.node_id for n in info.nodes if n.gpus > 0]
    check_limits(requests, probe_cluster(nodes) if nodes else [], plan.power_limit_required)  # type: ignore[arg-type]
    return nodes


def restore_power_limits(nodes: list[str]) -> None:
    """Limits that runs which died left on the GPU nodes, put back (logged; a failure here never fails the launch)."""
    from orchestrator.energy.power_limits import restore_on_nodes

    try:
        for board in restore_on_nodes(nodes):
            log.info("restored the power limit a stopped run left on %s", board)
    except Exception as exc:  # noqa: BLE001 - the next executor on the node restores them too
        log.warning("could not check GPU power limits left behind: %s", exc)


def _base_shape_spec(plan: SweepPlan, info: ClusterInfo) -> RunSpec:
    return RunSpec("", {}, _base_shape(plan, info), "")


def _adaptive_limit_bounds(plan: SweepPlan) -> set[tuple[str, float]]:
    """Every number in an adaptive sweep's power-limit spaces (range ends, choices), so out-of-range limits fail up
    front."""
    assert plan.adaptive is not None

    def numbers(spec: Any) -> list[float]:
        if isinstance(spec, Mapping):
            return [n for v in spec.values() for n in numbers(v)]
        if isinstance(spec, (list, tuple)):
            return [n for v in spec for n in numbers(v)]
        return [float(spec)] if isinstance(spec, (int, float)) and not isinstance(spec, bool) else []

    return {("w" if path.endswith("_w") else "frac", n) for path, spec in plan.adaptive.params.items()
            if path.startswith("resources.power_limit") for n in numbers(spec)}


def prestart_executors(plan: SweepPlan, info: ClusterInfo, options: SchedulerOptions) -> None:
    """Start the executors the launch's runs will take (a sweep of one executor shape, or a closed-loop sweep's base
    shape), as many as run at once, before anything is read: the scheduler then finds them warm. Not with `isolate`
    (every run gets a fresh executor) nor for a sweep of several shapes (which shape's executors the cluster should
    hold first is the scheduler's call)."""
    if options.isolate:
        return
    if plan.expander is not None:
        shape, count = _base_shape(plan, info), executor_slots(plan, info, options)
    else:
        shapes = {spec.resources.executor_shape() for spec in plan.runs}
        if len(shapes) != 1:
            return
        shape = shapes.pop()
        count = min(len(plan.runs), capacity(shape, info), options.max_concurrent or len(plan.runs))
    pool.WARM.prestart(shape, count)


# -- closed-loop sweeps ------------------------------------------------------------------------------------------------
def executor_slots(plan: SweepPlan, info: ClusterInfo, options: SchedulerOptions) -> int:
    """How many runs of the sweep's base resources the cluster holds at once (capped by execution.max_concurrent):
    an adaptive sweep's default in_flight."""
    if plan.expander is None:
        return 1
    slots = max(capacity(_base_shape(plan, info), info), 1)
    return min(slots, options.max_concurrent) if options.max_concurrent else slots


def check_closed_loop(plan: SweepPlan, info: ClusterInfo, options: SchedulerOptions) -> None:
    """What only the cluster and the settings tell: the budget's units are measured, and runs hold GPUs when the
    budget counts GPU-hours. Raised before the tracking store is opened."""
    spec = plan.adaptive
    assert spec is not None
    shape = _base_shape(plan, info)
    check_feasible(shape, info)
    if "gpu_hours" in spec.budget and not shape.gpus and "resources.gpus" not in spec.params:
        raise ConfigError("sweep.budget.gpu_hours", "the runs hold no GPU here (the cluster has none, or "
                          "resources.gpus=0), so they spend no GPU-hours; count runs (budget: {runs: N}) instead")
    if ("usd" in spec.budget or "gpu_hours" in spec.budget) and options.run.cost is None:
        raise ConfigError("sweep.budget", "a usd or gpu_hours budget is measured by the cost model, which is off")
    if "energy_kwh" in spec.budget and not options.run.energy:
        raise ConfigError("sweep.budget.energy_kwh", "an energy budget needs energy metering (energy.enabled=true)")


def _base_shape(plan: SweepPlan, info: ClusterInfo) -> Resources:
    """What a run of the sweep holds before any swept resource is applied, settled against the cluster."""
    assert plan.expander is not None
    return settle_gpus(parse_resources(plan.expander.base.get("resources") or {}), info.total_gpus)


def admit(spec: RunSpec, info: ClusterInfo) -> RunSpec:
    """A proposed run's resources settled against the cluster (ConfigError when no node could hold it)."""
    spec = replace(spec, resources=settle_gpus(spec.resources, info.total_gpus))
    check_feasible(spec.resources, info)
    return spec


def ended_history(store: MlflowStore) -> list[tuple[str, Observation]]:
    """Every ended proposal of the sweep's earlier launches, one per run_key (its best status), newest first."""
    history: dict[str, Observation] = {}
    best = store.statuses()
    for run in store.child_runs():
        key = run.data.tags.get("run_key")
        if not key or key in history or run_status(run) != best.get(key):
            continue
        observation = observation_of(run_status(run), run.data.tags, run.data.metrics)
        if observation is not None:
            history[key] = observation
    return list(history.items())


def with_early_stopping(plan: SweepPlan, options: SchedulerOptions,
                        history: list[tuple[str, Observation]]) -> tuple[SchedulerOptions, Any]:
    """The sweep's early stopping as a pruner actor the executors ask at checkpoints, told the earlier runs."""
    if plan.early_stop is None:
        return options, None
    from orchestrator.execution.pruner import start_pruner, tell_history

    pruner = start_pruner(plan.early_stop)
    for key, observation in history:
        tell_history(pruner, key, observation.status, observation.metrics, observation.checkpoints)
    return replace(options, run=replace(options.run, early_stop=plan.early_stop, pruner=pruner)), pruner


class _PrunerTeller:
    def __init__(self, pruner: Any) -> None:
        self.pruner = pruner

    def on_end(self, result: RunResult) -> None:
        from orchestrator.execution.pruner import tell_ended

        if result.status != KILLED:
            tell_ended(self.pruner, result)


def _reporter(writer: Any, events: RunEvents | None) -> Callable[[Planner, int], None]:
    """After each ended run of a closed-loop sweep: how the search stands, on the parent run at step = runs ended,
    and the budget on the progress display."""
    def report(planner: Planner, ended: int) -> None:
        state = planner.budget()
        if state is None:
            return
        writer.launch_metrics.remote(dict(planner.metrics()), ended)
        if events is not None and hasattr(events, "on_budget"):
            events.on_budget(state, ended)

    return report


# What the end of a launch imports (the runs as a table, the analysis's and the report's figures, the report's
# forest): 2.3 s on a fresh driver here, paid after the last run by every `orchestrator run`.
END_OF_LAUNCH_MODULES = ("orchestrator.sweeps", "orchestrator.analysis.report", "orchestrator.analysis.plots",
                         "orchestrator.report", "sklearn.ensemble", "sklearn.inspection")


def preload_end_of_launch() -> None:
    """Import END_OF_LAUNCH_MODULES in a thread while the runs run (the driver mostly waits on Ray then), so the
    end of the launch does not wait for them. One that cannot be imported is left for its user to report."""
    import importlib
    import sys
    import threading

    missing = [name for name in END_OF_LAUNCH_MODULES if name not in sys.modules]
    if not missing:
        return

    def load() -> None:
        for name in missing:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - e.g. scikit-learn absent: the report's section says so
                pass

    threading.Thread(target=load, name="orchestrator-preload", daemon=True).start()


# Seconds the driver waits, at the end of a launch, for executors' last tracking messages to reach the writer.
CLOSE_DEADLINE_S = 30.0


def close_writer(writer: ShardedWriter, status: str, metrics: dict[str, float]) -> list[str]:
    """End the launch's parent run once every run's end is written; returns the writes that failed. While the MLflow
    server is unreachable the writer keeps answering not-closed for a grace period (it may come back); after that its
    writes stay in a journal for the next launch, and the returned errors say where."""
    import ray

    deadline, told = time.monotonic() + CLOSE_DEADLINE_S, False
    while True:
        force = time.monotonic() > deadline
        closed, errors = writer.close(status, metrics, force)
        if closed:
            return errors
        outage = ray.get(writer.primary.outage.remote()) if force else None
        if outage and not told:
            print(f"{outage}; waiting up to {OUTAGE_GRACE_S:.0f} s for it to answer", flush=True)
            told = True
        time.sleep(0.5 if outage else 0.02)


def _experiment_id(store: MlflowStore) -> str | None:
    """The sweep's experiment id, or None when the server went away before it could be read."""
    try:
        return store.experiment_id()
    except TrackingError:
        return None


@dataclass
class Analyzed:
    """What a launch's analysis said, for the summary and the notes."""

    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    # The sweep's runs it read (None when it did not run), and the objectives of its first front.
    runs: Any = None
    objectives: dict[str, str] | None = None
    files: list[str] = field(default_factory=list)
    # The sweep as the analysis read it, every run written (None: not read); the report draws the same snapshot.
    sweep: Any = None


def analyze(uri: str, sweep: str, spec: Any, parent_id: str, primary: tuple[str, str] | None = None) -> Analyzed:
    """Run the sweep's `analysis:` (without one, the default analysis of the job's primary metric) on all its
    finished runs and log the report to this launch's parent run."""
    from orchestrator.analysis import run_analysis
    from orchestrator.analysis.defaults import default_analysis
    from orchestrator.analysis.spec import validate_analysis_spec
    from orchestrator.sweeps import load_sweep

    loaded = load_sweep(sweep, tracking_uri=uri)
    runs = loaded.runs
    notes: list[str] = []
    if not spec and primary is not None:
        spec, notes = default_analysis(runs, *primary)
    report = run_analysis(runs, spec)
    warnings = notes + list(report.warnings)
    store = MlflowStore(uri, sweep)
    store.log_files(parent_id, report.files, "analysis")
    store.log(parent_id, metrics=report.metrics,
              tags={"analysis.warnings": "\n".join(warnings)} if warnings else None)
    fronts = validate_analysis_spec(spec).frontiers
    return Analyzed(warnings, list(report.summary), runs, dict(fronts[0].objectives) if fronts else None,
                    sorted(n for n in report.files if n.endswith(".png")), loaded)


def write_notes(writer: Any, store: MlflowStore, plan: SweepPlan, summary: LaunchSummary, analysis: Analyzed,
                specs: Mapping[str, RunSpec], tags: Mapping[str, str]) -> Any:
    """The experiment's, the launch's and this launch's children's notes (see orchestrator/tracking/notes.py), handed
    to the `writer` actor to write; the ref of its answer (for `notes_written`), or None when there is nothing to
    write. Notes are descriptions: a failure to make or write one is logged, never fails the launch."""
    from orchestrator.tracking import notes

    try:
        experiment_id = summary.experiment_id or store.experiment_id()
        front = None
        if analysis.runs is not None and analysis.objectives:
            from orchestrator.analysis.pareto import pareto_front

            front = pareto_front(analysis.runs, analysis.objectives)
        standing, unstood = _standing_rows(analysis, front, specs)
        counts = {s: summary.count(s) for s in (FINISHED, FAILED, PRUNED, KILLED)}
        run_tags: list[tuple[str, dict[str, str]]] = []
        experiment_tags: dict[str, str] = {}
        if summary.parent_run_id:
            launch = notes.launch_note(
                plan.name, {**counts, "skipped": summary.skipped}, summary.wall_s,
                sweep_totals(r.metrics for r in summary.results.values() if r.status in DONE),
                summary.analysis_summary, summary.analysis_warnings, front, analysis.objectives, analysis.files,
                unstood)
            run_tags.append((summary.parent_run_id, {notes.NOTE: launch}))
            latest = notes.run_link(experiment_id, summary.parent_run_id)
            counted = f"{counts[FINISHED]} finished, {counts[FAILED]} failed, {summary.skipped} skipped"
            job_target = str(next(iter(specs.values())).job.get("_target_", "")) if specs else ""
            experiment_tags[notes.NOTE] = notes.experiment_note(
                plan.name, plan.kind, job_target, plan.varied, plan.primary, _command_line(tags),
                tags.get("orchestrator.cwd"), latest, counted, summary.view_link)
        if standing is not None:
            run_tags += _standings(analysis, standing, front, specs, experiment_id)
    except Exception as exc:  # noqa: BLE001 - a description is not worth failing a finished launch for
        log.warning("could not write the sweep's notes: %s", exc)
        return None
    if not run_tags and not experiment_tags:
        return None
    return writer.describe.remote(run_tags, experiment_tags)


def notes_written(ref: Any) -> None:
    """Wait for the notes `write_notes` handed to the writer; what could not be written is logged."""
    import ray

    if ref is None:
        return
    try:
        failed = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - as in write_notes
        failed = [str(exc)]
    for failure in failed:
        log.warning("could not write the sweep's notes: %s", failure)


def write_sweep_view(store: MlflowStore, plan: SweepPlan, summary: LaunchSummary) -> str | None:
    """The sweep's saved view (orchestrator/tracking/view.py), written when the job names its primary metric; its
    link, or None when there is none (no primary metric, another MLflow UI, a failed write: the plain link serves)."""
    from orchestrator.tracking.view import SweepView, param_key, write_view

    if plan.primary is None or summary.experiment_id is None or not summary.results:
        return None
    from orchestrator.analysis.defaults import COST_COLUMNS

    metrics = [r.metrics for r in summary.results.values()]
    spent = [m for m in COST_COLUMNS if any((r.get(m) or 0) > 0 for r in metrics)]  # charted: the first, as the
    present = spent + [m for m in ("energy_j",) if any(m in r for r in metrics)]   # default analysis's front
    curves = [m for m in (plan.primary[0], "train_loss") if any(m in r for r in metrics)]
    view = SweepView(summary.experiment_id, plan.name, [param_key(p) for p in plan.varied], plan.primary, present,
                     curves)
    link = write_view(store, view)
    return link.link if link.saved else None


def log_report(store: MlflowStore, plan: SweepPlan, parent_id: str, sweep: Any = None) -> None:
    """report.html (orchestrator/report/) on the launch's parent run, where MLflow shows it inline; of `sweep` (a
    `Sweep` read after the launch's last write; None: read it now). A report that cannot be built is logged, never
    fails the launch."""
    from orchestrator.report import build_html_report, report_bytes

    metric, mode = plan.primary or ("val_loss", "min")
    try:
        if sweep is None:
            page = report_bytes(store.uri, plan.name, metric, mode, analysis=plan.analysis, launch_run_id=parent_id)
        else:
            from orchestrator.sweeps import reread_launches

            page = build_html_report(reread_launches(sweep), metric=metric, mode=mode, analysis=plan.analysis,
                                     launch_run_id=parent_id).encode("utf-8")
        store.log_files(parent_id, {"report.html": page}, "")
    except Exception as exc:  # noqa: BLE001 - the runs and their analysis are logged; the page is a view of them
        log.warning("could not write the sweep's report.html: %s", exc)


def _command_line(tags: Mapping[str, str]) -> str | None:
    """`orchestrator run <overrides>` from the launch's command tag (a JSON list of overrides), shell-quoted."""
    import shlex

    raw = tags.get("orchestrator.command")
    if not raw:
        return None
    try:
        overrides = json.loads(raw)
    except ValueError:
        return None
    config_dir = tags.get("orchestrator.config_dir")
    return shlex.join(["orchestrator", "run", *([f"--config-dir={config_dir}"] if config_dir else []), *overrides])


def _standing_rows(analysis: Analyzed, front: Any, specs: Mapping[str, RunSpec]) -> tuple[Any, int]:
    """This launch's runs to tell where they stand (None when there is no front): its runs on the front, then the
    others best first by the last objective (the quality one), at most MAX_STANDINGS (one write each, after the
    launch's last run); and how many were left out."""
    import pandas as pd

    from orchestrator.tracking import notes

    objectives = analysis.objectives
    if front is None or not objectives or analysis.runs is None:
        return None, 0
    rows = analysis.runs[analysis.runs["run_key"].isin(list(specs))].dropna(subset=list(objectives))
    last, sense = list(objectives.items())[-1]
    on_front = rows.index.isin(front.index)
    ordered = pd.concat([rows[on_front], rows[~on_front].sort_values(last, ascending=sense == "min")])
    return ordered.head(notes.MAX_STANDINGS), max(0, len(ordered) - notes.MAX_STANDINGS)


def _standings(analysis: Analyzed, rows: Any, front: Any, specs: Mapping[str, RunSpec],
               experiment_id: str) -> list[tuple[str, dict[str, str]]]:
    """(run id, its note tag) for each of `rows`."""
    from orchestrator.tracking import notes

    objectives = analysis.objectives
    assert objectives is not None
    tags = []
    for _, row in rows.iterrows():
        spec = specs[row["run_key"]]
        config = notes.spec_note(spec)
        tags.append((row["run_id"], {notes.NOTE: notes.standing_note(config, spec.name, row, front, objectives,
                                                                     experiment_id)}))
    return tags
