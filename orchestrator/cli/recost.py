"""`orchestrator recost <sweep>`: cost and carbon of a sweep's FINISHED runs again, under another cost model.

Nothing is rerun: the stored wall_s, gpus_held, energy_j and gpu_name of each run go through the live cost function
(orchestrator.energy.recost). Bad input exits 2 before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Mapping

from orchestrator.cli.status import DEFAULT_URI
from orchestrator.energy.recost import ALLOWED_SETTINGS, TOTAL_METRICS, SweepRecost

EXIT_TRACKING_ERROR, EXIT_BAD_INPUT = 1, 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="orchestrator recost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="sweep name (the MLflow experiment)")
    p.add_argument("--cost", default="default",
                   help="cost model: a name in conf/cost/ or a .yaml path (default: default)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override one factor, repeatable; KEY is one of {', '.join(ALLOWED_SETTINGS)}")
    p.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default {DEFAULT_URI})")
    p.add_argument("--dry-run", action="store_true", help="compute and print, write nothing")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)

    from orchestrator.energy.recost import recost_runs, resolve_cost_model
    from orchestrator.errors import ConfigError, TrackingError

    try:
        model = resolve_cost_model(args.cost, args.settings)
        result = recost_runs(_store(args.tracking_uri, args.sweep), model, dry_run=args.dry_run)
    except ConfigError as exc:
        print(f"orchestrator recost: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TrackingError as exc:
        print(f"orchestrator recost: {exc}\nsome runs may be recosted already; run the same command again",
              file=sys.stderr)
        return EXIT_TRACKING_ERROR
    show(result, args.settings)
    return 0


def _store(uri: str, sweep: str) -> Any:
    from orchestrator.errors import ConfigError
    from orchestrator.sweeps import require_existing_store
    from orchestrator.tracking.store import MlflowStore

    require_existing_store(uri)
    try:
        return MlflowStore(uri, sweep)
    except Exception as exc:  # noqa: BLE001 - MLflow's error for a URI it cannot use, translated here
        raise ConfigError("--tracking-uri", str(exc).strip()) from exc


def show(result: SweepRecost, settings: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    m = result.model
    console.print(f"{result.sweep}: {len(result.runs)} FINISHED runs, cost model {m.name!r}"
                  + (f" with {', '.join(settings)}" if settings else "") + f" (mode {m.mode})"
                  + (f"; {result.not_finished} runs not FINISHED left alone" if result.not_finished else ""))
    table = Table()
    for column in ("total", "before", "after"):
        table.add_column(column, justify="left" if column == "total" else "right")
    for key in TOTAL_METRICS:
        table.add_row(key, _cell(result.totals_before, key), _cell(result.totals_after, key))
    console.print(table)
    if result.parent_status == "RUNNING":
        console.print(f"[yellow]warning[/]: the newest launch (parent run {result.parent_run_id}) is still RUNNING; "
                      "its unfinished runs are not in these totals")
    if not result.written:
        console.print("dry run: nothing written")
    elif result.parent_run_id is None:
        console.print(f"wrote cost metrics of {len(result.runs)} runs; the sweep has no parent run for the totals")
    else:
        console.print(f"wrote cost metrics of {len(result.runs)} runs, and totals and recost.* tags to parent run "
                      f"{result.parent_run_id}")


def _cell(totals: Mapping[str, float], key: str) -> str:
    if key not in totals:
        return "n/a"
    return f"{totals[key]:.0f}" if key.startswith("runs_") else f"{totals[key]:.6g}"
