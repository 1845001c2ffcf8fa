"""`hydra/launcher=orchestrator`: the launcher's settings, registered in Hydra's ConfigStore.

The sections mirror `orchestrator run`'s own config (resources, cluster, execution, energy, cost), under
`hydra.launcher`. Imported when Hydra discovers plugins, so it imports nothing heavy. No `from __future__ import
annotations`: Hydra's plugin scan runs this module before it is in sys.modules, where dataclasses cannot resolve
string annotations.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class ResourcesConf:
    # GPUs per job: "auto" (one where the cluster has GPUs, none where it has none), a fraction (0.25) or whole GPUs.
    gpus: Any = "auto"
    # Logical CPUs reserved per job.
    cpus: float = 1.0
    # Memory reserved per job in GiB (null: none reserved).
    memory_gb: Optional[float] = None


@dataclass
class ClusterConf:
    # null: an embedded Ray on this machine (or the cluster in $RAY_ADDRESS); "auto" or "ray://head:10001": join one.
    address: Optional[str] = None
    # Logical GPUs declared to the embedded Ray (null: the GPUs Ray detects).
    num_gpus: Optional[int] = None
    # Logical CPUs declared to the embedded Ray (null: the machine's cores, raised to one per declared GPU).
    num_cpus: Optional[int] = None
    # Ray dashboard for the embedded Ray (listens on 127.0.0.1 only).
    include_dashboard: bool = False


@dataclass
class ExecutionConf:
    # Times a job that raised is run again before it counts as failed.
    retries: int = 0
    # Times a job whose executor process or node died is started again elsewhere (does not spend `retries`).
    retries_on_loss: int = 3
    # At most this many jobs at once (null: as many as the cluster's resources allow).
    max_concurrent: Optional[int] = None
    # A fresh executor process for every job (for jobs that leak memory); slower to start.
    isolate: bool = False
    # Seconds a job may run before it is stopped and counts as failed (null: no limit).
    timeout_s: Optional[float] = None
    # Exception type names (raised or a base class) whose jobs are never retried.
    non_retryable: List[str] = field(default_factory=lambda: ["ConfigError"])
    # Seconds between metric flushes from a running job to the tracker.
    flush_interval_s: float = 1.0


@dataclass
class EnergyConf:
    # Meter each job's GPU (NVML) and CPU (RAPL) energy; what cannot be measured is recorded as missing, never 0.
    enabled: bool = True
    # Period of the power sampler, in seconds.
    sample_interval_s: float = 0.1
    # Spacing of the system/ power and energy curve logged on each job's run, in seconds.
    curve_interval_s: float = 5.0


@dataclass
class CostConf:
    # Cost model to start from: a name in orchestrator's conf/cost/ (default, onprem) or a path to a .yaml file.
    model: str = "default"
    # What cost_usd is: gpu_hours, energy or both (null: the model's).
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
class OrchestratorLauncherConf:
    _target_: str = "hydra_plugins.orchestrator_launcher.orchestrator_launcher.OrchestratorLauncher"
    # MLflow experiment (null: the app's task name, hydra.job.name).
    experiment: Optional[str] = None
    # MLflow tracking URI (null: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the directory the app started in).
    tracking_uri: Optional[str] = None
    # What each job holds while it runs.
    resources: ResourcesConf = field(default_factory=ResourcesConf)
    # Where jobs run.
    cluster: ClusterConf = field(default_factory=ClusterConf)
    # Retries, concurrency, executor reuse.
    execution: ExecutionConf = field(default_factory=ExecutionConf)
    # Energy metering of each job.
    energy: EnergyConf = field(default_factory=EnergyConf)
    # Prices and grid factors turning GPU time and energy into cost_usd and co2_g.
    cost: CostConf = field(default_factory=CostConf)


ConfigStore.instance().store(group="hydra/launcher", name="orchestrator", node=OrchestratorLauncherConf,
                             provider="orchestrator")
