"""The sweep-end analysis hook: run what the `analysis:` section asks for on a DataFrame of runs.

`run_analysis` returns an `AnalysisReport` of named files (JSON, CSV, PNG), headline metrics and warnings;
logging them anywhere is the caller's business. A fit or frontier that the data cannot support (missing
column, too few usable rows) is skipped with a warning so the other parts are still produced; a bad spec
raises ConfigError before anything is computed.

Names: fit.<name>.{json,png,excluded.csv}, isoflop.{json,png,budgets.csv}, with `parametric` isoflop.{sensitivity.csv,
compare.png} and metrics isoflop.approach{2,3}.{exponent,ci_low,ci_high}, isoflop.sensitivity.{spread,min,max},
frontier.<name>.{csv,json,png} (with `by`/`mean_over` also .points.csv, metrics .n_points, .groups_on_front,
.on_front.<by>_<value>), power.<name>.{csv,groups.csv,json,png}; metrics fit.<name>.<param>, isoflop.a,
frontier.<name>.size, power.<name>.n_groups, power.<name>.group<i>.{best_limit,energy_saving_pct,time_increase_pct}
(group <i> as numbered in power.<name>.groups.csv); hparams.<name>.{json,csv,png,law.png}, metrics
hparams.<name>.{exponent.<col>,exponent.<col>_ci_low,exponent.<col>_ci_high,coefficient,n_cells}, ...
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from orchestrator.analysis.errors import AnalysisInputError
from orchestrator.analysis.spec import (
    AnalysisSpec,
    FitSpec,
    FrontierSpec,
    HparamSpec,
    IsoFlopSpec,
    PowerSpec,
    validate_analysis_spec,
)

__all__ = ["AnalysisReport", "run_analysis"]

# Runs of a front named in its summary line.
FRONT_SHOWN = 3


@dataclass(frozen=True)
class AnalysisReport:
    """Files by name, headline metrics by name, and warnings, from one analysis run."""

    files: dict[str, bytes] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # A few lines a person reads first: each front's best runs, each fit's exponents with their intervals.
    summary: list[str] = field(default_factory=list)


def run_analysis(df: pd.DataFrame, spec: Mapping[str, Any] | AnalysisSpec | None) -> AnalysisReport:
    """Run every fit, the IsoFLOP analysis, every frontier and power analysis that `spec` (`analysis:`) names."""
    parsed = validate_analysis_spec(spec)
    parts = [_fit_part(df, f) for f in parsed.fits]
    if parsed.isoflop is not None:
        parts.append(_isoflop_part(df, parsed.isoflop))
        if parsed.isoflop.parametric_d is not None:
            parts.append(_compare_part(df, parsed.isoflop))
    parts += [_frontier_part(df, f) for f in parsed.frontiers]
    parts += [_power_part(df, p) for p in parsed.power]
    parts += [_hparams_part(df, h) for h in parsed.hparams]
    return _merge(parts)


def _fit_part(df: pd.DataFrame, spec: FitSpec) -> AnalysisReport:
    from orchestrator.analysis.plots import plot_scaling_fit, png_bytes
    from orchestrator.analysis.scaling import fit_scaling_law

    prefix = f"fit.{spec.name}"
    try:
        fit = fit_scaling_law(df, spec.form, **spec.columns, **spec.options)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"{prefix} skipped: {err}"])
    if fit.unsupported:  # no numbers from a fit the data cannot support: the reasons instead (analysis/_support.py)
        return AnalysisReport(warnings=[f"{prefix} skipped: the data cannot support it: {'; '.join(fit.unsupported)}"])
    files = {f"{prefix}.json": _json(fit.to_dict()), f"{prefix}.png": png_bytes(plot_scaling_fit(fit, df))}
    if len(fit.excluded):
        files[f"{prefix}.excluded.csv"] = fit.excluded.to_csv().encode()
    metrics = {f"{prefix}.{k}": v for k, v in fit.params.items()}
    metrics[f"{prefix}.n_points"] = float(fit.n_points)
    for name in ("alpha", "beta"):
        if name in fit.ci:
            metrics[f"{prefix}.{name}_ci_low"], metrics[f"{prefix}.{name}_ci_high"] = fit.ci[name]
    if fit.form == "chinchilla" and fit.params["alpha"] + fit.params["beta"] > 0:
        metrics[f"{prefix}.n_opt_exponent"] = fit.params["beta"] / (fit.params["alpha"] + fit.params["beta"])
    return AnalysisReport(files, _finite(metrics), [f"{prefix}: {w}" for w in fit.warnings],
                          [_fit_line(prefix, fit, metrics)])


def _fit_line(prefix: str, fit: Any, metrics: Mapping[str, float]) -> str:
    """'fit.chinchilla (64 runs): alpha 0.34 [0.31, 0.37], beta ..., N_opt ~ C^0.45'."""
    def value(name: str) -> str:
        low, high = fit.ci.get(name, (math.nan, math.nan))
        interval = f" [{low:.3g}, {high:.3g}]" if math.isfinite(low) and math.isfinite(high) else ""
        return f"{name} {fit.params[name]:.3g}{interval}"

    names = [n for n in ("alpha", "beta", "E") if n in fit.params]
    line = f"{prefix} ({fit.n_points} runs): " + ", ".join(value(n) for n in names)
    if f"{prefix}.n_opt_exponent" in metrics:
        line += f"; compute-optimal N ~ C^{metrics[f'{prefix}.n_opt_exponent']:.3g}"
    return line


def _isoflop_part(df: pd.DataFrame, spec: IsoFlopSpec) -> AnalysisReport:
    from orchestrator.analysis.isoflop import fit_isoflop
    from orchestrator.analysis.plots import plot_isoflop, png_bytes

    try:
        fit = fit_isoflop(df, **spec.columns, **spec.options)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"isoflop skipped: {err}"])
    files = {
        "isoflop.json": _json(fit.to_dict()),
        "isoflop.png": png_bytes(plot_isoflop(fit, df)),
        "isoflop.budgets.csv": fit.budgets.to_csv(index=False).encode(),
    }
    n_budgets = float((fit.budgets["dropped_reason"] == "").sum())
    metrics = {"isoflop.a": fit.a, "isoflop.b": fit.b, "isoflop.k": fit.k, "isoflop.a_stderr": fit.a_stderr}
    metrics["isoflop.n_budgets"] = n_budgets
    return AnalysisReport(files, _finite(metrics), [f"isoflop: {w}" for w in fit.warnings])


def _compare_part(df: pd.DataFrame, spec: IsoFlopSpec) -> AnalysisReport:
    """Approach 2 against approach 3, and with `sensitivity` the exponent under other fit choices."""
    from orchestrator.analysis.plots import plot_exponent_sensitivity, png_bytes
    from orchestrator.analysis.sensitivity import DEFAULT_CHOICES, SENSITIVITY_CHOICES, exponent_sensitivity

    columns = {"n": spec.columns["n"], "flops": spec.columns["flops"], "loss": spec.columns["loss"]}
    result = exponent_sensitivity(df, **columns, d=spec.parametric_d, **spec.options,
                                  choices=SENSITIVITY_CHOICES if spec.sensitivity else DEFAULT_CHOICES)
    files = {"isoflop.sensitivity.csv": result.table.to_csv(index=False).encode(),
             "isoflop.compare.png": png_bytes(plot_exponent_sensitivity(result))}
    return AnalysisReport(files, result.metrics(), result.warnings(), result.summary())


def _frontier_part(df: pd.DataFrame, spec: FrontierSpec) -> AnalysisReport:
    from orchestrator.analysis._hypervolume import hypervolume
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.analysis.plots import plot_pareto_front, png_bytes

    prefix = f"frontier.{spec.name}"
    if spec.by or spec.mean_over:
        return _grouped_frontier_part(df, spec, prefix)
    try:
        front = pareto_front(df, spec.objectives)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"{prefix} skipped: {err}"])
    metrics = {f"{prefix}.size": float(len(front))}
    if spec.reference is not None:
        metrics[f"{prefix}.hypervolume"] = hypervolume(front, spec.objectives, spec.reference)
    excluded = front.attrs["excluded"]
    summary = {"objectives": dict(spec.objectives), "reference": spec.reference, "size": len(front)}
    summary.update(hypervolume=metrics.get(f"{prefix}.hypervolume"), n_excluded=len(excluded))
    summary["excluded_reasons"] = {str(k): int(v) for k, v in excluded["reason"].value_counts().items()}
    files = {
        f"{prefix}.csv": front.to_csv().encode(),
        f"{prefix}.json": _json(summary),
        f"{prefix}.png": png_bytes(plot_pareto_front(front, df, spec.objectives)),
    }
    return AnalysisReport(files, _finite(metrics), [], [_front_line(prefix, front, df, spec.objectives)])


def _grouped_frontier_part(df: pd.DataFrame, spec: FrontierSpec, prefix: str) -> AnalysisReport:
    """A front with `by` and/or `mean_over`: of configuration means, each group's own front, and its owners."""
    from orchestrator.analysis._hypervolume import hypervolume
    from orchestrator.analysis.grouped import grouped_front
    from orchestrator.analysis.plots import plot_grouped_front, png_bytes

    try:
        result = grouped_front(df, spec.objectives, by=spec.by, mean_over=spec.mean_over)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"{prefix} skipped: {err}"])
    metrics = {f"{prefix}.size": float(len(result.front)), f"{prefix}.n_points": float(len(result.points))}
    if spec.reference is not None:
        metrics[f"{prefix}.hypervolume"] = hypervolume(result.front, spec.objectives, spec.reference)
    if spec.by:
        metrics[f"{prefix}.groups_on_front"] = float(len(result.groups_on_front))
        metrics.update({f"{prefix}.on_front.{spec.by}_{result.group_name(g)}": float(row["on_front"])
                        for g, row in result.groups.iterrows()})
    summary = {**result.to_dict(), "reference": spec.reference, "hypervolume": metrics.get(f"{prefix}.hypervolume")}
    files = {
        f"{prefix}.csv": result.front.to_csv().encode(),
        f"{prefix}.points.csv": result.points.to_csv().encode(),
        f"{prefix}.json": _json(summary),
        f"{prefix}.png": png_bytes(plot_grouped_front(result)),
    }
    return AnalysisReport(files, _finite(metrics), [], [f"{prefix}: {result.headline(FRONT_SHOWN)}"])


def _front_line(prefix: str, front: pd.DataFrame, df: pd.DataFrame, objectives: Mapping[str, str]) -> str:
    """'frontier.cost_usd-val_loss: 3 of 6 runs: d_model=128 tokens=4e5 (cost_usd 0.021, val_loss 1.92); ...'."""
    shown = front.head(FRONT_SHOWN)
    name = "run_name" if "run_name" in front.columns else None
    runs = "; ".join(
        f"{row[name] if name else i} (" + ", ".join(f"{k} {row[k]:.4g}" for k in objectives) + ")"
        for i, row in shown.iterrows())
    more = f"; and {len(front) - len(shown)} more" if len(front) > len(shown) else ""
    return f"{prefix}: {len(front)} of {len(df)} runs on the front: {runs}{more}"


def _power_part(df: pd.DataFrame, spec: PowerSpec) -> AnalysisReport:
    from orchestrator.analysis.plots import plot_power_frontier, png_bytes
    from orchestrator.analysis.power import power_frontier

    prefix = f"power.{spec.name}"
    try:
        result = power_frontier(df, cost=spec.cost, **spec.columns)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"{prefix} skipped: {err}"])
    files = {
        f"{prefix}.csv": result.runs.to_csv().encode(),
        f"{prefix}.groups.csv": result.groups.to_csv().encode(),
        f"{prefix}.json": _json(result.to_dict()),
        f"{prefix}.png": png_bytes(plot_power_frontier(result)),
    }
    metrics = {f"{prefix}.n_groups": float(len(result.groups))}
    for group, row in result.groups.iterrows():
        for key in ("best_limit", "energy_saving_pct", "time_increase_pct"):
            metrics[f"{prefix}.group{group}.{key}"] = row[key]
    return AnalysisReport(files, _finite(metrics), [f"{prefix}: {w}" for w in result.warnings])


def _hparams_part(df: pd.DataFrame, spec: HparamSpec) -> AnalysisReport:
    from orchestrator.analysis.hparams import fit_optimal_hparams
    from orchestrator.analysis.plots import plot_hparam_landscape, plot_optimal_hparam_law, png_bytes

    prefix = f"hparams.{spec.name}"
    try:
        fit = fit_optimal_hparams(df, spec.hparam, spec.over, spec.loss, profile=spec.profile, **spec.options)
    except AnalysisInputError as err:
        return AnalysisReport(warnings=[f"{prefix} skipped: {err}"])
    files = {
        f"{prefix}.json": _json(fit.to_dict()),
        f"{prefix}.csv": fit.optima.to_csv(index=False).encode(),
        f"{prefix}.png": png_bytes(plot_hparam_landscape(fit)),
        f"{prefix}.law.png": png_bytes(plot_optimal_hparam_law(fit)),
    }
    metrics = {f"{prefix}.coefficient": fit.coefficient, f"{prefix}.n_cells": float(fit.n_cells)}
    for column, exponent in fit.exponents.items():
        metrics[f"{prefix}.exponent.{column}"] = exponent
        if column in fit.ci:
            low, high = fit.ci[column]
            metrics[f"{prefix}.exponent.{column}_ci_low"], metrics[f"{prefix}.exponent.{column}_ci_high"] = low, high
    return AnalysisReport(files, _finite(metrics), [f"{prefix}: {w}" for w in fit.warnings],
                          [f"{prefix}: {fit.summary()}"])


def _merge(parts: list[AnalysisReport]) -> AnalysisReport:
    files: dict[str, bytes] = {}
    metrics: dict[str, float] = {}
    summary = [line for part in parts for line in part.summary]
    warnings: list[str] = []
    for part in parts:
        files.update(part.files)
        metrics.update(part.metrics)
        warnings.extend(part.warnings)
    return AnalysisReport(files, metrics, warnings, summary)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, indent=2, allow_nan=False).encode()
