"""The report's analysis sections: the cost-metric frontier, the scaling-law fits, the IsoFLOP curves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orchestrator.analysis.errors import AnalysisInputError
from orchestrator.report.page import TITLES, Section, esc, facts, figure, notes, number, plain, skipped, table

if TYPE_CHECKING:
    import pandas as pd

    from orchestrator.analysis.scaling import ScalingFit
    from orchestrator.analysis.spec import FitSpec, FrontierSpec
    from orchestrator.report.build import Inputs

# Compute (or x) an extrapolation reaches, as multiples of the largest the runs used.
EXTRAPOLATE = (10.0, 100.0)


# -- frontier ---------------------------------------------------------------------------------------------------------
def frontier_section(inputs: Inputs) -> Section:
    key, title = "frontier", TITLES["frontier"]
    if not inputs.spec.frontiers:
        return skipped(key, title, inputs.notes.get(key, "no frontier applies to these runs"))
    parts = [_front(inputs, spec) for spec in inputs.spec.frontiers]
    fronts = [data for data, _ in parts if "front" in data]
    if not fronts:
        return skipped(key, title, "; ".join(d["reason"] for d, _ in parts))
    return Section(key, title, "".join(body for _, body in parts), {"fronts": [d for d, _ in parts]})


def _front(inputs: Inputs, spec: FrontierSpec) -> tuple[dict[str, Any], str]:
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.analysis.plots import plot_pareto_front, png_bytes

    objectives = dict(spec.objectives)
    head = f"<h3>{esc(spec.name)}: " + ", ".join(f"{esc(c)} ({s})" for c, s in objectives.items()) + "</h3>"
    try:
        front = pareto_front(inputs.runs, objectives)
    except AnalysisInputError as err:
        return {"name": spec.name, "objectives": objectives, "reason": str(err)}, head + notes([str(err)], "reason")
    excluded = front.attrs["excluded"]
    columns = ["run_name", *objectives, *inputs.swept]
    rows = [{"run_id": r["run_id"], "run_key": r["run_key"], **{c: r.get(c) for c in columns}}
            for _, r in front.iterrows()]
    reasons = {str(k): int(v) for k, v in excluded["reason"].value_counts().items()} if len(excluded) else {}
    data = {"name": spec.name, "objectives": objectives, "n_runs": len(inputs.runs), "n_excluded": len(excluded),
            "excluded_reasons": reasons, "front": rows}
    lead = (f"{len(front)} of {len(inputs.runs) - len(excluded)} runs are on the front (no other run is at least as "
            f"good in every objective and better in one); {len(excluded)} excluded.")
    png = png_bytes(plot_pareto_front(front, inputs.runs, objectives))
    headers = {c: c.removeprefix("sweep.") for c in columns}
    body = head + notes([lead]) + figure(png, f"frontier {spec.name}") + table(
        rows, columns, headers=headers, keys="run_key", css="front")
    return data, body + notes(f"excluded {n}: {why}" for why, n in reasons.items())


# -- scaling fits -----------------------------------------------------------------------------------------------------
def fit_section(inputs: Inputs) -> Section:
    key, title = "fit", TITLES["fit"]
    if not inputs.spec.fits:
        return skipped(key, title, inputs.notes.get(key, "no scaling law applies to these runs"))
    parts = [_fit(inputs, spec) for spec in inputs.spec.fits]
    if not any("params" in data for data, _ in parts):
        return skipped(key, title, "; ".join(f"{d['name']}: {d['reason']}" for d, _ in parts))
    return Section(key, title, "".join(body for _, body in parts), {"fits": [d for d, _ in parts]})


def _fit(inputs: Inputs, spec: FitSpec) -> tuple[dict[str, Any], str]:
    from orchestrator.analysis.plots import plot_scaling_fit, png_bytes
    from orchestrator.analysis.scaling import fit_scaling_law

    columns = ", ".join(f"{role}={column}" for role, column in spec.columns.items())
    head = f"<h3>{esc(spec.name)}: {esc(spec.form)} ({esc(columns)})</h3>"
    try:
        fit = fit_scaling_law(inputs.runs, spec.form, **spec.columns, **spec.options)
    except AnalysisInputError as err:
        return {"name": spec.name, "reason": str(err)}, head + notes([str(err)], "reason")
    if fit.unsupported:  # no numbers from a fit the data cannot support (analysis/_support.py)
        reason = f"the data cannot support it: {'; '.join(fit.unsupported)}"
        return {"name": spec.name, "reason": reason}, head + notes([reason], "reason")
    projections, why = extrapolation(fit, inputs.runs)
    data = {"name": spec.name, **fit.to_dict(), "extrapolation": projections}
    png = png_bytes(plot_scaling_fit(fit, inputs.runs, band=True))
    law = ("L = E + A / N^alpha + B / D^beta" if fit.form == "chinchilla" else "y = E + A · x^-alpha")
    resamples = f"95% intervals from {fit.bootstrap} bootstrap resamples" if fit.bootstrap else "no bootstrap"
    lead = f"{law}, fitted on {fit.n_points} runs ({len(fit.excluded)} excluded); {resamples}."
    body = head + notes([lead]) + _params_table(spec.name, fit) + _optimal(spec.name, data)
    body += figure(png, f"fit {spec.name}") + notes(["Solid: the fitted law over the runs' range; dashed: extrapolated;"
                                                      " shaded: its 95% bootstrap band."])
    body += _extrapolation_table(spec.name, fit, projections) + notes([why] if why else [])
    body += notes((f"excluded {n}: {r}" for r, n in data["excluded_reasons"].items()))
    return data, body + notes(fit.warnings, "warning")


def _params_table(name: str, fit: ScalingFit) -> str:
    rows = [{"name": f"{name}.{p}", "parameter": p, "estimate": v, "ci_low": fit.ci.get(p, (None, None))[0],
             "ci_high": fit.ci.get(p, (None, None))[1], "stderr": fit.stderr.get(p)} for p, v in fit.params.items()]
    headers = {"ci_low": "95% CI low", "ci_high": "95% CI high"}
    return table(rows, ["parameter", "estimate", "ci_low", "ci_high", "stderr"], headers=headers, keys="name")


def _optimal(name: str, data: dict[str, Any]) -> str:
    optimal = data.get("compute_optimal_exponents")
    if not optimal or None in optimal.values():
        return ""
    return facts({"N_opt ∝ C^a, a": optimal["n_opt"], "D_opt ∝ C^b, b": optimal["d_opt"]}, f"{name}.optimal")


def extrapolation(fit: ScalingFit, runs: pd.DataFrame) -> tuple[list[dict[str, Any]], str | None]:
    """The law beyond the runs, at EXTRAPOLATE times their largest compute (chinchilla: at the compute-optimal N and
    D for that budget, C = 6 N D) or x (power), with the 95% bootstrap interval; and why there is none, if so."""
    from orchestrator.analysis._rows import split_usable

    roles = fit.columns
    values = split_usable(runs, list(dict.fromkeys(roles.values())), positive=True).values
    if fit.form != "chinchilla":
        points = [{"x": float(values[roles["x"]].max() * k)} for k in EXTRAPOLATE]
        return [_predicted(fit, p, x=p["x"]) for p in points], None
    largest = float((6.0 * values[roles["n"]] * values[roles["d"]]).max())
    try:
        n_opt, d_opt = fit.compute_optimal([largest * k for k in EXTRAPOLATE])
    except ValueError as err:
        return [], f"no extrapolation: {err}"
    points = [{"flops": largest * k, "n_opt": float(n), "d_opt": float(d)}
              for k, n, d in zip(EXTRAPOLATE, n_opt, d_opt)]
    return [_predicted(fit, p, n=p["n_opt"], d=p["d_opt"]) for p in points], None


def _predicted(fit: ScalingFit, point: dict[str, Any], **inputs: float) -> dict[str, Any]:
    interval = fit.predict_interval(**inputs)
    low, high = (None, None) if interval is None else (float(interval[0]), float(interval[1]))
    return {**point, "predicted": float(fit.predict(**inputs)), "ci_low": low, "ci_high": high}


def _extrapolation_table(name: str, fit: ScalingFit, projections: list[dict[str, Any]]) -> str:
    if not projections:
        return ""
    columns = ["flops", "n_opt", "d_opt"] if fit.form == "chinchilla" else ["x"]
    rows = [{"name": f"{name}.extrapolation{i}", **p} for i, p in enumerate(projections)]
    what = (f"compute-optimal {fit.columns['loss']} at {' and '.join(f'{k:g}×' for k in EXTRAPOLATE)} the largest "
            "compute of the runs" if fit.form == "chinchilla" else
            f"{fit.columns['y']} at {' and '.join(f'{k:g}×' for k in EXTRAPOLATE)} the largest {fit.columns['x']}")
    headers = {"predicted": "predicted", "ci_low": "95% CI low", "ci_high": "95% CI high"}
    return f"<h3>Extrapolation: {esc(what)}</h3>" + table(rows, [*columns, "predicted", "ci_low", "ci_high"],
                                                           headers=headers, keys="name")


# -- IsoFLOP ----------------------------------------------------------------------------------------------------------
def isoflop_section(inputs: Inputs) -> Section:
    from orchestrator.analysis.isoflop import fit_isoflop
    from orchestrator.analysis.plots import plot_isoflop, png_bytes

    key, title = "isoflop", TITLES["isoflop"]
    spec = inputs.spec.isoflop
    if spec is None:
        return skipped(key, title, inputs.notes.get(key, "no IsoFLOP analysis applies to these runs"))
    try:
        fit = fit_isoflop(inputs.runs, **spec.columns, **spec.options)
    except AnalysisInputError as err:
        return skipped(key, title, f"no IsoFLOP curves: {err}")
    budgets = fit.budgets.assign(used=fit.budgets["dropped_reason"] == "")
    rows = [{"budget": f"isoflop.budget{i}", **plain(r)} for i, r in enumerate(budgets.to_dict("records"))]
    data = {**fit.to_dict(), "budget_table": rows}
    a_ci = f" (95% CI {number(fit.a_ci[0])} to {number(fit.a_ci[1])})" if fit.a_ci else ""
    lead = (f"Per compute budget, a parabola of {fit.columns['loss']} in log {fit.columns['n']}; its minimum is that "
            f"budget's optimal size. Through the minima: N_opt = k · C^a with a = {number(fit.a)}{a_ci}, "
            f"k = {number(fit.k)}.")
    body = notes([lead]) + facts({"a": fit.a, "a_stderr": fit.a_stderr, "k": fit.k, "b = 1 - a": fit.b}, "isoflop")
    body += figure(png_bytes(plot_isoflop(fit, inputs.runs)), "IsoFLOP curves")
    columns = ["flops", "n_points", "n_sizes", "n_opt", "loss_opt", "extrapolated", "used", "dropped_reason"]
    body += table(rows, columns, keys="budget") + notes(fit.warnings, "warning")
    return Section(key, title, body, data)
