"""IsoFLOP figures: per-budget parabolas with their minima, and N_opt against compute."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchestrator.analysis._isoflop_result import IsoFlopFit
from orchestrator.analysis._rows import split_usable
from orchestrator.analysis.plots._canvas import colors, new_figure


def plot_isoflop(fit: IsoFlopFit, df: pd.DataFrame) -> Figure:
    """Left: loss against N per budget with its parabola and minimum. Right: N_opt against C and the fit."""
    fig, (left, right) = new_figure(ncols=2)
    n_col, c_col, loss_col = fit.columns["n"], fit.columns["flops"], fit.columns["loss"]
    values = split_usable(df, [n_col, c_col, loss_col], positive=True).values
    table = fit.budgets
    nearest = np.abs(np.log(values[c_col])[:, None] - np.log(table["flops"].to_numpy())[None]).argmin(axis=1)
    for b, (row, color) in enumerate(zip(table.itertuples(), colors(len(table)))):
        mine = nearest == b
        left.scatter(values[n_col][mine], values[loss_col][mine], s=14, color=color, label=f"C = {row.flops:.2g}")
        if row.dropped_reason == "":
            _draw_parabola(left, row, np.log(values[n_col][mine]), color)
    left.set_xscale("log")
    left.set_xlabel(n_col)
    left.set_ylabel(loss_col)
    left.legend(fontsize="small")
    _draw_optimal_sizes(right, fit)
    return fig


def _draw_parabola(ax: Axes, row: Any, log_n: np.ndarray, color: Any) -> None:
    u = np.linspace(log_n.min(), log_n.max(), 100) - row.log_n_center
    ax.plot(np.exp(u + row.log_n_center), row.c0 + row.c1 * u + row.c2 * u * u, color=color)
    ax.scatter([row.n_opt], [row.loss_opt], marker="*", s=120, color=color, edgecolor="black", zorder=3)


def _draw_optimal_sizes(ax: Axes, fit: IsoFlopFit) -> None:
    used = fit.budgets[fit.budgets["dropped_reason"] == ""]
    ax.scatter(used["flops"], used["n_opt"], color="black", zorder=3, label="parabola minima")
    grid = np.geomspace(used["flops"].min(), used["flops"].max(), 50)
    ax.plot(grid, fit.n_opt(grid), color="C3", label=f"N_opt ∝ C^{fit.a:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(fit.columns["flops"])
    ax.set_ylabel(f"optimal {fit.columns['n']}")
    ax.legend(fontsize="small")
