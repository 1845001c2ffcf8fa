"""Energy-time fronts over GPU power limits, one per configuration, and the limit a cost model picks.

    result = power_frontier(sweep.runs, cost=ZeusCost(eta=0.5, max_power_w=700))
    result.groups   # one row per configuration: best_limit, energy_saving_pct, time_increase_pct, ...
    result.runs     # one row per run: group, limit, energy_j, wall_s, its cost, on_front, best

A group is the runs that differ only in power limit. The limit is read from `limit` (default: the first of
power_limit_w, resources.power_limit_w, resources.power_limit_frac with values: the metric is the limit the run's
boards were set to, absent where it ran at the default for want of permission, so such runs are left out); a column whose
name contains "power_limit" is never part of a group's key. The key is `by`, by default the columns that vary among
the `sweep.*` columns (each run's numeric swept values, as `load_sweep` has them) and the text columns other than
run identity (string params such as an optimizer name; metrics are always numbers). Two runs of one group at the
same limit mean `by` misses a column that tells them apart: that is an error, not an average.

Per group, over its FINISHED runs with positive, finite values: the (energy, time) Pareto front, both minimised; each
run's cost; and the limit of least cost (ties go to the lower limit). The cost models (_power_cost.py):
    ZeusCost(eta, max_power_w)   eta * energy_j + (1 - eta) * P_max * wall_s, in J (Zeus's cost; eta 1: energy only,
                                 0: time only). P_max = max_power_w, else the run's `power_limit_default_w` column,
                                 times `gpus_held` where that column exists (energy_j sums the run's GPUs)
    UsdCost(usd_per_kwh, usd_per_gpu_hour, pue)
                                 usd_per_kwh * pue * energy_j / 3.6e6 + usd_per_gpu_hour * gpu_hours, in $
The pick is compared with the group's highest limit, the board's default where the sweep ran it (e.g.
power_limit_frac 1.0): energy_saving_pct, time_increase_pct, cost_saving_pct. A group that ran one limit has no
choice to make: its pick and savings are NaN, with a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd
from pandas.api.types import is_numeric_dtype

from orchestrator.analysis._power_cost import DEFAULT_LIMIT_COLUMN, PowerCost, UsdCost, ZeusCost, parse_cost
from orchestrator.analysis._rows import REASON_COLUMN, require_columns, split_usable
from orchestrator.analysis.errors import AnalysisInputError
from orchestrator.analysis.pareto import pareto_front
from orchestrator.tracking.frames import IDENTITY

__all__ = ["PowerFrontier", "UsdCost", "ZeusCost", "power_frontier"]

# Where a sweep over power limits has each run's limit (load_sweep's param columns), in order of preference.
LIMIT_COLUMNS = ("power_limit_w", "resources.power_limit_w", "resources.power_limit_frac")
GROUP = "group"
# Columns of `PowerFrontier.groups` after the config values; best_<cost column> goes after best_limit.
SUMMARY = ("label", "n_limits", "front_size", "best_limit", "reference_limit", "energy_saving_pct",
           "time_increase_pct", "cost_saving_pct")


@dataclass(frozen=True, eq=False)
class PowerFrontier:
    """Per configuration: the energy-time front of its power limits and the limit the cost model picks."""

    # Column holding each run's limit, e.g. "resources.power_limit_frac".
    limit: str
    # Columns whose values make a configuration.
    by: tuple[str, ...]
    # Columns of energy (J) and time (s).
    energy: str
    time: str
    cost: PowerCost
    # One row per usable run, by group then limit: group, the `by` values, limit, energy, time, what the cost read,
    # the cost (column `cost_column`), on_front, best. Index: the run's row in the DataFrame passed in.
    runs: pd.DataFrame
    # One row per group (index: group): the `by` values, label, n_limits, front_size, best_limit, best_<cost column>,
    # reference_limit, energy_saving_pct, time_increase_pct, cost_saving_pct.
    groups: pd.DataFrame
    # Rows left out, with a "reason" column.
    excluded: pd.DataFrame
    warnings: tuple[str, ...] = ()

    @property
    def cost_column(self) -> str:
        return self.cost.column

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: columns, cost model, and per group its front and pick."""
        model = {"model": "zeus" if isinstance(self.cost, ZeusCost) else "usd", **vars(self.cost)}
        front = self.runs[self.runs["on_front"]]
        groups = [{"group": int(g), **{k: _plain(v) for k, v in row.items()},
                   "front": [_plain(v) for v in front.loc[front[GROUP] == g, self.limit]]}
                  for g, row in self.groups.iterrows()]
        return {"limit": self.limit, "by": list(self.by), "energy": self.energy, "time": self.time, "cost": model,
                "cost_column": self.cost_column, "groups": groups, "n_excluded": len(self.excluded),
                "excluded_reasons": {str(k): int(v) for k, v in self.excluded[REASON_COLUMN].value_counts().items()},
                "warnings": list(self.warnings)}


def power_frontier(
    df: pd.DataFrame,
    *,
    cost: PowerCost | Mapping[str, Any] = ZeusCost(),
    limit: str | None = None,
    energy: str = "energy_j",
    time: str = "wall_s",
    by: Sequence[str] | None = None,
) -> PowerFrontier:
    """Group runs that differ only in power limit; per group the energy-time front and the limit `cost` picks.

    `cost`: ZeusCost(eta, max_power_w), UsdCost(usd_per_kwh, usd_per_gpu_hour, pue), or their fields as a mapping.
    Raises AnalysisInputError (a ValueError) naming a missing column, or when no run is usable.
    """
    cost = parse_cost(cost)
    limit = _limit_column(df, limit)
    by = tuple(by) if by is not None else config_columns(df, limit)
    require_columns(df, by)
    _require_max_power(df, cost)
    rows = split_usable(df, [limit, energy, time, *cost.columns(df.columns)], positive=True)
    usable = df.iloc[rows.positions]
    runs = pd.DataFrame({**{c: usable[c] for c in _names(df) + list(by)}, **rows.values}, index=usable.index)
    runs[cost.column] = cost.of(rows.values, energy, time)
    runs = _marked(runs, by, limit, energy, time, cost.column)
    parts = dict(list(runs.groupby(GROUP)))
    columns = [*by, *SUMMARY[:4], f"best_{cost.column}", *SUMMARY[4:]]
    groups = pd.DataFrame([_summary(part, by, limit, energy, time, cost.column) for part in parts.values()],
                          index=pd.Index(list(parts), name=GROUP), columns=columns)
    warnings = [f"{row.label}: ran at one limit only ({limit}={row.reference_limit:g}), no choice to make"
                for row in groups[groups["n_limits"] == 1].itertuples()]
    if len(groups) > 1 and (groups["n_limits"] == 1).all():
        warnings.append(f"every group ran one limit: if a column of by={list(by)} is not config, pass by=[...]")
    return PowerFrontier(limit, by, energy, time, cost, runs, groups, rows.excluded, tuple(warnings))


def config_columns(df: pd.DataFrame, limit: str) -> tuple[str, ...]:
    """The default group key: the `sweep.*` and text columns that vary, run identity and power limits aside."""
    return tuple(str(c) for c in df.columns
                 if c != limit and "power_limit" not in str(c) and c not in IDENTITY
                 and (str(c).startswith("sweep.") or not is_numeric_dtype(df[c])) and df[c].nunique(dropna=False) > 1)


def _limit_column(df: pd.DataFrame, limit: str | None) -> str:
    if limit is not None:
        require_columns(df, [limit])
        return limit
    for column in LIMIT_COLUMNS:
        if column in df.columns and df[column].notna().any():
            return column
    raise AnalysisInputError(f"no power-limit column with values: expected {' or '.join(LIMIT_COLUMNS)} (a sweep "
                             "over resources.power_limit_w or _frac), or pass limit=<column>")


def _require_max_power(df: pd.DataFrame, cost: PowerCost) -> None:
    if isinstance(cost, ZeusCost) and cost.max_power_w is None and DEFAULT_LIMIT_COLUMN not in df.columns:
        raise AnalysisInputError(f"Zeus's cost needs the board's max power: column {DEFAULT_LIMIT_COLUMN!r} not "
                                 "found; give max_power_w (W per GPU)")


def _names(df: pd.DataFrame) -> list[str]:
    return [c for c in ("run_name", "run_id") if c in df.columns]


def _marked(runs: pd.DataFrame, by: tuple[str, ...], limit: str, energy: str, time: str, cost: str) -> pd.DataFrame:
    """`runs` numbered by group and sorted by group then limit, with on_front and best (least cost, if a choice)."""
    runs.insert(0, GROUP, runs.groupby(list(by), dropna=False, sort=True).ngroup() if by else 0)
    runs = runs.sort_values([GROUP, limit], kind="stable")
    _check_one_run_per_limit(runs, by, limit)
    runs["on_front"] = False
    for _, part in runs.groupby(GROUP):
        runs.loc[pareto_front(part, {energy: "min", time: "min"}).index, "on_front"] = True
    choices = runs[runs.groupby(GROUP)[limit].transform("size") > 1]
    runs["best"] = runs.index.isin(choices.groupby(GROUP)[cost].idxmin())
    return runs


def _check_one_run_per_limit(runs: pd.DataFrame, by: tuple[str, ...], limit: str) -> None:
    twice = runs[runs.duplicated([GROUP, limit], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        count = int(((twice[GROUP] == first[GROUP]) & (twice[limit] == first[limit])).sum())
        raise AnalysisInputError(
            f"group [{_label(first, by)}] has {count} runs at {limit}={first[limit]:g}: the config columns {list(by)} "
            "do not tell them apart; pass by=[...] naming the columns that do")


def _summary(part: pd.DataFrame, by: tuple[str, ...], limit: str, energy: str, time: str,
             cost: str) -> dict[str, Any]:
    """One group's row: its config, front size, and the least-cost run against the highest limit (changes in %)."""
    ref = part.loc[part[limit].idxmax()]
    summary = {**{c: part[c].iloc[0] for c in by}, "label": _label(part.iloc[0], by), "n_limits": len(part),
               "front_size": int(part["on_front"].sum()), "reference_limit": ref[limit]}
    if part["best"].any():
        best = part[part["best"]].iloc[0]
        summary.update({"best_limit": best[limit], f"best_{cost}": best[cost],
                        "energy_saving_pct": 100.0 * (1.0 - best[energy] / ref[energy]),
                        "time_increase_pct": 100.0 * (best[time] / ref[time] - 1.0),
                        "cost_saving_pct": 100.0 * (1.0 - best[cost] / ref[cost])})
    return summary


def _label(row: pd.Series, by: tuple[str, ...]) -> str:
    return ", ".join(f"{c.removeprefix('sweep.')}={row[c]}" for c in by) or "all runs"


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars as Python numbers, NaN as None."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and not math.isfinite(value) else value
