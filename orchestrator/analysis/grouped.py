"""A Pareto front of seed means, and which groups (bit widths, optimizers, ...) own it: `grouped_front`.

    result = grouped_front(sweep.runs, {"inference_bitops": "min", "test_accuracy": "max"}, by="bits",
                           mean_over=("seed",))
    result.points          # one row per configuration: its mean objectives, their std, n_runs, on_front, on_group_front
    result.front           # the configurations on the overall front
    result.groups          # per value of `by`: n_points, group_front_size, on_front (members of the overall front)
    result.groups_on_front # the values of `by` with a member on the overall front, most members first

The question it answers is the one of "Pareto-Optimal Quantized ResNet Is Mostly 4-bit": each group (a bit width)
traces its own cost-quality curve (its own front); which groups lie on the front of all of them?

`mean_over` (e.g. the seed) averages runs that agree on every other configuration column: the varying `sweep.*`
columns (each run's swept values) and the varying text columns, run identity aside; a column named in `mean_over`
also drops its `sweep.`/`param.` aliases. A front of means is the front a user can act on: a configuration that
reached the front on one lucky seed does not. Without `mean_over` every run is its own point.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
from pandas.api.types import is_numeric_dtype

from orchestrator.analysis._rows import REASON_COLUMN, require_columns, split_usable
from orchestrator.analysis.errors import AnalysisInputError
from orchestrator.analysis.pareto import check_objectives, pareto_front
from orchestrator.tracking.frames import IDENTITY

__all__ = ["GroupedFront", "grouped_front"]

LABEL = "label"
N_RUNS = "n_runs"
ON_FRONT = "on_front"
ON_GROUP_FRONT = "on_group_front"
# Prefixes under which a sweep's runs carry one setting: the swept value (metric) and the param renamed for a clash.
_ALIASES = ("sweep.", "param.")


@dataclass(frozen=True, eq=False)
class GroupedFront:
    """The overall front of the points (runs or configuration means) and each group's own front."""

    objectives: Mapping[str, str]
    # The group column (e.g. "bits"), or None: one group.
    by: str | None
    # Columns averaged over (e.g. ("seed",)); empty: every run is a point.
    mean_over: tuple[str, ...]
    # Columns that make a configuration when averaging (empty without mean_over).
    config: tuple[str, ...]
    # One row per point: label, the config and `by` values, each objective's mean (and <objective>_std when
    # averaging), n_runs, on_front, on_group_front. Sorted by group, then by the first objective.
    points: pd.DataFrame
    # The points on the overall front, sorted by the first objective.
    front: pd.DataFrame
    # Runs left out, with a "reason" column.
    excluded: pd.DataFrame

    @property
    def groups(self) -> pd.DataFrame:
        """Per group (index: the value of `by`): n_points, group_front_size, on_front (its points on the front)."""
        key = self.points[self.by] if self.by else pd.Series("all", index=self.points.index)
        table = self.points.groupby(key, sort=True).agg(
            n_points=(ON_FRONT, "size"), group_front_size=(ON_GROUP_FRONT, "sum"), on_front=(ON_FRONT, "sum"))
        table.index.name = self.by or "group"
        return table.astype(int)

    @property
    def groups_on_front(self) -> list[Any]:
        """Values of `by` with a point on the overall front, most points first (ties: ascending value)."""
        on = self.groups[self.groups["on_front"] > 0]
        ordered = sorted(on.index, key=lambda g: (-on.loc[g, "on_front"], g))
        return [_plain(g) for g in ordered]

    def headline(self, shown: int = 3) -> str:
        """'bits on the front: 4 (3 of 5), 2 (2); not on it: 3, 6, 8, 32. 5 of 30 configurations (means over seed of
        90 runs) on the front: bits=2 width=16 (inference_bitops 5.8e+03, test_accuracy 0.84); ...; and 2 more'."""
        line = ""
        if self.by:
            counts = self.groups["on_front"]
            owners = ", ".join(f"{g} ({counts[g]}{f' of {len(self.front)}' if i == 0 else ''})"
                               for i, g in enumerate(self.groups_on_front))
            others = [str(_plain(g)) for g in self.groups.index if counts[g] == 0]
            line = f"{_bare(self.by)} on the front: {owners}"
            line += f"; not on it: {', '.join(others)}. " if others else "; every group is on it. "
        what = "runs"
        if self.mean_over:
            what = f"configurations (means over {', '.join(self.mean_over)} of {int(self.points[N_RUNS].sum())} runs)"
        first = "; ".join(f"{row[LABEL]} (" + ", ".join(f"{c} {row[c]:.4g}" for c in self.objectives) + ")"
                          for _, row in self.front.head(shown).iterrows())
        more = f"; and {len(self.front) - shown} more" if len(self.front) > shown else ""
        return f"{line}{len(self.front)} of {len(self.points)} {what} on the front: {first}{more}"

    @staticmethod
    def group_name(value: Any) -> str:
        """A group's value as it may appear in a metric name: 4.0 -> '4', 'adam w' -> 'adam_w'."""
        return re.sub(r"[^\w.\-]", "_", str(_plain(value)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: settings, per group its counts, and the front's points."""
        groups = [{"group": _plain(g), **{k: int(v) for k, v in row.items()}} for g, row in self.groups.iterrows()]
        front = [{k: _plain(v) for k, v in row.items()} for _, row in self.front.iterrows()]
        return {"objectives": dict(self.objectives), "by": self.by, "mean_over": list(self.mean_over),
                "config": list(self.config), "n_points": len(self.points), "size": len(self.front),
                "groups_on_front": self.groups_on_front, "groups": groups, "front": front,
                "n_excluded": len(self.excluded),
                "excluded_reasons": {str(k): int(v) for k, v in self.excluded[REASON_COLUMN].value_counts().items()}}


def grouped_front(
    df: pd.DataFrame,
    objectives: Mapping[str, str],
    *,
    by: str | None = None,
    mean_over: Sequence[str] = (),
) -> GroupedFront:
    """The front of `objectives` over points (runs, or their means over `mean_over`), and per value of `by` its own.

    Raises AnalysisInputError (a ValueError) naming a missing column, or when no run is usable.
    """
    objectives = check_objectives(objectives)
    mean_over = (mean_over,) if isinstance(mean_over, str) else tuple(mean_over)
    require_columns(df, [*([by] if by else []), *[_present(df, c) for c in mean_over]])
    rows = split_usable(df, [*objectives, *([by] if by else [])], positive=False)
    usable = df.iloc[rows.positions]
    if mean_over:
        config = config_columns(usable, mean_over, by)
        points = _means(usable, config, by, objectives)
    else:
        config = ()
        points = _runs(usable, by, objectives)
    front = pareto_front(points, objectives)
    points[ON_FRONT] = points.index.isin(front.index)
    points[ON_GROUP_FRONT] = False
    for _, part in points.groupby(by, sort=True) if by else [(None, points)]:
        points.loc[pareto_front(part, objectives).index, ON_GROUP_FRONT] = True
    points = points.sort_values([*([by] if by else []), next(iter(objectives))], kind="stable")
    return GroupedFront(objectives, by, mean_over, config, points, points.loc[front.index], rows.excluded)


def config_columns(df: pd.DataFrame, mean_over: Sequence[str], by: str | None = None) -> tuple[str, ...]:
    """The columns that make a configuration: varying `sweep.*` and text columns, identity and `mean_over` aside.

    `by` joins them (a group is part of the configuration) when it varies and is not there already under an alias.
    """
    averaged = {_bare(c) for c in mean_over}
    columns = [str(c) for c in df.columns
               if c not in IDENTITY and _bare(str(c)) not in averaged
               and (str(c).startswith("sweep.") or not is_numeric_dtype(df[c])) and df[c].nunique(dropna=False) > 1]
    if by and _bare(by) not in {_bare(c) for c in columns}:
        columns.append(by)
    return tuple(columns)


def _means(usable: pd.DataFrame, config: tuple[str, ...], by: str | None,
           objectives: Mapping[str, str]) -> pd.DataFrame:
    """One row per configuration: its config values, each objective's mean and std, and how many runs it has."""
    keys = list(dict.fromkeys([*config, *([by] if by else [])]))
    if not keys:
        raise AnalysisInputError("mean_over leaves no column that tells configurations apart: every varying "
                                 "sweep.* column was averaged over; drop mean_over to use every run")
    stats = {**{c: (c, "mean") for c in objectives}, **{f"{c}_std": (c, "std") for c in objectives},
             N_RUNS: (next(iter(objectives)), "size")}
    points = usable.groupby(keys, dropna=False, sort=True).agg(**stats).reset_index()
    points.insert(0, LABEL, [_label(row, keys) for _, row in points.iterrows()])
    return points


def _runs(usable: pd.DataFrame, by: str | None, objectives: Mapping[str, str]) -> pd.DataFrame:
    names = [c for c in ("run_name", "run_id", "run_key") if c in usable.columns]
    columns = list(dict.fromkeys([*names, *([by] if by else []), *objectives]))
    points = usable[columns].copy()
    labels = usable["run_name"] if "run_name" in usable.columns else pd.Series(usable.index.astype(str),
                                                                              index=usable.index)
    points.insert(0, LABEL, labels.astype(str))
    points[N_RUNS] = 1
    return points


def _present(df: pd.DataFrame, column: str) -> str:
    """`column`, or the first of its aliases (`sweep.<column>`, `param.<column>`) that `df` has."""
    for name in (column, *(prefix + _bare(column) for prefix in _ALIASES)):
        if name in df.columns:
            return name
    return column


def _bare(column: str) -> str:
    for prefix in _ALIASES:
        if column.startswith(prefix):
            return column[len(prefix):]
    return column


def _label(row: pd.Series, keys: list[str]) -> str:
    """'bits=4 width=64': each configuration column once, a `by` alias of a swept column (bits, sweep.bits) left out."""
    names = dict.fromkeys(_bare(c) for c in keys)
    values = {name: _plain(row[next(c for c in keys if _bare(c) == name)]) for name in names}
    return " ".join(f"{name}={value:g}" if isinstance(value, (int, float)) else f"{name}={value}"
                    for name, value in values.items())


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers (whole floats as int), NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return int(value)
    return value
