"""Aggregator math on plain DataFrames: scaling-law fits, IsoFLOP analysis, Pareto fronts, power limits, parameter
importance, plots, reports.

Names are imported lazily on first use, so `import orchestrator.analysis` stays cheap (no scipy,
matplotlib or pandas until a function that needs them is called).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.analysis.errors import (
        AnalysisInputError,
        MissingColumnError,
        NoUsableRowsError,
        TooFewPointsError,
    )
    from orchestrator.analysis._hypervolume import hypervolume
    from orchestrator.analysis.importance import ParamImportance, parameter_importance
    from orchestrator.analysis.hparams import OptimalHparamFit, fit_optimal_hparams
    from orchestrator.analysis.isoflop import IsoFlopFit, fit_isoflop
    from orchestrator.analysis.sensitivity import ExponentSensitivity, exponent_sensitivity
    from orchestrator.analysis.grouped import GroupedFront, grouped_front
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.analysis._power_cost import UsdCost, ZeusCost
    from orchestrator.analysis.plots import (
        plot_cost_breakdown,
        plot_exponent_sensitivity,
        plot_hparam_landscape,
        plot_importance,
        plot_isoflop,
        plot_optimal_hparam_law,
        plot_parallel_coordinates,
        plot_grouped_front,
        plot_pareto_front,
        plot_power_frontier,
        plot_scaling_fit,
        png_bytes,
        save_png,
    )
    from orchestrator.analysis.power import PowerFrontier, power_frontier
    from orchestrator.analysis.report import AnalysisReport, run_analysis
    from orchestrator.analysis.scaling import ScalingFit, fit_scaling_law
    from orchestrator.analysis.spec import AnalysisSpec, validate_analysis_spec

# Public name -> module that defines it.
_EXPORTS = {
    "fit_scaling_law": "scaling",
    "ScalingFit": "scaling",
    "fit_isoflop": "isoflop",
    "IsoFlopFit": "isoflop",
    "exponent_sensitivity": "sensitivity",
    "ExponentSensitivity": "sensitivity",
    "fit_optimal_hparams": "hparams",
    "OptimalHparamFit": "hparams",
    "pareto_front": "pareto",
    "grouped_front": "grouped",
    "GroupedFront": "grouped",
    "hypervolume": "_hypervolume",
    "power_frontier": "power",
    "PowerFrontier": "power",
    "ZeusCost": "_power_cost",
    "parameter_importance": "importance",
    "ParamImportance": "importance",
    "UsdCost": "_power_cost",
    "plot_scaling_fit": "plots",
    "plot_isoflop": "plots",
    "plot_exponent_sensitivity": "plots",
    "plot_hparam_landscape": "plots",
    "plot_optimal_hparam_law": "plots",
    "plot_pareto_front": "plots",
    "plot_grouped_front": "plots",
    "plot_power_frontier": "plots",
    "plot_parallel_coordinates": "plots",
    "plot_importance": "plots",
    "plot_cost_breakdown": "plots",
    "save_png": "plots",
    "png_bytes": "plots",
    "run_analysis": "report",
    "AnalysisReport": "report",
    "validate_analysis_spec": "spec",
    "AnalysisSpec": "spec",
    "AnalysisInputError": "errors",
    "MissingColumnError": "errors",
    "NoUsableRowsError": "errors",
    "TooFewPointsError": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
