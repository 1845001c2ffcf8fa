"""Where a sweep's money and energy went: per-run bars, the costliest runs first."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchestrator.analysis.plots._canvas import new_figure

# Stacked cost components, in dollars (energy/cost.py): GPU-hours priced, and facility energy priced.
COMPONENTS = ("cost_gpu_usd", "cost_energy_usd")


def plot_cost_breakdown(runs: pd.DataFrame, *, label: str = "run_name", max_runs: int = 30) -> Figure:
    """Per run, the cost in $ stacked by component (else cost_usd, else gpu_hours) and, where metered, energy in kWh;
    the `max_runs` costliest runs, costliest on top."""
    amount = _amount_columns(runs)
    panels = [amount] + ([["energy_kwh"]] if "energy_kwh" in runs and runs["energy_kwh"].notna().any() else [])
    order = runs.assign(_total=runs[amount].sum(axis=1, min_count=1)).sort_values("_total", ascending=False)
    shown = order.head(max_runs).iloc[::-1]
    fig, axes = new_figure(ncols=len(panels))
    axes = [axes] if len(panels) == 1 else list(axes)
    fig.set_size_inches(6.4 * len(panels), max(3.0, 0.22 * len(shown) + 1.5))
    names = [str(n) for n in shown[label]]
    for ax, columns in zip(axes, panels):
        _stacked(ax, names, shown, columns)
    more = f" (the {max_runs} costliest of {len(runs)})" if len(runs) > max_runs else ""
    axes[0].set_title(f"per run{more}", fontsize="small")
    return fig


def _amount_columns(runs: pd.DataFrame) -> list[str]:
    components = [c for c in COMPONENTS if c in runs and runs[c].notna().any()]
    if components:
        return components
    for column in ("cost_usd", "gpu_hours"):
        if column in runs and runs[column].notna().any():
            return [column]
    raise ValueError("no cost column with values (cost_gpu_usd, cost_energy_usd, cost_usd, gpu_hours)")


def _stacked(ax: Axes, names: list[str], shown: pd.DataFrame, columns: Sequence[str]) -> None:
    left = pd.Series(0.0, index=shown.index)
    for i, column in enumerate(columns):
        values = shown[column].fillna(0.0)
        ax.barh(names, values, left=left, color=f"C{i}", label=column)
        left = left + values
    ax.set_xlabel("$" if all(c.endswith("_usd") for c in columns) else ", ".join(columns))
    ax.tick_params(axis="y", labelsize="x-small")
    ax.legend(fontsize="small")
