"""Scaling-law figures: loss against N with one curve per data size, or y against x; dashed = extrapolated."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchestrator.analysis._fit_result import ScalingFit
from orchestrator.analysis._rows import split_usable
from orchestrator.analysis.plots._canvas import colors, new_figure


def plot_scaling_fit(fit: ScalingFit, df: pd.DataFrame, *, extrapolate: float = 10.0, max_curves: int = 8,
                     band: bool = False) -> Figure:
    """Loss against N with one curve per data size (chinchilla), or y against x (power); dashed = extrapolated.
    `band`: shade each curve's 95% bootstrap band (where the fit has bootstrap samples)."""
    fig, ax = new_figure()
    if fit.form == "chinchilla":
        _draw_chinchilla(ax, fit, df, extrapolate, max_curves, band)
    else:
        _draw_power(ax, fit, df, extrapolate, band)
    a = fit.params.get("alpha", float("nan"))
    ax.set_title(f"{fit.form} fit on {fit.n_points} runs (alpha = {a:.3f})")
    return fig


def _draw_chinchilla(ax: Axes, fit: ScalingFit, df: pd.DataFrame, extrapolate: float, max_curves: int,
                     band: bool) -> None:
    n_col, d_col, loss_col = fit.columns["n"], fit.columns["d"], fit.columns["loss"]
    values = split_usable(df, [n_col, d_col, loss_col], positive=True).values
    n, d, loss = values[n_col], values[d_col], values[loss_col]
    groups, d_values = _data_size_groups(d, max_curves)
    n_grid = np.geomspace(n.min(), n.max() * extrapolate, 200)
    palette = colors(len(d_values))
    for g, (d_value, color) in enumerate(zip(d_values, palette)):
        ax.scatter(n[groups == g], loss[groups == g], s=14, color=color, label=f"D ≈ {d_value:.2g}")
        _draw_extrapolated(ax, n_grid, fit.predict(n=n_grid, d=d_value), n.max(), color)
        _draw_band(ax, fit, band, n_grid, color, n=n_grid, d=d_value)
    ax.set_xscale("log")
    ax.set_xlabel(n_col)
    ax.set_ylabel(loss_col)
    ax.legend(fontsize="small", title=d_col)


def _draw_power(ax: Axes, fit: ScalingFit, df: pd.DataFrame, extrapolate: float, band: bool) -> None:
    x_col, y_col = fit.columns["x"], fit.columns["y"]
    values = split_usable(df, [x_col, y_col], positive=True).values
    x, y = values[x_col], values[y_col]
    ax.scatter(x, y, s=14, color="C0", label="runs")
    grid = np.geomspace(x.min(), x.max() * extrapolate, 200)
    _draw_extrapolated(ax, grid, fit.predict(x=grid), x.max(), "C1")
    _draw_band(ax, fit, band, grid, "C1", x=grid)
    if fit.params["E"] > 0:
        ax.axhline(fit.params["E"], color="grey", linestyle=":", label=f"E = {fit.params['E']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(x_col)
    ax.set_ylabel(y_col)
    ax.legend(fontsize="small")


def _data_size_groups(d: np.ndarray, max_curves: int) -> tuple[np.ndarray, np.ndarray]:
    """Group runs by data size: the distinct sizes if few, else log-spaced bins; with each group's (geo-mean) D."""
    distinct = np.unique(d)
    if len(distinct) <= max_curves:
        return np.searchsorted(distinct, d), distinct
    edges = np.geomspace(d.min(), d.max(), max_curves + 1)
    groups = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, max_curves - 1)
    present = np.unique(groups)
    centers = np.array([np.exp(np.log(d[groups == g]).mean()) for g in present])
    return np.searchsorted(present, groups), centers


def _draw_extrapolated(ax: Axes, grid: np.ndarray, values: np.ndarray, observed_max: float, color: Any) -> None:
    split = max(int(np.searchsorted(grid, observed_max, side="right")), 1)
    ax.plot(grid[:split], values[:split], color=color)
    ax.plot(grid[split - 1 :], values[split - 1 :], color=color, linestyle="--")


def _draw_band(ax: Axes, fit: ScalingFit, band: bool, grid: np.ndarray, color: Any, **inputs: Any) -> None:
    """Shade the 95% interval of the law over the bootstrap resamples, where the fit has them."""
    interval = fit.predict_interval(**inputs) if band else None
    if interval is not None:
        ax.fill_between(grid, *interval, color=color, alpha=0.15, linewidth=0)
