"""The one config schema: every setting of a launch as a typed dataclass, each default written once, here.

`orchestrator run` composes `RunConfig`, the primary config `orchestrator` in Hydra's ConfigStore, whose defaults
list picks the job, cluster and tracking configs from conf/ (the project's ./conf first). The Hydra launcher
(`hydra/launcher=orchestrator`) nests the same ResourcesConf, ClusterConf, ExecutionConf, EnergyConf and CostConf
under `hydra.launcher`. From Python, build them by keyword: `ExecutionConf(retries=2)`, `SweepConf(kind="grid",
params={...})`.

No `from __future__ import annotations`: OmegaConf reads these annotations at run time, and Hydra's plugin scan
imports the launcher's config (which imports this) before it is in sys.modules.
"""

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

# Name of the primary config of `orchestrator run` in Hydra's ConfigStore.
PRIMARY = "orchestrator"


@dataclass
class ResourcesConf:
    # GPUs per run: "auto" (one where the cluster has GPUs, none where it has none), a fraction (0.25) or whole GPUs.
    gpus: Any = "auto"
    # Logical CPUs reserved per run.
    cpus: float = 1.0
    # Memory reserved per run in GiB (null: none reserved).
    memory_gb: Optional[float] = None
    # GPU power limit set on the run's boards while it runs (through NVML, restored after), in W or as a fraction of
    # each board's default limit; at most one (null: limits left as they are). Sweep it as a resource:
    # params: {resources: {power_limit_frac: [0.5, 0.7, 1.0]}}.
    power_limit_w: Optional[float] = None
    power_limit_frac: Optional[float] = None


@dataclass
class ClusterConf:
    # null: an embedded Ray on this machine (or the cluster in $RAY_ADDRESS, as for a submitted driver); "auto": the
    # cluster `ray start` runs on this machine; "<head>:6379" or "ray://head:10001": join that cluster.
    address: Optional[str] = None
    # Logical GPUs declared to the embedded Ray (null: the GPUs Ray detects). Lets GPU scheduling run on a CPU machine.
    num_gpus: Optional[int] = None
    # Logical CPUs declared to the embedded Ray (null: the machine's cores, raised to one per declared GPU).
    num_cpus: Optional[int] = None
    # Ray dashboard for the embedded Ray (listens on 127.0.0.1 only).
    include_dashboard: bool = False


@dataclass
class TrackingConf:
    # MLflow tracking URI: a SQLite file (relative to the directory you run from) or http://host:port of a server.
    uri: str = "sqlite:///mlflow.db"
    # At the end of each launch, log report.html (the sweep as one self-contained page) on its parent run.
    report: bool = True
    # Writer processes, each writing the runs whose run_key hashes to it: more than 1 only for an MLflow server
    # (http://...), whose workers can take writes in parallel; a SQLite file takes one writer.
    writer_shards: int = 1
    # Backpressure: while a writer is more than this many seconds behind (the oldest run end it has not written
    # waited that long), no new run starts; running runs go on. Bounds the writers' backlog and the wait at the launch's end when
    # runs end faster than the store takes them (null: never hold runs; at least 1).
    max_lag_s: Optional[float] = 30.0


@dataclass
class ExecutionConf:
    # Times a run whose job raised is tried again before it is marked FAILED.
    retries: int = 0
    # Times a run whose executor process or node died is started again elsewhere (does not spend `retries`).
    retries_on_loss: int = 3
    # Exception type names (the raised type or a base class) never retried, e.g. a job's config error.
    non_retryable: List[str] = field(default_factory=lambda: ["ConfigError"])
    # Seconds a run may take before it is stopped, marked FAILED (cause timeout) and its executor replaced (null: no
    # limit).
    timeout_s: Optional[float] = None
    # Start a fresh executor process for every run (for jobs that leak memory); slower to start.
    isolate: bool = False
    # At most this many runs at once (null: as many as the cluster's resources allow).
    max_concurrent: Optional[int] = None
    # Seconds between metric flushes from a running job to the tracker.
    flush_interval_s: float = 1.0
    # `orchestrator run` only: run again the run_keys whose last run FAILED (FINISHED ones are always skipped).
    rerun_failed: bool = False
    # `orchestrator run` only: plan and print the runs, start nothing, write nothing.
    dry_run: bool = False


@dataclass
class EnergyConf:
    # Meter each run's GPU (NVML) and CPU (RAPL) energy; what cannot be measured is recorded as missing, never 0.
    enabled: bool = True
    # Period of the power sampler (used where the GPU has no energy counter, and for peak power), in seconds.
    sample_interval_s: float = 0.1
    # Spacing of the system/ power and energy curve logged on each run, in seconds.
    curve_interval_s: float = 5.0


@dataclass
class CostConf:
    # The cost model to start from: a name in conf/cost/ (default, onprem; a project's own conf/cost/ first) or a
    # path to a .yaml file. The factors below, where set, replace the model's.
    model: str = "default"
    # What cost_usd is: gpu_hours (GPU time x price), energy (facility kWh x price) or both (null: the model's).
    mode: Optional[str] = None
    # $ per GPU-hour by GPU model, merged over the model's table.
    usd_per_gpu_hour: Dict[str, float] = field(default_factory=dict)
    # $ per GPU-hour for a GPU model not listed (null: the model's).
    default_usd_per_gpu_hour: Optional[float] = None
    # $ per kWh at the facility meter (null: the model's).
    usd_per_kwh: Optional[float] = None
    # Power usage effectiveness, facility over IT energy (null: the model's).
    pue: Optional[float] = None
    # Grid carbon intensity in gCO2 per kWh (null: the model's).
    grid_co2_g_per_kwh: Optional[float] = None


@dataclass
class SweepConf:
    """A sweep section (conf/sweep/*.yaml). Which keys a kind reads is the kind's (orchestrator/sweep/); checked when
    the sweep is planned, not while Hydra composes it, so `~sweep.params` stays possible on the command line."""

    # The MLflow experiment (null: the job's target).
    name: Optional[str] = None
    # grid | zip | isoflop | random | adaptive (null: grid when params are given, else a single run).
    kind: Optional[str] = None
    # Config path -> values: lists, {range|log: [lo, hi], num|step}, or distributions for random and adaptive.
    params: Any = None
    # Seeds every point runs with (written to seed_path); or `repeats: n` seeds from the job's own seed up.
    seeds: Any = None
    repeats: Optional[int] = None
    seed_path: str = "job.seed"
    # random: how many samples; random and adaptive: the seed of their draws.
    n: Optional[int] = None
    seed: int = 0
    # isoflop: compute budgets in FLOPs, zipped model configs, how N is known, where tokens go, cell bounds.
    budgets: Any = None
    models: Any = None
    n_params_fn: Optional[str] = None
    n_params_path: str = "job.n_params"
    tokens_path: str = "job.tokens"
    bounds: Any = None
    # adaptive: frontier (objectives) or law; when to stop (budget); runs proposed and not yet ended (null: the
    # executor slots); space-filling proposals before the model is used.
    goal: Optional[str] = None
    objectives: Any = None
    law: Any = None
    budget: Any = None
    in_flight: Optional[int] = None
    initial: Optional[int] = None
    # Where GPU power limits cannot be set (no permission): false runs on at the default limit, tagged
    # power_limit_status=not_permitted; true (null: true) refuses the sweep before it starts.
    power_limit_required: Optional[bool] = None
    # Stop runs early that can no longer reach the front: {metric, mode, min_fraction}.
    early_stop: Any = None
    # Fits and frontiers run on the sweep's runs at the end of each launch.
    analysis: Any = None


SWEEP_KEYS = tuple(f.name for f in fields(SweepConf))


@dataclass
class RunConfig:
    """What `orchestrator run` composes: conf/job/<job>.yaml, conf/cluster/, conf/tracking/ and, with +sweep=<name>,
    conf/sweep/<name>.yaml, over these defaults."""

    defaults: List[Any] = field(default_factory=lambda: [
        "_self_", {"job": "lm"}, {"cluster": "local"}, {"tracking": "local"},
        {"override hydra/job_logging": "stdout"}, {"override hydra/hydra_logging": "disabled"}])
    # MLflow experiment name (null: the sweep's name, or the job's target for a single run).
    name: Optional[str] = None
    # The job: `_target_` (a function fn(cfg, ctx) -> metrics) and its config, from conf/job/<name>.yaml.
    job: Any = None
    # The sweep (a SweepConf), from +sweep=<name>; without one the job runs once.
    sweep: Any = None
    # What each run holds while it runs (a sweep may vary these per run, e.g. resources.gpus).
    resources: ResourcesConf = field(default_factory=ResourcesConf)
    cluster: ClusterConf = field(default_factory=ClusterConf)
    tracking: TrackingConf = field(default_factory=TrackingConf)
    execution: ExecutionConf = field(default_factory=ExecutionConf)
    energy: EnergyConf = field(default_factory=EnergyConf)
    # Prices and grid factors turning GPU time and energy into cost_usd and co2_g.
    cost: CostConf = field(default_factory=CostConf)


def register() -> None:
    """Put the primary config in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=PRIMARY, node=RunConfig, provider="orchestrator")
