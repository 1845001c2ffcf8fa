"""`orchestrator run`: compose the shipped configs (with the project's ./conf searched first), then launch."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

# Flags of our own, turned into config overrides before Hydra sees the command line.
FLAGS = {"--rerun-failed": "execution.rerun_failed=true", "--dry-run": "execution.dry_run=true"}
EXIT_FAILED_RUNS, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130
# Parent-run tags holding the command line of a launch, the directory it ran in and its --config-dir.
COMMAND_TAG, CWD_TAG, CONFIG_DIR_TAG = "orchestrator.command", "orchestrator.cwd", "orchestrator.config_dir"


def split_config_dir(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--config-dir DIR` (or `--config-dir=DIR`, `-cd DIR`): the project's configs are there instead of ./conf."""
    rest, config_dir, args = [], None, iter(argv)
    for arg in args:
        if arg in ("--config-dir", "-cd"):
            config_dir = next(args, None)
            if config_dir is None:
                from orchestrator.errors import ConfigError

                raise ConfigError("--config-dir", "expected a directory after --config-dir")
        elif arg.startswith("--config-dir="):
            config_dir = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return config_dir, rest


def overrides_of(argv: list[str]) -> list[str]:
    """Our flags as overrides; the rest are Hydra overrides (or Hydra's own flags such as --cfg job)."""
    return [FLAGS.get(a, a) for a in argv]


def print_plan(cfg: DictConfig) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestrator.sweep.expand import plan_sweep

    plan = plan_sweep(cfg)
    if plan.closed_loop:
        return print_search(plan)
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


def print_search(plan: Any) -> int:
    """A closed-loop sweep's dry run: what it searches, under which budget, and its first proposals (the initial
    design, which depends only on the seed and the space)."""
    import dataclasses

    from rich.console import Console
    from rich.table import Table

    from orchestrator.sweep.adaptive.planner import AdaptivePlanner

    spec, console = plan.adaptive, Console()
    target = (", ".join(f"{m} {s}" for m, s in spec.objectives.items()) if spec.goal == "frontier" else
              f"{spec.law.form} law of {spec.law.loss} in {spec.law.n_path}, {spec.law.d_path}")
    console.print(f"[bold]{plan.name}[/]: adaptive sweep, goal {spec.goal} ({target}) - dry run, nothing started "
                  "or written")
    console.print("  budget: " + ", ".join(f"{v:g} {u}" for u, v in spec.budget.items()) + " (the first reached "
                  f"stops it); in flight: {plan.section.get('in_flight') or 'one per executor slot'}; "
                  f"initial design: {spec.initial} runs; seed {spec.seed}")
    if plan.early_stop is not None:
        es = plan.early_stop
        console.print(f"  early stopping on {es.metric} ({es.mode}) from {es.min_fraction:g} of each run")
    space = Table(title="search space")
    for column in ("parameter", "values"):
        space.add_column(column)
    for path, values in spec.params.items():
        space.add_row(path, str(values))
    console.print(space)
    first = AdaptivePlanner(dataclasses.replace(spec, in_flight=spec.initial)).ask(spec.initial)
    table = Table(title=f"first {len(first)} proposals (later ones depend on their results)")
    for column in ("run", "run_key", "gpus", "cpus"):
        table.add_column(column)
    for proposal in first:
        run = plan.expand(proposal.point)
        gpus = "auto" if run.resources.gpus is None else f"{run.resources.gpus:g}"
        table.add_row(run.name, run.run_key, gpus, f"{run.resources.cpus:g}")
    console.print(table)
    return 0


def command_tags(config_dir: str | None = None) -> dict[str, str]:
    """The overrides this launch was run with and where from, so `orchestrator resume <sweep>` can repeat it; a
    secret-looking override keeps its key but not its value."""
    import json
    import os

    from hydra.core.hydra_config import HydraConfig

    from orchestrator.masking import mask_override

    overrides = [mask_override(o) for o in HydraConfig.get().overrides.task]
    tags = {COMMAND_TAG: json.dumps(overrides), CWD_TAG: os.getcwd()}
    return {**tags, CONFIG_DIR_TAG: os.path.abspath(config_dir)} if config_dir else tags


def app(cfg: DictConfig, config_dir: str | None = None) -> int:
    from rich.console import Console

    from orchestrator.cli.progress import ProgressDisplay, report
    from orchestrator.errors import OrchestratorError
    from orchestrator.launch import launch

    console = Console()
    display = ProgressDisplay(console)
    try:
        if cfg.execution.get("dry_run"):
            return print_plan(cfg)
        summary = launch(cfg, events=display, on_plan=display.on_plan, tags=command_tags(config_dir))
    except OrchestratorError as exc:
        display.stop()
        print(f"error: {exc}", file=sys.stderr)  # one unwrapped line, as for a bad command line
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        display.stop()
        console.print("[yellow]interrupted[/]: running runs were marked KILLED; run the same command again to resume")
        return EXIT_INTERRUPTED
    display.stop()
    report(console, summary)
    return 0 if summary.ok else EXIT_FAILED_RUNS


def check_composes(overrides: list[str], config_dir: str | None) -> None:
    """Compose once through Hydra's compose API, so a bad override or an unknown config is a clean ConfigError (exit
    2) rather than Hydra's own report (exit 1). Skipped when Hydra's own flags (--cfg, --help, ...) are given."""
    from orchestrator import project

    if not any(o.startswith("-") for o in overrides):
        project.compose(overrides, config_dir=config_dir)


def main(argv: list[str]) -> int:
    import hydra

    from orchestrator import project, schema
    from orchestrator.errors import ConfigError

    status = {"code": 0}

    def task(cfg: DictConfig) -> None:
        status["code"] = app(cfg, config_dir)

    try:
        config_dir, argv = split_config_dir(argv)
        overrides = overrides_of(argv)
        project.make_importable(Path.cwd())
        check_composes(overrides, config_dir)
        hydra_args = project.hydra_overrides(overrides, config_dir=config_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    saved, on_term = sys.argv, _stop_on_sigterm()
    sys.argv = ["orchestrator run", *hydra_args]
    try:
        schema.register()
        hydra.main(config_path=None, config_name=schema.PRIMARY, version_base=None)(task)()
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
