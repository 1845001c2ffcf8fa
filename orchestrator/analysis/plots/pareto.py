"""Frontier figures: dominated runs grey, the front coloured and drawn as a staircase."""

from __future__ import annotations

from typing import Mapping

import pandas as pd
from matplotlib.figure import Figure

from orchestrator.analysis._rows import split_usable
from orchestrator.analysis.plots._canvas import log_scale_if_wide, new_figure


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
