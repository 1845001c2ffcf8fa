"""The compute-optimal exponent two ways, and how much it moves with the way it is fitted.

The exponent is `a` in N_opt ∝ C**a (and D_opt ∝ C**(1 - a) under C = 6 N D). Chinchilla's approach 2
(`fit_isoflop`) fits a parabola in log N per compute budget and a line through the minima; approach 3
(`fit_scaling_law`, form chinchilla) fits L = E + A/N**alpha + B/D**beta to every run and reads
a = beta / (alpha + beta). Each gets a 95% percentile bootstrap interval (approach 3's from the resampled alpha, beta).

"(Mis)Fitting: A Survey of Scaling Laws" (Li et al., 2025) shows that the fitted exponent moves with choices papers
rarely report: the loss form, the Huber delta, which runs are left out, how the optimiser is initialised. With
`choices=SENSITIVITY_CHOICES` every such choice is refitted on the same runs, one row each, so a reader sees how far
the exponent moves. A fit the data cannot support (too few runs, an exponent at its bound, see `_support.py`) keeps its
row with no exponent and the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from orchestrator.analysis._bootstrap import percentile_interval
from orchestrator.analysis.errors import AnalysisInputError

__all__ = ["DEFAULT_CHOICES", "SENSITIVITY_CHOICES", "ExponentSensitivity", "FitChoice", "exponent_sensitivity"]

TABLE_COLUMNS = ["choice", "approach", "varied", "exponent", "ci_low", "ci_high", "n_points", "supported", "note"]


@dataclass(frozen=True, eq=False)
class FitChoice:
    """One way of fitting the compute-optimal exponent: a row of the sensitivity table."""

    # Row label, e.g. "huber delta 1e-4".
    name: str
    # Chinchilla's approach: 2 (IsoFLOP parabolas) or 3 (parametric fit).
    approach: int
    # Which choice this row varies from the defaults ("default" for the two reference rows).
    varied: str
    # Keyword arguments for fit_scaling_law (approach 3: objective, delta, irreducible, grid_size).
    options: Mapping[str, Any] = field(default_factory=dict)
    # Leave out the runs of the smallest model size before fitting.
    drop_smallest: bool = False


APPROACH2 = FitChoice("approach 2: parabolas per budget", 2, "default")
APPROACH3 = FitChoice("approach 3: chinchilla fit, huber 1e-3", 3, "default")
DEFAULT_CHOICES = (APPROACH2, APPROACH3)
SENSITIVITY_CHOICES = DEFAULT_CHOICES + (
    FitChoice("E fixed at 0 (L = A/N^alpha + B/D^beta)", 3, "loss form", {"irreducible": False}),
    FitChoice("huber delta 1e-4", 3, "huber delta", {"delta": 1e-4}),
    FitChoice("huber delta 1e-2", 3, "huber delta", {"delta": 1e-2}),
    FitChoice("least squares (no huber)", 3, "huber delta", {"objective": "squared"}),
    FitChoice("approach 3 without the smallest model", 3, "smallest models", drop_smallest=True),
    FitChoice("approach 2 without the smallest model", 2, "smallest models", drop_smallest=True),
    FitChoice("coarse initial grid (10x10)", 3, "initial grid", {"grid_size": 10}),
    FitChoice("fine initial grid (100x100)", 3, "initial grid", {"grid_size": 100}),
)


@dataclass(frozen=True, eq=False)
class ExponentSensitivity:
    """The table of fitted exponents, one row per choice (the two defaults first), and the default fits."""

    # Columns TABLE_COLUMNS; exponent and interval NaN where the fit was not supported (then `note` says why).
    table: pd.DataFrame
    # The default fits (None where the data could not support them), for plots.
    isoflop: Any = None
    parametric: Any = None

    def row(self, choice: FitChoice) -> pd.Series:
        return self.table.set_index("choice").loc[choice.name]

    @property
    def approaches_overlap(self) -> bool | None:
        """Whether the two default intervals overlap; None when either approach has no interval."""
        a2, a3 = self.row(APPROACH2), self.row(APPROACH3)
        bounds = [a2["ci_low"], a2["ci_high"], a3["ci_low"], a3["ci_high"]]
        if not all(math.isfinite(v) for v in bounds):
            return None
        return bool(a2["ci_low"] <= a3["ci_high"] and a3["ci_low"] <= a2["ci_high"])

    @property
    def spread(self) -> float:
        """Largest minus smallest exponent over the supported rows (NaN with fewer than two)."""
        values = self.table["exponent"].dropna()
        return float(values.max() - values.min()) if len(values) >= 2 else math.nan

    def metrics(self, prefix: str = "isoflop") -> dict[str, float]:
        """Headline numbers: each approach's exponent and interval, whether they overlap, the table's spread."""
        out: dict[str, float] = {}
        for key, choice in (("approach2", APPROACH2), ("approach3", APPROACH3)):
            row = self.row(choice)
            for column in ("exponent", "ci_low", "ci_high"):
                out[f"{prefix}.{key}.{column}"] = float(row[column])
        if self.approaches_overlap is not None:
            out[f"{prefix}.approaches_overlap"] = float(self.approaches_overlap)
        if len(self.table) > len(DEFAULT_CHOICES):
            values = self.table["exponent"].dropna()
            out[f"{prefix}.sensitivity.spread"] = self.spread
            out[f"{prefix}.sensitivity.min"] = float(values.min()) if len(values) else math.nan
            out[f"{prefix}.sensitivity.max"] = float(values.max()) if len(values) else math.nan
            out[f"{prefix}.sensitivity.n_supported"] = float(len(values))
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def summary(self) -> list[str]:
        """Lines a person reads first: both exponents, whether they agree, and how far the fit's choices move it."""
        parts = [_said(self.row(c), label) for c, label in ((APPROACH2, "approach 2 (parabolas per budget)"),
                                                              (APPROACH3, "approach 3 (chinchilla fit)"))]
        verdict = {True: "their 95% intervals overlap",
                   False: "the two approaches DISAGREE: their 95% intervals do not overlap",
                   None: "no comparison: an approach has no exponent or no interval"}[self.approaches_overlap]
        lines = [f"isoflop compute-optimal N ~ C^a: {'; '.join(parts)}; {verdict}"]
        supported = self.table.dropna(subset=["exponent"])
        if len(self.table) > len(DEFAULT_CHOICES) and len(supported) >= 2:
            reference = self.row(APPROACH3)["exponent"]
            if not math.isfinite(reference):
                reference = self.row(APPROACH2)["exponent"]
            far = supported.iloc[int(np.argmax(np.abs(supported["exponent"].to_numpy() - reference)))]
            lines.append(f"isoflop sensitivity: a from {supported['exponent'].min():.3g} to "
                         f"{supported['exponent'].max():.3g} (spread {self.spread:.3g}) over {len(supported)} of "
                         f"{len(self.table)} fit choices; furthest from the default: {far['choice']} "
                         f"({far['exponent']:.3g})")
        return lines

    def warnings(self, prefix: str = "isoflop") -> list[str]:
        """One line per choice the data could not support, with why."""
        skipped = self.table[~self.table["supported"].astype(bool)]
        return [f"{prefix}: {row.choice} skipped: {row.note}" for row in skipped.itertuples()]


def exponent_sensitivity(
    df: pd.DataFrame,
    *,
    n: str = "n_params",
    d: str = "tokens",
    flops: str = "flops",
    loss: str = "val_loss",
    choices: tuple[FitChoice, ...] = SENSITIVITY_CHOICES,
    bootstrap: int = 200,
    seed: int | None = 0,
) -> ExponentSensitivity:
    """Fit the compute-optimal exponent of `df`'s runs once per choice; `choices` must start with DEFAULT_CHOICES."""
    if tuple(choices[: len(DEFAULT_CHOICES)]) != DEFAULT_CHOICES:
        raise ValueError("choices must start with DEFAULT_CHOICES (approach 2, approach 3), the rows compared")
    rows, fits = [], {}
    for choice in choices:
        runs = _without_smallest(df, n) if choice.drop_smallest else df
        if choice.approach == 2:
            row, fit = _approach2(runs, n, flops, loss, bootstrap, seed)
        else:
            row, fit = _approach3(runs, n, d, loss, choice.options, bootstrap, seed)
        rows.append({"choice": choice.name, "approach": choice.approach, "varied": choice.varied, **row})
        fits[choice.name] = fit
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return ExponentSensitivity(table, fits[APPROACH2.name], fits[APPROACH3.name])


def _approach2(df: pd.DataFrame, n: str, flops: str, loss: str, bootstrap: int,
               seed: int | None) -> tuple[dict[str, Any], Any]:
    from orchestrator.analysis.isoflop import fit_isoflop

    try:
        fit = fit_isoflop(df, n, flops, loss, bootstrap=bootstrap, seed=seed)
    except AnalysisInputError as err:
        return _unsupported(str(err)), None
    used = int((fit.budgets["dropped_reason"] == "").sum())
    low, high = fit.a_ci if fit.a_ci is not None else (math.nan, math.nan)
    n_points = int(fit.budgets.loc[fit.budgets["dropped_reason"] == "", "n_points"].sum())
    reason = f"{used} budgets" + "".join(f"; {w}" for w in fit.warnings if "outside the sampled" in w)
    return _row(fit.a, low, high, n_points, reason), fit


def _approach3(df: pd.DataFrame, n: str, d: str, loss: str, options: Mapping[str, Any], bootstrap: int,
               seed: int | None) -> tuple[dict[str, Any], Any]:
    from orchestrator.analysis.scaling import fit_scaling_law

    try:
        fit = fit_scaling_law(df, "chinchilla", n=n, d=d, loss=loss, bootstrap=bootstrap, seed=seed, **options)
    except AnalysisInputError as err:
        return _unsupported(str(err)), None
    if fit.unsupported:
        return {**_unsupported("; ".join(fit.unsupported)), "n_points": fit.n_points}, None
    alpha, beta = fit.params["alpha"], fit.params["beta"]
    low, high = math.nan, math.nan
    if fit.samples is not None and len(fit.samples):
        a, b = fit.samples["alpha"].to_numpy(), fit.samples["beta"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            exponents = b / (a + b)
        exponents = exponents[np.isfinite(exponents)]
        if len(exponents) >= 2:
            lo, hi = percentile_interval(exponents[:, None])
            low, high = float(lo[0]), float(hi[0])
    return _row(beta / (alpha + beta), low, high, fit.n_points, ""), fit


def _said(row: pd.Series, label: str) -> str:
    if not row["supported"]:
        return f"{label} skipped"
    interval = f" [{row['ci_low']:.3g}, {row['ci_high']:.3g}]" if math.isfinite(row["ci_low"]) else ""
    return f"{label} a = {row['exponent']:.3g}{interval}"


def _row(exponent: float, low: float, high: float, n_points: int, reason: str) -> dict[str, Any]:
    return {"exponent": float(exponent), "ci_low": low, "ci_high": high, "n_points": n_points, "supported": True,
            "note": reason}


def _unsupported(reason: str) -> dict[str, Any]:
    return {"exponent": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n_points": 0, "supported": False,
            "note": reason}


def _without_smallest(df: pd.DataFrame, n: str) -> pd.DataFrame:
    """`df` without the runs of its smallest positive model size (rows with no usable size stay; the fit drops them)."""
    sizes = pd.to_numeric(df[n], errors="coerce") if n in df.columns else None
    if sizes is None or not (sizes > 0).any():
        return df
    return df[~np.isclose(sizes, sizes[sizes > 0].min(), rtol=1e-9)]
