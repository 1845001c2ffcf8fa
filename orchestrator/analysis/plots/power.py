"""Power-limit figures: energy against time per configuration, its front drawn through, the least-cost limit starred."""

from __future__ import annotations

from matplotlib.figure import Figure

from orchestrator.analysis.plots._canvas import colors, new_figure
from orchestrator.analysis.power import GROUP, PowerFrontier


def plot_power_frontier(result: PowerFrontier) -> Figure:
    """Each group's runs in (energy, time), labelled by limit; the front as a line, the pick as a star."""
    fig, ax = new_figure()
    energy, time, limit = result.energy, result.time, result.limit
    for (group, part), color in zip(result.runs.groupby(GROUP), colors(len(result.groups))):
        front = part[part["on_front"]].sort_values(energy)
        ax.plot(front[energy], front[time], color=color, marker="o", ms=4, label=result.groups.at[group, "label"])
        ax.scatter(part.loc[~part["on_front"], energy], part.loc[~part["on_front"], time], s=14, color=color,
                   alpha=0.4)
        best = part[part["best"]]
        ax.scatter(best[energy], best[time], marker="*", s=160, color=color, edgecolor="black", zorder=3)
        for x, y, value in zip(part[energy], part[time], part[limit]):
            ax.annotate(f"{value:g}", (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel(energy)
    ax.set_ylabel(time)
    ax.set_title(f"energy-time front per configuration over {limit}; ★ least {result.cost_column}", fontsize="small")
    ax.legend(fontsize="small")
    return fig
