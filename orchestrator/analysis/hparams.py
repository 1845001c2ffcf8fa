"""Optimal hyperparameters as power laws in scale, as in "Predictable Scale" (Step Law): h*(N, D) = c · N^a · D^b.

    fit = fit_optimal_hparams(df, hparam="lr", over=["n_params", "tokens"], loss="val_loss", profile=["batch_size"])
    fit.exponents                      # {"n_params": -0.3, "tokens": 0.1}; fit.ci has their 95% bootstrap intervals
    fit.predict(n_params=1e9, tokens=2e10)
    fit.optima                         # one row per (N, D) cell: where its optimum is, how it was found, if used

Per cell (one combination of the `over` values) the loss at each value of `hparam` is the mean of its repeats
(seeds); where `profile` names other swept hyperparameters (batch size on an LR x batch grid), the best over them,
so the optimum is the global optimum's coordinate, as in the paper. The optimum is the vertex of the parabola in
log(hparam) through the best grid value and its two neighbours (the argmin where the three are not convex). An
optimum at the grid's lowest or highest value is only a bound: it is flagged and left out of the law, with a warning.
Then log h* = log c + sum_i a_i log x_i by least squares over the interior optima.

Intervals: each bootstrap resample draws cells with replacement and, within each grid point of a drawn cell, its
repeats with replacement; the optima are located again and the law refitted. With one seed per grid point only the
cells vary, which measures how well the law describes the optima; with seeds, run-to-run noise counts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from orchestrator.analysis._bootstrap import LEVEL, percentile_interval
from orchestrator.analysis._rows import split_usable
from orchestrator.analysis.errors import AnalysisInputError

__all__ = ["OptimalHparamFit", "fit_optimal_hparams"]

# Fewest distinct hyperparameter values that can bracket an optimum: one on each side of the best.
MIN_VALUES = 3
# Significant digits that decide whether two runs share a cell (tokens logged as 131072.0 and 131072.00001 do).
_CELL_DIGITS = 6


@dataclass(frozen=True, eq=False)
class OptimalHparamFit:
    """h* = coefficient · prod_i x_i ** exponents[i], fitted through the interior per-cell optima."""

    hparam: str
    # The scale columns, in the order given (e.g. ("n_params", "tokens")).
    over: tuple[str, ...]
    loss: str
    # Exponent of h* in each column of `over`.
    exponents: dict[str, float]
    # c in h* = c · prod x_i^a_i.
    coefficient: float
    # 95% percentile bootstrap interval of each exponent and of "coefficient" (empty without bootstrap).
    ci: dict[str, tuple[float, float]]
    # One row per cell: the `over` values, n_runs, n_values, opt, loss_opt, method (parabola | argmin),
    # edge ("" | "low" | "high"), used, reason ("" for cells in the law).
    optima: pd.DataFrame = field(repr=False)
    # The loss landscape the optima were located on: the `over` values, hparam, loss (repeats averaged, profiled).
    landscape: pd.DataFrame = field(repr=False)
    # Rows left out before any cell was formed, with a "reason" column.
    excluded: pd.DataFrame = field(repr=False)
    # Standard deviation of the residuals of log h* about the law (NaN with no degrees of freedom).
    residual_std: float
    warnings: tuple[str, ...]
    bootstrap: int = 0

    @property
    def n_cells(self) -> int:
        """Cells whose optimum is in the law."""
        return int(self.optima["used"].sum())

    def predict(self, **scale: Any) -> np.ndarray:
        """h* at the given scale, e.g. predict(n_params=1e9, tokens=2e10); every column of `over` is needed."""
        missing = [c for c in self.over if c not in scale]
        if missing:
            raise TypeError(f"predict() needs a value for {missing} (the fit is over {list(self.over)})")
        log_h = math.log(self.coefficient) + sum(
            self.exponents[c] * np.log(np.asarray(scale[c], dtype=float)) for c in self.over)
        return np.exp(log_h)

    def summary(self) -> str:
        """'lr* = 0.0123 · n_params^-0.31 [-0.45, -0.18] · tokens^0.12 [0.02, 0.2] (6 of 8 cells; 2 at the edge)'."""
        terms = " · ".join(f"{c}^{self.exponents[c]:.3g}{_interval(self.ci.get(c))}" for c in self.over)
        edges = int((self.optima["edge"] != "").sum())
        edge_note = f"; {edges} at the grid's edge" if edges else ""
        return (f"{self.hparam}* = {self.coefficient:.3g} · {terms} "
                f"({self.n_cells} of {len(self.optima)} cells{edge_note})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "per-cell parabola in log(hparam) through the best grid value and its neighbours, "
                      "then least squares of log h* on log scale",
            "hparam": self.hparam, "over": list(self.over), "loss": self.loss,
            "exponents": {k: _num(v) for k, v in self.exponents.items()},
            "coefficient": _num(self.coefficient),
            "ci": {k: [_num(v) for v in pair] for k, pair in self.ci.items()},
            "residual_std": _num(self.residual_std), "bootstrap": self.bootstrap,
            "n_cells": self.n_cells, "n_cells_total": len(self.optima), "n_excluded_rows": len(self.excluded),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, eq=False)
class _Cell:
    """One cell's runs: the sorted distinct hparam values, and the losses of each (value, profile) grid point."""

    scale: tuple[float, ...]
    values: np.ndarray  # (k,) sorted distinct hparam values
    points: tuple[tuple[int, np.ndarray], ...]  # (index into values, losses of the repeats)
    n_runs: int


def fit_optimal_hparams(
    df: pd.DataFrame,
    hparam: str = "lr",
    over: Sequence[str] = ("n_params", "tokens"),
    loss: str = "val_loss",
    *,
    profile: Sequence[str] = (),
    bootstrap: int = 200,
    seed: int | None = 0,
) -> OptimalHparamFit:
    """Fit the optimal `hparam` as a power law in the `over` columns from a grid of runs; see the module docstring.

    Raises AnalysisInputError when a column is missing, when no cell's grid has MIN_VALUES values of `hparam`, or
    when too few cells have an interior optimum to fit one exponent per column of `over` (naming the cells).
    """
    over, profile = tuple(over), tuple(profile)
    _check_roles(hparam, over, loss, profile)
    rows = split_usable(df, [hparam, *over, loss, *profile], positive=False)
    _require_positive(rows.values, [hparam, *over])
    cells = _cells(rows.values, hparam, over, loss, profile)
    optima = pd.DataFrame([_cell_row(cell, hparam, over) for cell in cells])
    _require_resolvable(optima, hparam, over)
    used = optima["used"].to_numpy()
    design = _design(optima[list(over)].to_numpy(dtype=float))
    beta, residual_std = _least_squares(design[used], np.log(optima["opt"].to_numpy()[used]))
    ci, boot_warnings = _bootstrap(cells, design, over, bootstrap, seed)
    warnings = _shadow_warnings(df, [hparam, *profile]) + _edge_warnings(optima, over)
    warnings += _repeat_warnings(df, rows.positions, hparam, over, profile)
    return OptimalHparamFit(
        hparam, over, loss, {c: float(b) for c, b in zip(over, beta[1:])}, float(np.exp(beta[0])), ci, optima,
        _landscape(cells, hparam, over), rows.excluded, residual_std, tuple(warnings + boot_warnings), bootstrap)


def _check_roles(hparam: str, over: tuple[str, ...], loss: str, profile: tuple[str, ...]) -> None:
    if not over:
        raise AnalysisInputError("over must name at least one scale column, e.g. ['n_params', 'tokens']")
    named = [hparam, *over, loss, *profile]
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        raise AnalysisInputError(f"each column may have one role (hparam, over, loss, profile); {repeated} has two")


def _require_positive(values: dict[str, np.ndarray], columns: list[str]) -> None:
    """Power laws live in log space: the hyperparameter and the scale columns must be positive."""
    for column in columns:
        if (values[column] <= 0).any():
            raise AnalysisInputError(f"column {column!r} must be positive for a power law (it has values <= 0)")


def _cells(values: dict[str, np.ndarray], hparam: str, over: tuple[str, ...], loss: str,
           profile: tuple[str, ...]) -> list[_Cell]:
    """Group the usable rows into cells by their (rounded) scale, and each cell's rows into grid points."""
    keys = np.column_stack([_rounded(values[c]) for c in over])
    h = _rounded(values[hparam])
    profile_keys = np.column_stack([_rounded(values[c]) for c in profile]) if profile else np.zeros((len(h), 0))
    cells = []
    for scale in sorted({tuple(k) for k in keys}):
        mine = (keys == np.asarray(scale)).all(axis=1)
        distinct = np.unique(h[mine])
        by_point: dict[tuple, list[float]] = {}
        for value, other, y in zip(h[mine], map(tuple, profile_keys[mine]), values[loss][mine]):
            by_point.setdefault((int(np.searchsorted(distinct, value)), other), []).append(float(y))
        points = tuple((index, np.asarray(ys)) for (index, _), ys in sorted(by_point.items()))
        cells.append(_Cell(tuple(float(v) for v in scale), distinct, points, int(mine.sum())))
    return cells


def _rounded(values: np.ndarray) -> np.ndarray:
    return np.array([float(f"{v:.{_CELL_DIGITS}g}") for v in values])


def _profiled(cell: _Cell, rng: np.random.Generator | None = None) -> np.ndarray:
    """Loss per hparam value: each grid point's mean over its repeats (resampled with `rng`), the best over profile."""
    out = np.full(len(cell.values), np.nan)
    for index, losses in cell.points:
        drawn = losses if rng is None else losses[rng.integers(0, len(losses), len(losses))]
        out[index] = np.fmin(out[index], drawn.mean())
    return out


def _locate(values: np.ndarray, losses: np.ndarray) -> tuple[float, float, str, str]:
    """(optimum, loss there, method, edge) from the profiled losses; edge is "low"/"high" at the grid's ends."""
    ok = np.isfinite(losses)
    h, y = values[ok], losses[ok]
    best = int(np.argmin(y))
    if best in (0, len(y) - 1):
        return float(h[best]), float(y[best]), "argmin", "low" if best == 0 else "high"
    u = np.log(h[best - 1:best + 2])
    c2, c1, c0 = np.polyfit(u - u[1], y[best - 1:best + 2], 2)
    if not c2 > 0:
        return float(h[best]), float(y[best]), "argmin", ""
    vertex = -c1 / (2 * c2)
    return float(np.exp(u[1] + vertex)), float(c0 - c1 * c1 / (4 * c2)), "parabola", ""


def _cell_row(cell: _Cell, hparam: str, over: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(over, cell.scale))
    losses = _profiled(cell)
    n_values = int(np.isfinite(losses).sum())
    row.update(n_runs=cell.n_runs, n_values=n_values)
    if n_values < MIN_VALUES:
        reason = f"grid too coarse: {n_values} values of {hparam}, at least {MIN_VALUES} are needed"
        return {**row, "opt": math.nan, "loss_opt": math.nan, "method": "", "edge": "", "used": False,
                "reason": reason}
    opt, loss_opt, method, edge = _locate(cell.values, losses)
    reason = f"optimum at the {edge} edge of the grid ({hparam} = {opt:.4g}): only a bound" if edge else ""
    return {**row, "opt": opt, "loss_opt": loss_opt, "method": method, "edge": edge, "used": not edge,
            "reason": reason}


def _cell_name(row: Any, over: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"{c}={row[c]:.4g}" for c in over) + ")"


def _require_resolvable(optima: pd.DataFrame, hparam: str, over: tuple[str, ...]) -> None:
    """Raise, naming the cells and why, when the interior optima cannot give one exponent per scale column."""
    if (optima["n_values"] < MIN_VALUES).all():
        raise AnalysisInputError(
            f"grid too coarse to locate an optimum of {hparam}: every cell has fewer than {MIN_VALUES} values of "
            f"{hparam} (" + "; ".join(f"{_cell_name(r, over)}: {r['n_values']}" for _, r in optima.iterrows()) + ")")
    used = optima[optima["used"]]
    design = _design(used[list(over)].to_numpy(dtype=float))
    if len(used) and np.linalg.matrix_rank(design) == design.shape[1]:
        return
    left_out = "; ".join(f"{_cell_name(r, over)}: {r['reason']}" for _, r in optima[~optima["used"]].iterrows())
    raise AnalysisInputError(
        f"too few cells with an interior optimum of {hparam} to fit an exponent for each of {list(over)}: "
        f"{len(used)} of {len(optima)} cells usable"
        + (f" ({', '.join(_cell_name(r, over) for _, r in used.iterrows())})" if len(used) else "")
        + f", and they must vary in every column of over; left out: {left_out or 'none'}")


def _design(scale: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(scale)), np.log(scale)])


def _least_squares(design: np.ndarray, log_h: np.ndarray) -> tuple[np.ndarray, float]:
    beta, *_ = np.linalg.lstsq(design, log_h, rcond=None)
    dof = len(log_h) - design.shape[1]
    residual = log_h - design @ beta
    return beta, float(np.sqrt(residual @ residual / dof)) if dof > 0 else math.nan


def _bootstrap(cells: list[_Cell], design: np.ndarray, over: tuple[str, ...], n_resamples: int,
               seed: int | None) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Percentile intervals from resampling cells, and repeats within each grid point of a drawn cell."""
    if not n_resamples:
        return {}, []
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_resamples):
        drawn = rng.integers(0, len(cells), len(cells))
        located = [(i, _locate_or_none(cells[i], rng)) for i in drawn]
        kept = [(i, opt) for i, opt in located if opt is not None]
        rows = design[[i for i, _ in kept]]
        if len(kept) and np.linalg.matrix_rank(rows) == design.shape[1]:
            samples.append(_least_squares(rows, np.log([opt for _, opt in kept]))[0])
    warnings = []
    if len(samples) < n_resamples:
        warnings.append(f"{n_resamples - len(samples)} of {n_resamples} bootstrap resamples had too few interior "
                        "optima varying in every scale column and were skipped")
    if len(samples) < 2:
        return {}, warnings + ["too few usable bootstrap resamples for intervals"]
    lo, hi = percentile_interval(np.asarray(samples), LEVEL)
    ci = {c: (float(lo[j + 1]), float(hi[j + 1])) for j, c in enumerate(over)}
    ci["coefficient"] = (float(np.exp(lo[0])), float(np.exp(hi[0])))
    return ci, warnings


def _locate_or_none(cell: _Cell, rng: np.random.Generator) -> float | None:
    losses = _profiled(cell, rng)
    if np.isfinite(losses).sum() < MIN_VALUES:
        return None
    opt, _, _, edge = _locate(cell.values, losses)
    return None if edge else opt


def _shadow_warnings(df: pd.DataFrame, columns: list[str]) -> list[str]:
    """A hyperparameter that the job also logs as a metric (the LM job's `lr` curve) is read back as the metric's last
    value (load_sweep's column rules), and the configured value as `param.<name>`: say which one was used."""
    return [f"column {c!r} is a logged metric (its last value, e.g. the end of an LR schedule); the configured value "
            f"is 'param.{c}': pass that to fit the value the runs were configured with"
            for c in columns if f"param.{c}" in df.columns]


def _edge_warnings(optima: pd.DataFrame, over: tuple[str, ...]) -> list[str]:
    return [f"cell {_cell_name(r, over)} left out of the law: {r['reason']}"
            + ("; widen the grid there" if r["edge"] else "")
            for _, r in optima[~optima["used"]].iterrows()]


def _repeat_warnings(df: pd.DataFrame, positions: np.ndarray, hparam: str, over: tuple[str, ...],
                     profile: tuple[str, ...]) -> list[str]:
    """Swept values (`sweep.*` columns) that differ between runs averaged as repeats: likely a missing `profile`."""
    roles = {hparam, *over, *profile, "seed"}
    rows = df.iloc[positions]
    swept = [c for c in rows.columns if str(c).startswith("sweep.") and str(c).rsplit(".", 1)[-1] not in roles]
    keys = [hparam, *over, *profile]
    varying = [c for c in swept if rows.groupby(keys, dropna=False)[c].nunique().max() > 1]
    return [f"runs at the same {hparam} and scale that differ in {c} were averaged as repeats; name "
            f"{c.rsplit('.', 1)[-1]!r} in profile to take the best over it instead" for c in varying]


def _landscape(cells: list[_Cell], hparam: str, over: tuple[str, ...]) -> pd.DataFrame:
    rows = [{**dict(zip(over, cell.scale)), hparam: h, "loss": y}
            for cell in cells for h, y in zip(cell.values, _profiled(cell)) if np.isfinite(y)]
    return pd.DataFrame(rows)


def _interval(pair: tuple[float, float] | None) -> str:
    return "" if pair is None else f" [{pair[0]:.3g}, {pair[1]:.3g}]"


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
