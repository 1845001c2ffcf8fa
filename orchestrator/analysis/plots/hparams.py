"""Optimal-hyperparameter figures: the loss landscape of each (N, D) cell with its optimum, and the fitted law."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from orchestrator.analysis.hparams import OptimalHparamFit
from orchestrator.analysis.plots._canvas import colors, new_figure

# Panel size (inches) of the landscape grid.
_PANEL_IN = (2.6, 2.1)


def plot_hparam_landscape(fit: OptimalHparamFit) -> Figure:
    """One panel per cell: loss against the hyperparameter (repeats averaged, profiled), the located optimum (star;
    a triangle where it sits at the grid's edge) and the law's prediction (dashed line). With two scale columns the
    panels form a grid: the first column across, the second down."""
    optima = fit.optima
    rows, cols, where = _layout(optima, fit.over)
    fig = Figure(figsize=(_PANEL_IN[0] * cols, _PANEL_IN[1] * rows))
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.ravel():
        ax.set_visible(False)
    for i, cell in optima.iterrows():
        ax = axes[where[i]]
        ax.set_visible(True)
        _draw_cell(ax, fit, cell)
    fig.suptitle(fit.summary(), fontsize="small")
    fig.tight_layout()
    return fig


def plot_optimal_hparam_law(fit: OptimalHparamFit) -> Figure:
    """Each cell's optimum against the first scale column, coloured by the others; lines: the fitted law."""
    fig, ax = new_figure()
    x_col, optima = fit.over[0], fit.optima[fit.optima["n_values"] > 0]
    groups = list(optima.groupby(list(fit.over[1:]), sort=True)) if len(fit.over) > 1 else [((), optima)]
    for (key, group), color in zip(groups, colors(len(groups))):
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{c}={v:.3g}" for c, v in zip(fit.over[1:], key)) or None
        used = group[group["used"]]
        ax.scatter(used[x_col], used["opt"], color=color, zorder=3, label=label)
        for edge, marker in (("high", "^"), ("low", "v")):
            bound = group[group["edge"] == edge]
            ax.scatter(bound[x_col], bound["opt"], marker=marker, facecolor="none", edgecolor=color, zorder=3)
        x = np.geomspace(group[x_col].min(), group[x_col].max(), 50)
        ax.plot(x, fit.predict(**{x_col: x, **dict(zip(fit.over[1:], key))}), color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_col)
    ax.set_ylabel(f"optimal {fit.hparam} (triangles: at the grid's edge, a bound)")
    ax.set_title(fit.summary(), fontsize="small")
    if len(groups) > 1:
        ax.legend(fontsize="small")
    return fig


def _layout(optima: pd.DataFrame, over: tuple[str, ...]) -> tuple[int, int, dict[int, tuple[int, int]]]:
    """(rows, cols, cell index -> panel) of the landscape grid."""
    if len(over) == 2:
        across, down = (sorted(optima[c].unique()) for c in over)
        where = {i: (down.index(r[over[1]]), across.index(r[over[0]])) for i, r in optima.iterrows()}
        return len(down), len(across), where
    cols = math.ceil(math.sqrt(len(optima)))
    return math.ceil(len(optima) / cols), cols, {i: divmod(k, cols) for k, i in enumerate(optima.index)}


def _draw_cell(ax: Axes, fit: OptimalHparamFit, cell: pd.Series) -> None:
    mine = (fit.landscape[list(fit.over)] == cell[list(fit.over)].to_numpy()).all(axis=1)
    curve = fit.landscape[mine].sort_values(fit.hparam)
    ax.plot(curve[fit.hparam], curve["loss"], marker="o", markersize=3, color="C0")
    ax.set_xscale("log")
    ax.set_title(", ".join(f"{c}={cell[c]:.3g}" for c in fit.over), fontsize="x-small")
    ax.tick_params(labelsize="x-small")
    if math.isfinite(cell["opt"]):
        marker, color = ("*", "C3") if cell["used"] else ("^" if cell["edge"] == "high" else "v", "C7")
        ax.scatter([cell["opt"]], [cell["loss_opt"]], marker=marker, s=90, color=color, edgecolor="black", zorder=3)
    ax.axvline(float(fit.predict(**{c: cell[c] for c in fit.over})), color="C3", linestyle="--", linewidth=0.8)
    if len(curve):
        best, median = curve["loss"].min(), curve["loss"].median()
        best = min(best, cell["loss_opt"]) if math.isfinite(cell["loss_opt"]) else best  # a vertex below every run
        top = min(curve["loss"].max(), best + 4 * max(median - best, 1e-3))
        ax.set_ylim(best - 0.05 * (top - best) - 1e-3, top + 0.05 * (top - best) + 1e-3)
