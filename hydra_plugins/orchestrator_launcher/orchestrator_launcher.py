"""The launcher Hydra instantiates for `hydra/launcher=orchestrator`; the work is in `_core`, loaded on first launch."""

from __future__ import annotations

from typing import Any, Sequence

from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OrchestratorLauncher(Launcher):
    """Runs each job of a multirun on orchestrator's persistent Ray executors, metered and tracked in MLflow."""

    def __init__(self, **settings: Any) -> None:
        # The fields of OrchestratorLauncherConf (read back from config.hydra.launcher, which is typed).
        self.settings = settings
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        # The multirun so far (orchestrator's LaunchSummary): a sweeper's next batch continues its MLflow parent run.
        self.summary: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from hydra_plugins.orchestrator_launcher import _core

        return _core.launch(self, job_overrides, initial_job_idx)
