"""`hydra.launcher` (OrchestratorLauncherConf) turned into what an orchestrator launch takes, checked up front.

Errors name the launcher's own field (`hydra.launcher.resources.gpus: ...`), before anything starts or is written.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf

from orchestrator.errors import ConfigError
from orchestrator.masking import mask_override
from orchestrator.execution.scheduler import SchedulerOptions
from orchestrator.records import Resources
from orchestrator.sweep.expand import SweepPlan


@dataclass(frozen=True)
class LaunchSettings:
    """Everything a batch of Hydra jobs is launched with."""

    experiment: str
    tracking_uri: str
    resources: Resources
    cluster: dict[str, Any]
    options: SchedulerOptions


@contextlib.contextmanager
def _field_prefix(prefix: str) -> Iterator[None]:
    try:
        yield
    except ConfigError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise ConfigError(f"{prefix}{exc.field}", message) from exc


def tracking_uri(setting: str | None, cwd: str) -> str:
    """The setting, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db; a relative SQLite path taken from `cwd`."""
    from orchestrator.tracking import DEFAULT_TRACKING_URI, absolute_uri

    return absolute_uri(setting or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI, cwd)


def launch_settings(config: DictConfig) -> LaunchSettings:
    from orchestrator.launch import scheduler_options
    from orchestrator.sweep.resources import parse_resources

    launcher, cwd = config.hydra.launcher, str(config.hydra.runtime.cwd)
    with _field_prefix("hydra.launcher."):
        resources = parse_resources(OmegaConf.to_container(launcher.resources))
        cost = OmegaConf.to_container(launcher.cost)
        if str(cost["model"]).endswith((".yaml", ".yml")):
            cost["model"] = str(Path(cwd, cost["model"]))  # a path relative to where the app was started
        options = scheduler_options(OmegaConf.create({"execution": launcher.execution, "energy": launcher.energy,
                                                      "cost": cost}))
    experiment = str(launcher.experiment or config.hydra.job.name)
    return LaunchSettings(experiment, tracking_uri(launcher.tracking_uri, cwd), resources,
                          OmegaConf.to_container(launcher.cluster), options)


def parent_texts(config: DictConfig) -> dict[str, str]:
    """The multirun's composed task config (secret-looking values masked), as `orchestrator run` logs its own."""
    from orchestrator.masking import mask_secrets

    task = {k: v for k, v in OmegaConf.to_container(config, resolve=False).items() if k != "hydra"}
    return {"config.yaml": OmegaConf.to_yaml(mask_secrets(task))}


def parent_params(config: DictConfig, plan: SweepPlan, settings: LaunchSettings) -> dict[str, Any]:
    """The multirun's settings on its parent run, so every figure on its runs can be reproduced."""
    run, gpus = settings.options.run, settings.resources.gpus
    params = {"launcher": "hydra", "hydra.job.name": config.hydra.job.name,
              "hydra.overrides.task": " ".join(mask_override(o) for o in config.hydra.overrides.task), "sweep.kind": plan.kind,
              "resources.gpus": "auto" if gpus is None else gpus, "resources.cpus": settings.resources.cpus,
              "cluster.address": settings.cluster.get("address"), "execution.retries": settings.options.retries,
              "energy.enabled": run.energy, "energy.sample_interval_s": run.sample_interval_s}
    return {**params, **(run.cost.as_params() if run.cost is not None else {})}
