"""`orchestrator fit <sweep>`: a scaling law fitted to a sweep's finished runs, with bootstrap intervals.

chinchilla: L = E + A/N^alpha + B/D^beta over columns --n, --d, --loss; power: y = E + A*x^-alpha over --x, --y.
Bad input (unknown sweep, missing column, too few usable runs) exits 2; nothing is written but --plot.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestrator.cli._sweep_input import add_sweep_arguments, excluded_reasons, guarded, number, print_json

if TYPE_CHECKING:
    from orchestrator.analysis.scaling import ScalingFit

PROG = "orchestrator fit"
# (option, default column, what it holds) of the columns a fit reads.
COLUMNS = (("n", "n_params", "chinchilla: column of model size N"), ("d", "tokens", "chinchilla: column of tokens D"),
           ("loss", "val_loss", "chinchilla: column of the loss"), ("x", "flops", "power: column of x"),
           ("y", "val_loss", "power: column of y"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--form", choices=("chinchilla", "power"), default="chinchilla",
                   help="law to fit (default chinchilla)")
    for flag, default, what in COLUMNS:
        p.add_argument(f"--{flag}", metavar="COLUMN", default=default, help=f"{what} (default {default})")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for 95%% intervals and standard errors; 0 skips them (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples (default 0)")
    add_sweep_arguments(p)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    return guarded(PROG, lambda: _fit(args))


def _fit(args: argparse.Namespace) -> int:
    from orchestrator.analysis.scaling import fit_scaling_law
    from orchestrator.cli._sweep_input import finished_runs, save_plot
    from orchestrator.sweeps import load_sweep

    roles = ("n", "d", "loss") if args.form == "chinchilla" else ("x", "y")
    options = {role: getattr(args, role) for role in roles}
    sweep = load_sweep(args.sweep, args.tracking_uri)
    runs = finished_runs(sweep, {f"--{k}": v for k, v in options.items()})
    fit = fit_scaling_law(runs, args.form, **options, bootstrap=args.bootstrap, seed=args.seed)
    plot = None
    if args.plot:
        from orchestrator.analysis.plots import plot_scaling_fit

        plot = save_plot(plot_scaling_fit(fit, runs), args.plot)
    if args.json:
        print_json({"sweep": sweep.name, **fit.to_dict(), **({"plot": plot} if plot else {})})
    else:
        show(sweep.name, fit, plot)
    return 0


def show(sweep: str, fit: ScalingFit, plot: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(soft_wrap=True)  # long lines stay whole for grep; tables still fit the terminal
    columns = ", ".join(f"{role}={column}" for role, column in fit.columns.items())
    console.print(escape(f"{sweep}: {fit.form} fit on {fit.n_points} runs ({columns}), {len(fit.excluded)} excluded"))
    for reason, count in excluded_reasons(fit.excluded).items():
        console.print(escape(f"  excluded {count}: {reason}"))
    if fit.unsupported:  # said first: the numbers below are not a law the data support
        console.print(f"[red]not supported by the data[/]: {escape('; '.join(fit.unsupported))}")
    console.print(_table(fit))
    optimal = fit.to_dict().get("compute_optimal_exponents")
    if optimal and None not in optimal.values():
        console.print(f"compute-optimal: N_opt ∝ C^{optimal['n_opt']:.3f}, D_opt ∝ C^{optimal['d_opt']:.3f}")
    for warning in fit.warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}")
    if plot:
        console.print(escape(f"plot: {plot}"))


def _table(fit: ScalingFit) -> Any:
    from rich.markup import escape
    from rich.table import Table

    resamples = f" ({fit.bootstrap} bootstrap resamples)" if fit.bootstrap else " (no bootstrap)"
    table = Table(title=f"fitted parameters{resamples}")
    for column in ("parameter", "estimate", "95% CI", "stderr"):
        table.add_column(column, justify="left" if column == "parameter" else "right")
    for name, value in fit.params.items():
        lo_hi = fit.ci.get(name)
        ci = f"[{number(lo_hi[0])}, {number(lo_hi[1])}]" if lo_hi else "-"
        stderr = number(fit.stderr[name]) if name in fit.stderr else "-"
        table.add_row(name, number(value), escape(ci), stderr)
    return table
