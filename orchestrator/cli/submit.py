"""`orchestrator submit [overrides...] --address http://<head>:8265`: run a sweep as a Ray job on a cluster.

The driver, `python -m orchestrator run <overrides>`, runs on the cluster with this project as its working directory
(uploaded, as `ray job submit --working-dir . -- python -m orchestrator run ...` does), so the sweep goes on when this
terminal closes. The overrides are composed and planned here first: a bad sweep exits 2 and submits nothing.
A relative SQLite tracking URI is made absolute against this directory, so results outlive the job's working-dir copy.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli._job_api import (EXIT_OK, add_address_argument, connect, follow, guarded, is_local,
                                       logs_command, resolve_address, stop_command, translated)
from orchestrator.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

PROG = "orchestrator submit"
# Left out of the upload: environments, VCS data, local tracking stores and outputs, caches.
EXCLUDES = [".venv", ".git", "mlflow.db", "mlartifacts", "outputs", "multirun", "__pycache__", ".pytest_cache",
            ".mypy_cache", ".ruff_cache", ".hypothesis", "*.db"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", help="Hydra overrides, as for `orchestrator run` (e.g. +sweep=lm_demo)")
    add_address_argument(p)
    p.add_argument("--follow", action="store_true",
                   help="stream the job's output until it ends; exit 0 if it succeeded, 1 if not")
    p.add_argument("--working-dir", metavar="DIR",
                   help="project directory uploaded as the job's working directory, where its jobs and conf/ are "
                        "(default: .)")
    p.add_argument("--config-dir", metavar="DIR",
                   help="the project's configs, instead of its conf/ (inside the working directory, so it travels)")
    p.add_argument("--rerun-failed", action="store_true", help="run again the run_keys whose last run FAILED")
    p.add_argument("--dry-run", action="store_true", help="print the plan and the job that would run; submit nothing")
    return p


def submit_main(argv: list[str]) -> int:
    args = parser().parse_intermixed_args(argv)
    return guarded(PROG, lambda: _submit(args))


def _submit(args: argparse.Namespace) -> int:
    address = None if args.dry_run else resolve_address(args.address)
    project = project_dir(args.working_dir)
    config_dir = relative_config_dir(project, args.config_dir)
    run_argv = [*args.overrides, *(["--rerun-failed"] if args.rerun_failed else [])]
    cfg = check(run_argv, project, config_dir)
    uri, command = job_command(cfg, run_argv, config_dir)
    if address is None:
        return dry_run(cfg, command, project)
    client = connect(address)
    with translated(address):
        submission_id = client.submit_job(entrypoint=command, runtime_env=runtime_env(project))
    announce(address, submission_id, command, uri)
    return follow(client, address, submission_id) if args.follow else EXIT_OK


def project_dir(flag: str | None) -> Path:
    """What the job runs in, as `orchestrator run` would here: --working-dir, else this directory."""
    path = Path(flag or ".").expanduser().resolve()
    if not path.is_dir():
        raise ConfigError("--working-dir", f"{flag} is not a directory")
    return path


def relative_config_dir(project: Path, flag: str | None) -> str | None:
    """--config-dir relative to the working directory, which the job is uploaded as (so it must lie inside it)."""
    if not flag:
        return None
    path = Path(flag).expanduser().resolve()
    if not path.is_relative_to(project):
        raise ConfigError("--config-dir", f"{flag} is outside the working directory {project}, so it would not be "
                                          "uploaded with the job; move it inside or give --working-dir")
    return str(path.relative_to(project))


def check(run_argv: list[str], project: Path, config_dir: str | None = None) -> DictConfig:
    """Compose and plan the sweep as `orchestrator run` will on the cluster; ConfigError on bad input."""
    from orchestrator.cli.run import overrides_of
    from orchestrator.launch import scheduler_options
    from orchestrator.project import compose, importable
    from orchestrator.sweep.expand import plan_sweep

    overrides = overrides_of(run_argv)
    with importable(project):
        cfg = compose(overrides, project, str(project / config_dir) if config_dir else None)
        plan_sweep(cfg)
    scheduler_options(cfg)
    return cfg


def job_command(cfg: DictConfig, run_argv: list[str], config_dir: str | None = None) -> tuple[str, str]:
    """The tracking URI the job will use and the command it runs, for run arguments that `check` composed into `cfg`:
    what `orchestrator submit` sends, and what a cluster recipe must run to do the same (deploy/kuberay/)."""
    uri, run_argv = tracking_for_job(cfg, [*run_argv, *(["--config-dir", config_dir] if config_dir else [])])
    return uri, entrypoint(run_argv)


def tracking_for_job(cfg: DictConfig, run_argv: list[str]) -> tuple[str, list[str]]:
    """The tracking URI the job will use, and the run arguments that make it so: a relative SQLite path would land in
    the job's temporary working-dir copy and vanish with it, so it is made absolute against this directory."""
    from orchestrator.project import quoted
    from orchestrator.tracking import DEFAULT_TRACKING_URI, absolute_uri

    uri = str(cfg.tracking.get("uri") or DEFAULT_TRACKING_URI)
    absolute = absolute_uri(uri)
    return absolute, run_argv if absolute == uri else [*run_argv, f"tracking.uri={quoted(absolute)}"]


def entrypoint(run_argv: list[str]) -> str:
    return shlex.join(["python", "-m", "orchestrator", "run", *run_argv])


def runtime_env(project: Path) -> dict[str, object]:
    return {"working_dir": str(project), "excludes": list(EXCLUDES)}


def announce(address: str, submission_id: str, command: str, uri: str) -> None:
    print(f"submitted {submission_id} to {address}\n  runs:     {command}\n  tracking: {uri}")
    if uri.startswith(("sqlite:", "file:")) and not is_local(address):
        print("  note:     this tracking store is a file on the head node's filesystem (the job runs there)")
    print(f"  follow:   {logs_command(address, submission_id)}\n  stop:     {stop_command(address, submission_id)}")


def dry_run(cfg: DictConfig, command: str, project: Path) -> int:
    from orchestrator.cli.run import print_plan

    print_plan(cfg)
    print(f"would submit: {command}\n  working dir: {project} (without {', '.join(EXCLUDES)})")
    return EXIT_OK
