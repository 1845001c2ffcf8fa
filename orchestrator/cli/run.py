"""`orchestrator run`: compose conf/ with Hydra (plus ./conf of the directory you run from), then launch."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

# Flags of our own, turned into config overrides before Hydra sees the command line.
FLAGS = {"--rerun-failed": "execution.rerun_failed=true", "--dry-run": "execution.dry_run=true"}
EXIT_FAILED_RUNS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
# Parent-run tags holding the command line of a launch and the directory it ran in.
COMMAND_TAG, CWD_TAG = "orchestrator.command", "orchestrator.cwd"


def config_dir() -> Path:
    """The shipped conf/ (next to the package in a checkout or editable install)."""
    return Path(__file__).resolve().parents[2] / "conf"


def hydra_argv(argv: list[str], project: Path | None = None) -> list[str]:
    """Our flags as overrides, plus the project's conf/ (default ./conf) on Hydra's search path so users' own sweeps
    and jobs are found."""
    args = [FLAGS.get(a, a) for a in argv]
    user_conf = (Path.cwd() if project is None else project) / "conf"
    if user_conf.is_dir() and user_conf.resolve() != config_dir().resolve():
        args.append(f"hydra.searchpath=[file://{user_conf.resolve()}]")
    return args


def print_plan(cfg: DictConfig) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestrator.sweep.expand import plan_sweep

    plan = plan_sweep(cfg)
    table = Table(title=f"{plan.name}: {len(plan.runs)} runs ({plan.kind}) - dry run, nothing started or written")
    for column in ("run", "run_key", "gpus", "cpus"):
        table.add_column(column)
    for spec in plan.runs:
        gpus = "auto" if spec.resources.gpus is None else f"{spec.resources.gpus:g}"
        table.add_row(spec.name, spec.run_key, gpus, f"{spec.resources.cpus:g}")
    console = Console()
    console.print(table)
    for dropped in plan.dropped:
        console.print(f"dropped {dropped.point}: {dropped.reason}", style="yellow")
    return 0


def command_tags() -> dict[str, str]:
    """The overrides this launch was run with and where from, so `orchestrator resume <sweep>` can repeat it; a
    secret-looking override keeps its key but not its value."""
    import json
    import os

    from hydra.core.hydra_config import HydraConfig

    from orchestrator.masking import mask_override

    overrides = [mask_override(o) for o in HydraConfig.get().overrides.task]
    return {COMMAND_TAG: json.dumps(overrides), CWD_TAG: os.getcwd()}


def app(cfg: DictConfig) -> int:
    from rich.console import Console

    from orchestrator.cli.progress import ProgressDisplay, report
    from orchestrator.errors import OrchestratorError
    from orchestrator.launch import launch

    console = Console()
    if cfg.execution.get("dry_run"):
        return print_plan(cfg)
    display = ProgressDisplay(console)
    try:
        summary = launch(cfg, events=display, on_plan=display.on_plan, tags=command_tags())
    except OrchestratorError as exc:
        display.stop()
        console.print(f"[red]error:[/] {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        display.stop()
        console.print("[yellow]interrupted[/]: running runs were marked KILLED; run the same command again to resume")
        return EXIT_INTERRUPTED
    display.stop()
    report(console, summary)
    return 0 if summary.ok else EXIT_FAILED_RUNS


def main(argv: list[str]) -> int:
    import hydra

    status = {"code": 0}

    def task(cfg: DictConfig) -> None:
        status["code"] = app(cfg)

    saved, on_term = sys.argv, _stop_on_sigterm()
    sys.argv = ["orchestrator run", *hydra_argv(argv)]
    try:
        hydra.main(config_path=str(config_dir()), config_name="config", version_base=None)(task)()
    finally:
        sys.argv = saved
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    return status["code"]


def _stop_on_sigterm() -> Any:
    """SIGTERM (`orchestrator stop`, `ray job stop`, a scheduler's kill) stops the launch like Ctrl-C: running runs
    are marked KILLED and the parent run closed, so a later launch resumes at once. Returns the handler it replaced."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
