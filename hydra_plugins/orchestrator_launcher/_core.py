"""The driver side of `hydra/launcher=orchestrator`: a batch of Hydra jobs becomes one orchestrator launch.

Each job's sweep config is composed here, as BasicLauncher composes it (so a bad override fails before anything runs),
and runs on an executor through `_job.run_hydra_job`. What comes back is each job's own `JobReturn`, in order.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.orchestrator_launcher import _job, _plan
from hydra_plugins.orchestrator_launcher._settings import launch_settings, parent_params, parent_texts
from hydra_plugins.orchestrator_launcher.orchestrator_launcher import OrchestratorLauncher
from orchestrator.records import RunResult, RunSpec
from orchestrator.sweep.expand import SweepPlan

log = logging.getLogger(__name__)


class JobNotReturnedError(RuntimeError):
    """A job ended without a JobReturn of its own (its executor died, or it could not start)."""


def _absolute(path: Any, cwd: Any) -> str:
    return str(Path(str(cwd), str(path)).absolute()) if not os.path.isabs(str(path)) else str(path)


def sweep_config(launcher: OrchestratorLauncher, overrides: Sequence[str], idx: int, job_id: str) -> DictConfig:
    """The job's config, composed as BasicLauncher composes it; its sweep dir made absolute for the executor."""
    assert launcher.hydra_context is not None and launcher.config is not None
    config = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with read_write(config.hydra), open_dict(config.hydra):
        config.hydra.job.id = job_id
        config.hydra.job.num = idx
        config.hydra.sweep.dir = _absolute(config.hydra.sweep.dir, config.hydra.runtime.cwd)
    return config


def plan_batch(launcher: OrchestratorLauncher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int,
               experiment: str, resources: Any) -> tuple[SweepPlan, list[DictConfig]]:
    assert launcher.config is not None
    app = str(launcher.config.hydra.job.name)
    shared = _job.pack((launcher.task_function, launcher.hydra_context, Singleton.get_state()))
    runs: list[RunSpec] = []
    configs: list[DictConfig] = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        spec = _plan.hydra_run(app, idx, overrides, resources)
        configs.append(sweep_config(launcher, overrides, idx, spec.run_key))
        runs.append(replace(spec, payload=(shared, _job.pack(configs[-1]))))
    varied = _plan.varied_keys([spec.varied for spec in runs])
    return SweepPlan(experiment, _plan.KIND, tuple(runs), (), varied), configs


def job_return(result: RunResult | None, config: DictConfig) -> JobReturn:
    """The job's own JobReturn; for a job that never produced one, a FAILED one saying why."""
    if result is not None and isinstance(result.value, bytes):
        return _job.unpack(result.value)
    ret = JobReturn(overrides=list(config.hydra.overrides.task),
                    cfg=OmegaConf.masked_copy(config, [k for k in config if k != "hydra"]),
                    hydra_cfg=OmegaConf.create({"hydra": config.hydra}), task_name=str(config.hydra.job.name),
                    status=JobStatus.FAILED)
    why = result.error if result is not None else "it was never run"
    ret.return_value = JobNotReturnedError(f"job #{config.hydra.job.num} ({' '.join(ret.overrides or [])}): {why}")
    return ret


def launch(launcher: OrchestratorLauncher, job_overrides: Sequence[Sequence[str]],
           initial_job_idx: int) -> list[JobReturn]:
    from orchestrator.launch import execute

    setup_globals()
    assert launcher.config is not None
    if not job_overrides:
        return []
    config = launcher.config
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    settings = launch_settings(config)
    sweep_dir = Path(_absolute(config.hydra.sweep.dir, config.hydra.runtime.cwd))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    log.info(f"Launching {len(job_overrides)} jobs on the orchestrator (experiment {settings.experiment!r}, "
             f"tracking {settings.tracking_uri}), sweep output dir: {sweep_dir}")
    plan, configs = plan_batch(launcher, job_overrides, initial_job_idx, settings.experiment, settings.resources)
    summary = execute(plan, settings.cluster, settings.tracking_uri, settings.options,
                      parent_params(config, plan, settings), parent_texts(config),
                      skip_done=False, resume=launcher.summary)
    launcher.summary = summary
    for error in summary.tracking_errors:
        log.warning(f"tracking write failed: {error}")
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    return [job_return(summary.results.get(spec.run_key), cfg) for spec, cfg in zip(plan.runs, configs)]
