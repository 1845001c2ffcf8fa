"""`hydra/launcher=orchestrator`: the launcher's settings, registered in Hydra's ConfigStore.

The sections are `orchestrator run`'s own (resources, cluster, execution, energy, cost: one schema, in
orchestrator/schema.py), under `hydra.launcher`. Imported when Hydra discovers plugins, so it imports nothing heavy.
No `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in sys.modules, where
dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from orchestrator.schema import ClusterConf, CostConf, EnergyConf, ExecutionConf, ResourcesConf


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
