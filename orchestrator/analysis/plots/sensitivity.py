"""The compute-optimal exponent two ways (Chinchilla's approaches 2 and 3) and its sensitivity to the fit's choices."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from orchestrator.analysis.plots._canvas import new_figure
from orchestrator.analysis.sensitivity import ExponentSensitivity

# Hoffmann et al. (2022): N_opt ∝ C^0.50 (approach 2: 0.49, approach 3: 0.46).
CHINCHILLA_A = 0.5
_COLORS = {2: "C0", 3: "C3"}


def plot_exponent_sensitivity(result: ExponentSensitivity) -> Figure:
    """Left: N_opt against C from both approaches. Right: the exponent and its interval under each fit choice."""
    fig, (left, right) = new_figure(ncols=2)
    _draw_optimal_sizes(left, result)
    _draw_table(right, result)
    fig.set_size_inches(14, max(4.8, 0.45 * len(result.table) + 1.5))
    fig.subplots_adjust(wspace=0.6)
    return fig


def _draw_optimal_sizes(ax: Axes, result: ExponentSensitivity) -> None:
    iso, law = result.isoflop, result.parametric
    if iso is None:
        ax.text(0.5, 0.5, "approach 2: no IsoFLOP fit", ha="center", transform=ax.transAxes)
        return
    used = iso.budgets[iso.budgets["dropped_reason"] == ""]
    grid = np.geomspace(used["flops"].min(), used["flops"].max(), 50)
    ax.scatter(used["flops"], used["n_opt"], color=_COLORS[2], zorder=3, label="parabola minima (approach 2)")
    ax.plot(grid, iso.n_opt(grid), color=_COLORS[2], label=f"approach 2: N_opt ∝ C^{iso.a:.3g}")
    if law is not None:
        n_opt, _ = law.compute_optimal(grid)
        a = law.params["beta"] / (law.params["alpha"] + law.params["beta"])
        ax.plot(grid, n_opt, color=_COLORS[3], linestyle="--", label=f"approach 3: N_opt ∝ C^{a:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(iso.columns["flops"])
    ax.set_ylabel(f"compute-optimal {iso.columns['n']}")
    ax.legend(fontsize="small")


def _draw_table(ax: Axes, result: ExponentSensitivity) -> None:
    table = result.table
    y = np.arange(len(table))[::-1]
    for yi, row in zip(y, table.itertuples()):
        color = _COLORS.get(row.approach, "gray")
        if not math.isfinite(row.exponent):
            ax.text(CHINCHILLA_A, yi, "not supported by the data", ha="center", va="center", fontsize="small",
                    color="gray")
            continue
        if math.isfinite(row.ci_low) and math.isfinite(row.ci_high):
            ax.plot([row.ci_low, row.ci_high], [yi, yi], color=color, linewidth=2)
        ax.scatter([row.exponent], [yi], color=color, zorder=3)
    ax.axvline(CHINCHILLA_A, color="gray", linestyle=":", label=f"Chinchilla ≈ {CHINCHILLA_A}")
    ax.set_yticks(y)
    ax.set_yticklabels(table["choice"], fontsize="small")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("a in N_opt ∝ C^a (95% bootstrap interval)")
    ax.legend(fontsize="small", loc="lower right")
