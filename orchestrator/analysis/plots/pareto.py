"""Frontier figures: dominated runs grey, the front coloured and drawn as a staircase; or one staircase per group."""

from __future__ import annotations

from typing import Mapping

import pandas as pd
from matplotlib.figure import Figure

from orchestrator.analysis._rows import split_usable
from orchestrator.analysis.grouped import GroupedFront
from orchestrator.analysis.plots._canvas import colors, log_scale_if_wide, new_figure


def plot_pareto_front(front: pd.DataFrame, df: pd.DataFrame, objectives: Mapping[str, str] | None = None) -> Figure:
    """Runs in the first two objectives: dominated ones grey, the front coloured and drawn as a staircase."""
    objectives = dict(objectives or front.attrs["objectives"])
    columns = list(objectives)[:2] if len(objectives) > 1 else list(objectives) * 2
    usable = df.iloc[split_usable(df, list(objectives), positive=False).positions]
    dominated = usable[~usable.index.isin(front.index)]
    fig, ax = new_figure()
    ax.scatter(dominated[columns[0]], dominated[columns[1]], s=12, color="lightgrey", label="dominated")
    ax.scatter(front[columns[0]], front[columns[1]], s=22, color="C3", zorder=3, label=f"front ({len(front)})")
    if len(objectives) == 2 and len(front):
        ordered = front.sort_values(columns[0])
        where = "post" if objectives[columns[0]] == "min" else "pre"
        ax.step(ordered[columns[0]], ordered[columns[1]], where=where, color="C3")
    log_scale_if_wide(ax, usable[columns[0]].to_numpy(float), usable[columns[1]].to_numpy(float))
    ax.set_xlabel(f"{columns[0]} ({objectives[columns[0]]})")
    ax.set_ylabel(f"{columns[1]} ({objectives[columns[1]]})")
    if len(objectives) > 2:
        ax.set_title(f"front in {len(objectives)} objectives, shown in the first two")
    ax.legend(fontsize="small")
    return fig


def plot_grouped_front(result: GroupedFront) -> Figure:
    """Each group's points and its own front (a coloured staircase); the overall front circled in black.

    The figure answers "which groups own the front": a group whose staircase touches the black one has points on it.
    With means over seeds, each point carries its standard deviation over the seeds as a vertical bar.
    """
    objectives = dict(result.objectives)
    x, y = (list(objectives)[:2] if len(objectives) > 1 else list(objectives) * 2)
    points = result.points
    fig, ax = new_figure()
    groups = list(points.groupby(result.by, sort=True)) if result.by else [(None, points)]
    for color, (value, part) in zip(colors(len(groups)), groups):
        name = "all" if value is None else f"{result.by.removeprefix('sweep.')}={result.group_name(value)}"
        label = f"{name} ({int(part['on_front'].sum())} on front)"
        std = part.get(f"{y}_std")
        ax.errorbar(part[x], part[y], yerr=None if std is None else std.fillna(0.0), fmt="o", ms=4, color=color,
                    alpha=0.55, elinewidth=0.8, capsize=0)
        own = part[part["on_group_front"]].sort_values(x)
        ax.step(own[x], own[y], where=_where(objectives, x), color=color, label=label)
    front = result.front.sort_values(x)
    ax.scatter(front[x], front[y], s=90, facecolors="none", edgecolors="black", linewidths=1.3, zorder=4,
               label=f"overall front ({len(front)})")
    ax.step(front[x], front[y], where=_where(objectives, x), color="black", linestyle="--", linewidth=1.0)
    log_scale_if_wide(ax, points[x].to_numpy(float), points[y].to_numpy(float))
    ax.set_xlabel(f"{x} ({objectives[x]})")
    ax.set_ylabel(f"{y} ({objectives[y]})" + (f", mean over {', '.join(result.mean_over)}" if result.mean_over else ""))
    if result.by:
        owners = ", ".join(str(g) for g in result.groups_on_front)
        ax.set_title(f"{result.by.removeprefix('sweep.')} on the overall front (most points first): {owners}",
                     fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def _where(objectives: Mapping[str, str], x: str) -> str:
    return "post" if objectives[x] == "min" else "pre"
