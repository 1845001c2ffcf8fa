"""Scaling-law fits: `fit_scaling_law` and the frozen `ScalingFit` it returns.

Forms: "chinchilla", L(N, D) = E + A/N**alpha + B/D**beta (Hoffmann et al. 2022), and "power",
y = E + A * x**-alpha. The default objective is Hoffmann et al.'s: Huber loss (delta = 1e-3) on
log L̂ - log L, with L̂ computed as a log-sum-exp. The search is global: variable projection over a dense
exponent grid, then Levenberg-Marquardt from the best local minima (see `_search.py`, `_lm.py`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestrator.analysis import _bootstrap
from orchestrator.analysis._estimate import COMPETITIVE, POLISHED_STARTS, Estimate, bootstrap_fits, global_fit
from orchestrator.analysis._fit_options import FitOptions, fit_options
from orchestrator.analysis._fit_result import ScalingFit
from orchestrator.analysis._forms import Form, get_form, natural_params
from orchestrator.analysis._objective import Problem, make_problem
from orchestrator.analysis._rows import UsableRows, split_usable
from orchestrator.analysis.errors import TooFewPointsError

__all__ = ["ScalingFit", "fit_scaling_law"]

# An exponent closer than this to a search bound is reported as sitting at the bound.
AT_BOUND = 1e-4


def fit_scaling_law(
    df: pd.DataFrame,
    form: str = "chinchilla",
    *,
    n: str = "n_params",
    d: str = "tokens",
    loss: str = "val_loss",
    x: str = "flops",
    y: str = "val_loss",
    objective: str = "huber",
    delta: float = 1e-3,
    irreducible: bool = True,
    bootstrap: int = 1000,
    seed: int | None = 0,
    exponent_bounds: tuple[float, float] = (0.0, 2.5),
    grid_size: int | None = None,
) -> ScalingFit:
    """Fit a scaling law to the usable rows of `df`; failed, non-finite and non-positive rows are excluded.

    The chinchilla form reads columns `n`, `d` and `loss`; the power form reads `x` and `y`.
    `objective` is "huber" (on the log residual, threshold `delta`) or "squared" (least squares on it).
    `irreducible=False` fixes E = 0. `bootstrap` row resamples (seeded by `seed`) give 95% percentile
    intervals and standard errors; 0 skips them.
    """
    spec = get_form(form)
    roles = {"n": n, "d": d, "loss": loss} if form == "chinchilla" else {"x": x, "y": y}
    opts = fit_options(spec, objective, delta, irreducible, bootstrap, seed, exponent_bounds, grid_size)
    rows = split_usable(df, list(dict.fromkeys(roles.values())), positive=True)
    problem = _problem(spec, roles, rows, opts, len(df))
    est = global_fit(problem, opts.exponent_bounds, opts.grid_size)
    samples = bootstrap_fits(problem, est, opts.bootstrap, opts.seed) if opts.bootstrap else None
    return _result(spec, roles, opts, problem.z_mean, est, samples, rows)


def _problem(spec: Form, roles: dict[str, str], rows: UsableRows, opts: FitOptions, n_rows: int) -> Problem:
    """The usable values as a fitting problem; TooFewPointsError when they cannot determine the parameters."""
    inputs = [rows.values[roles[r]] for r in spec.inputs]
    target = rows.values[roles["loss" if spec.name == "chinchilla" else "y"]]
    problem = make_problem(inputs, target, opts.irreducible, np.inf if opts.delta is None else opts.delta)
    needed = problem.n_params + 1
    if rows.size < needed:
        detail = f"{len(rows.excluded)} of {n_rows} rows were excluded; see the 'reason' of each"
        raise TooFewPointsError(f"the {spec.name} form ({problem.n_params} parameters)", needed, rows.size, detail)
    return problem


def _result(
    spec: Form,
    roles: dict[str, str],
    opts: FitOptions,
    z_mean: np.ndarray,
    est: Estimate,
    samples: np.ndarray | None,
    rows: UsableRows,
) -> ScalingFit:
    names = spec.param_names
    params = dict(zip(names, natural_params(spec, est.theta[None], z_mean, opts.irreducible)[0].tolist()))
    warnings = _bound_warnings(spec, est.theta, opts.exponent_bounds)
    table = None
    if samples is not None:
        table = pd.DataFrame(natural_params(spec, samples, z_mean, opts.irreducible), columns=list(names))
    ci, stderr = _intervals(table, params, opts.irreducible, warnings)
    if table is not None:
        warnings += _bootstrap_bound_warnings(spec, table, opts.exponent_bounds)
    return ScalingFit(
        form=spec.name,
        params=params,
        ci=ci,
        stderr=stderr,
        columns=dict(roles),
        n_points=rows.size,
        excluded=rows.excluded,
        objective=opts.objective,
        delta=opts.delta,
        objective_value=est.value,
        method=_method(opts, len(spec.inputs)),
        bootstrap=opts.bootstrap,
        seed=opts.seed,
        exponent_bounds=opts.exponent_bounds,
        irreducible=opts.irreducible,
        warnings=tuple(warnings),
        samples=table,
    )


def _intervals(
    table: pd.DataFrame | None, params: dict[str, float], irreducible: bool, warnings: list[str]
) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """Percentile intervals and standard errors of the fitted parameters; appends interval warnings."""
    if table is None:
        return {}, {}
    fitted = tuple(k for k in params if k != "E" or irreducible)
    lo, hi = _bootstrap.percentile_interval(table[list(fitted)].to_numpy())
    warnings += _bootstrap.interval_warnings(fitted, np.array([params[k] for k in fitted]), lo, hi)
    ci = {k: (float(a), float(b)) for k, a, b in zip(fitted, lo, hi)}
    return ci, {k: float(table[k].std(ddof=1)) for k in fitted}


def _at_bound(values: np.ndarray, exponent_bounds: tuple[float, float]) -> np.ndarray:
    lo, hi = exponent_bounds
    return (np.abs(values - lo) < AT_BOUND) | (np.abs(values - hi) < AT_BOUND)


def _bound_warnings(spec: Form, theta: np.ndarray, exponent_bounds: tuple[float, float]) -> list[str]:
    return [
        f"{name} = {value:.6g} sits at a search bound {list(exponent_bounds)}; the fit is not an interior optimum"
        for name, value in zip(spec.exponents, theta[: len(spec.exponents)])
        if _at_bound(np.array(value), exponent_bounds)
    ]


def _bootstrap_bound_warnings(spec: Form, table: pd.DataFrame, exponent_bounds: tuple[float, float]) -> list[str]:
    warnings = []
    for name in spec.exponents:
        share = float(_at_bound(table[name].to_numpy(), exponent_bounds).mean())
        if share > 0.05:
            warnings.append(f"{name} sits at a search bound in {share:.0%} of bootstrap resamples")
    return warnings


def _method(opts: FitOptions, n_exponents: int) -> str:
    grid = "x".join([str(opts.grid_size)] * n_exponents)
    return (
        f"variable projection over a {grid} exponent grid on {list(opts.exponent_bounds)} "
        f"(linear coefficients solved exactly per grid point), then Levenberg-Marquardt from the "
        f"{POLISHED_STARTS} best local minima; bootstrap refits start from the full-data optimum and any "
        f"other optimum within {COMPETITIVE}x of its objective"
    )
