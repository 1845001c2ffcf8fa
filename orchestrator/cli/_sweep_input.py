"""What `orchestrator fit` and `orchestrator frontier` share: the sweep's arguments, its runs, exit codes, output."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable, Mapping

if TYPE_CHECKING:
    import pandas as pd

    from orchestrator.sweeps import Sweep

from orchestrator.cli.status import DEFAULT_URI

EXIT_TRACKING_ERROR, EXIT_BAD_INPUT = 1, 2


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", help="sweep name (the MLflow experiment)")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    p.add_argument("--plot", metavar="PNG", help="also draw the result into this PNG file")
    p.add_argument("--tracking-uri", metavar="URI", default=DEFAULT_URI,
                   help=f"MLflow tracking URI (default {DEFAULT_URI})")


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run `body`; bad input (every ConfigError and analysis error is a ValueError) exits 2, a store error 1."""
    from orchestrator.errors import TrackingError

    try:
        return body()
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (TrackingError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_TRACKING_ERROR


def finished_runs(sweep: Sweep, columns: Mapping[str, str]) -> pd.DataFrame:
    """The sweep's runs; ConfigError naming the option whose column (`columns`: option -> column) is missing."""
    from orchestrator.errors import ConfigError
    from orchestrator.tracking.frames import IDENTITY

    runs = sweep.runs
    if runs.empty:
        by_status = dict(Counter(sweep.all_runs["status"]))
        raise ConfigError("sweep", f"sweep {sweep.name!r} has no FINISHED runs (child runs by status: {by_status})")
    for option, column in columns.items():
        if column not in runs.columns:
            present = [c for c in runs.columns if c not in IDENTITY]
            raise ConfigError(option, f"sweep {sweep.name!r} has no column {column!r}; its runs have {present}")
    return runs


def excluded_reasons(excluded: pd.DataFrame) -> dict[str, int]:
    return dict(Counter(excluded["reason"])) if "reason" in excluded else {}


def print_json(payload: Mapping[str, Any]) -> None:
    print(json.dumps(payload, indent=2))


def save_plot(figure: Any, path: str) -> str:
    from orchestrator.analysis.plots import save_png

    return str(save_png(figure, path))


def number(value: float) -> str:
    return f"{value:.6g}"
