"""`orchestrator report <sweep> -o report.html`: the sweep as one self-contained HTML page.

Summary and totals, the frontier of cost against the metric, scaling-law fits with intervals and extrapolation,
IsoFLOP curves, parallel coordinates, parameter importance, energy and cost, failures with their causes; a section
the runs cannot support says why. The page opens without a network. Bad input (unknown sweep, a metric no finished
run logged) exits 2, an unreadable store 1; nothing is written then.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.cli._sweep_input import guarded
from orchestrator.cli.status import DEFAULT_URI

if TYPE_CHECKING:
    from orchestrator.sweeps import Sweep

PROG = "orchestrator report"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="sweep name (the MLflow experiment)")
    p.add_argument("-o", "--output", metavar="HTML", default="report.html", help="where to write (default report.html)")
    p.add_argument("--metric", default="val_loss", help="the metric the sweep is judged by (default val_loss)")
    p.add_argument("--mode", choices=("min", "max"), default="min", help="whether less or more is better (default min)")
    p.add_argument("--cost", metavar="COLUMN", help="cost column of the frontier (default cost_usd, else gpu_hours, "
                                                    "else wall_s: the first positive on some run)")
    p.add_argument("--tracking-uri", metavar="URI", default=DEFAULT_URI,
                   help=f"MLflow tracking URI (default {DEFAULT_URI})")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return guarded(PROG, lambda: _report(args))


def _report(args: argparse.Namespace) -> int:
    from orchestrator.report.build import build_report
    from orchestrator.sweeps import load_sweep

    sweep = load_sweep(args.sweep, args.tracking_uri)
    for option, column in (("--metric", args.metric), ("--cost", args.cost)):
        if column:
            _require_column(sweep, column, option)
    report = build_report(sweep, metric=args.metric, mode=args.mode, cost=args.cost)
    path = _write(Path(args.output), report.html)
    shown = len(report.sections) - len(report.skipped)
    print(f"{sweep.name}: {shown} of {len(report.sections)} sections written to {path} "
          f"({len(report.html.encode()) / 1e6:.1f} MB)")
    for key, reason in report.skipped.items():
        print(f"  {key} not shown: {reason}")
    return 0


def _require_column(sweep: Sweep, column: str, option: str) -> None:
    """A column the finished runs lack is a typo (exit 2), unless no run finished: then the report shows failures."""
    from orchestrator.errors import ConfigError
    from orchestrator.tracking.frames import IDENTITY

    runs = sweep.runs
    if len(runs) and column not in runs.columns:
        present = [c for c in runs.columns if c not in IDENTITY]
        raise ConfigError(option, f"sweep {sweep.name!r} has no column {column!r}; its runs have {present}")


def _write(path: Path, html: str) -> Path:
    """Write next to `path` then rename over it, so a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
