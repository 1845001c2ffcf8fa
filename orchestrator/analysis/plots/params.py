"""How swept parameters relate to a metric: parallel coordinates of every run, and permutation importances."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from pandas.api.types import is_numeric_dtype

from orchestrator.analysis.importance import ParamImportance
from orchestrator.analysis.plots._canvas import new_figure

# A column whose positive values span more than this ratio is drawn on a log axis.
_LOG_SPAN = 100.0


def plot_parallel_coordinates(df: pd.DataFrame, columns: Sequence[str], metric: str, mode: str = "min") -> Figure:
    """One line per run through an axis per parameter and a last one for `metric`, coloured by the metric (the best
    run drawn on top in red). Each axis is scaled to its own range (log where wide); text values are spaced evenly."""
    axes = [*columns, metric]
    fig, ax = new_figure()
    fig.set_size_inches(max(6.4, 1.6 * len(axes)), 4.8)
    scaled, ticks = zip(*(_scaled(df[c]) for c in axes))
    lines = np.column_stack(scaled)
    values = df[metric].to_numpy(float)
    norm = Normalize(np.nanmin(values), np.nanmax(values))
    cmap = colormaps["viridis_r" if mode == "min" else "viridis"]
    x = np.arange(len(axes))
    # Worst first, so the best runs are drawn on top; one collection for all (a Line2D per run cost 1 ms each).
    order = np.argsort(-values if mode == "min" else values, kind="stable")
    segments = np.empty((len(order), len(axes), 2))
    segments[:, :, 0], segments[:, :, 1] = x, lines[order]
    ax.add_collection(LineCollection(segments, colors=cmap(norm(values[order])), alpha=0.6, linewidths=1))
    best = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
    ax.plot(x, lines[best], color="C3", linewidth=2.5, label=f"best {metric} = {values[best]:.4g}")
    for i, (positions, labels) in enumerate(ticks):
        ax.axvline(i, color="black", linewidth=0.8)
        for position, label in zip(positions, labels):
            ax.annotate(label, (i, position), xytext=(3, 0), textcoords="offset points", fontsize="x-small",
                        va="center")
    ax.set_xticks(x, [c.removeprefix("sweep.") for c in axes], rotation=20, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, 1.12), frameon=False)
    fig.colorbar(ScalarMappable(norm, cmap), ax=ax, label=metric)
    return fig


def _scaled(column: pd.Series) -> tuple[np.ndarray, tuple[list[float], list[str]]]:
    """Values mapped to [0, 1] (log where positive and wide), and tick positions with their labels."""
    if not is_numeric_dtype(column):
        categories = sorted(column.dropna().astype(str).unique())
        spots = np.linspace(0, 1, len(categories)) if len(categories) > 1 else np.array([0.5])
        where = dict(zip(categories, spots))
        return column.astype(str).map(where).to_numpy(float), (list(spots), categories)
    values = column.to_numpy(float)
    low, high = np.nanmin(values), np.nanmax(values)
    log = low > 0 and high / low > _LOG_SPAN
    t = np.log10(values) if log else values
    t_low, t_high = (np.log10(low), np.log10(high)) if log else (low, high)
    span = t_high - t_low
    scaled = (t - t_low) / span if span > 0 else np.full_like(t, 0.5)
    shown = [low, high] if span > 0 else [low]
    return scaled, ([0.0, 1.0] if span > 0 else [0.5], [f"{v:.3g}" for v in shown])


def plot_importance(result: ParamImportance) -> Figure:
    """A bar per parameter, most important on top: mean drop in R^2 when it is shuffled, with its std."""
    table = result.table.iloc[::-1]
    fig, ax = new_figure()
    fig.set_size_inches(6.4, max(2.4, 0.45 * len(table) + 1.2))
    names = [p.removeprefix("sweep.") for p in table["parameter"]]
    ax.barh(names, table["importance"], xerr=table["importance_std"], color="C0", capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel(f"drop in R² of {result.metric} when shuffled")
    ax.set_title(f"permutation importance over {result.n_runs} runs (forest out-of-bag R² = {result.oob_r2:.2f})",
                 fontsize="small")
    return fig
