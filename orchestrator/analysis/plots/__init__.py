"""Figures for fits and frontiers. Each function takes a result object plus the data and returns a Figure.

Only drawing happens here; every number comes from the fit or front passed in. Figures are built on the Agg
canvas directly (no pyplot, no display, no global backend switch); `save_png` and `png_bytes` write them.
Importing this package imports matplotlib; `orchestrator.analysis` itself does not.
"""

from orchestrator.analysis.plots._canvas import png_bytes, save_png
from orchestrator.analysis.plots.cost import plot_cost_breakdown
from orchestrator.analysis.plots.hparams import plot_hparam_landscape, plot_optimal_hparam_law
from orchestrator.analysis.plots.isoflop import plot_isoflop
from orchestrator.analysis.plots.params import plot_importance, plot_parallel_coordinates
from orchestrator.analysis.plots.pareto import plot_grouped_front, plot_pareto_front
from orchestrator.analysis.plots.power import plot_power_frontier
from orchestrator.analysis.plots.scaling import plot_scaling_fit
from orchestrator.analysis.plots.sensitivity import plot_exponent_sensitivity

__all__ = ["plot_cost_breakdown", "plot_hparam_landscape", "plot_importance", "plot_isoflop", "plot_optimal_hparam_law",
           "plot_grouped_front", "plot_parallel_coordinates", "plot_pareto_front",
           "plot_exponent_sensitivity", "plot_power_frontier", "plot_scaling_fit", "png_bytes", "save_png"]
