"""`orchestrator frontier <sweep> --objective COLUMN:min|max ...`: the sweep's non-dominated finished runs.

Runs whose objectives are NaN or missing are excluded and counted. Bad input (unknown sweep, missing column,
an objective not written COLUMN:min or COLUMN:max) exits 2; nothing is written but --plot.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestrator.cli._sweep_input import add_sweep_arguments, excluded_reasons, guarded, number, print_json

if TYPE_CHECKING:
    import pandas as pd

PROG = "orchestrator frontier"
SENSES = ("min", "max")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objective", action="append", default=[], metavar="COLUMN:min|max",
                   help="an objective, repeatable (e.g. --objective cost_usd:min --objective val_loss:min)")
    add_sweep_arguments(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return guarded(PROG, lambda: _frontier(args))


def parse_objectives(texts: list[str]) -> dict[str, str]:
    """{"cost_usd": "min", ...} from ["cost_usd:min", ...]; ConfigError("--objective", ...) on bad syntax."""
    from orchestrator.errors import ConfigError

    if not texts:
        raise ConfigError("--objective", "give at least one, e.g. --objective val_loss:min")
    objectives: dict[str, str] = {}
    for text in texts:
        column, _, sense = text.rpartition(":")
        if not column or sense not in SENSES:
            raise ConfigError("--objective", f"expected COLUMN:min or COLUMN:max, got {text!r}")
        if column in objectives:
            raise ConfigError("--objective", f"column {column!r} is given twice")
        objectives[column] = sense
    return objectives


def _frontier(args: argparse.Namespace) -> int:
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.cli._sweep_input import finished_runs, save_plot
    from orchestrator.sweeps import load_sweep

    objectives = parse_objectives(args.objective)
    sweep = load_sweep(args.sweep, args.tracking_uri)
    runs = finished_runs(sweep, {f"--objective {c}:{s}": c for c, s in objectives.items()})
    front = pareto_front(runs, objectives)
    plot = None
    if args.plot:
        from orchestrator.analysis.plots import plot_pareto_front

        plot = save_plot(plot_pareto_front(front, runs), args.plot)
    if args.json:
        print_json(_summary(sweep.name, runs, front) | ({"plot": plot} if plot else {}))
    else:
        show(sweep.name, runs, front, plot)
    return 0


def _summary(sweep: str, runs: pd.DataFrame, front: pd.DataFrame) -> dict[str, Any]:
    objectives = front.attrs["objectives"]
    excluded = front.attrs["excluded"]
    rows = [{"run_name": r["run_name"], "run_key": r["run_key"], "run_id": r["run_id"],
             **{c: float(r[c]) for c in objectives}} for _, r in front.iterrows()]
    return {"sweep": sweep, "objectives": objectives, "n_runs": len(runs), "n_excluded": len(excluded),
            "excluded_reasons": excluded_reasons(excluded), "front_size": len(front), "front": rows}


def show(sweep: str, runs: pd.DataFrame, front: pd.DataFrame, plot: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    objectives, excluded = front.attrs["objectives"], front.attrs["excluded"]
    console = Console(soft_wrap=True)  # long lines stay whole for grep; tables still fit the terminal
    usable = len(runs) - len(excluded)
    console.print(escape(f"{sweep}: {len(front)} of {usable} runs on the front, {len(excluded)} excluded"))
    for reason, count in excluded_reasons(excluded).items():
        console.print(escape(f"  excluded {count}: {reason}"))
    table = Table()
    table.add_column("run_name")
    for column, sense in objectives.items():
        table.add_column(escape(f"{column} ({sense})"), justify="right")
    for _, row in front.iterrows():
        table.add_row(escape(str(row["run_name"])), *(number(float(row[c])) for c in objectives))
    console.print(table)
    if plot:
        console.print(escape(f"plot: {plot}"))
