"""Which rows of a DataFrame an analysis can use, and why the others were left out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from orchestrator.analysis.errors import MissingColumnError, NoUsableRowsError
from orchestrator.records import FINISHED

# Column that, where present, says whether a run finished; other statuses are excluded.
STATUS_COLUMN = "status"
REASON_COLUMN = "reason"


@dataclass(frozen=True, eq=False)
class UsableRows:
    """The usable values (one float array per column) and the excluded rows with a reason each."""

    values: dict[str, np.ndarray]
    positions: np.ndarray  # positions (iloc) of the usable rows in the DataFrame
    excluded: pd.DataFrame

    @property
    def size(self) -> int:
        return len(self.positions)


def require_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Raise `MissingColumnError` for the first column `df` lacks."""
    for column in columns:
        if column not in df.columns:
            raise MissingColumnError(column, [str(c) for c in df.columns])


def split_usable(df: pd.DataFrame, columns: Sequence[str], *, positive: bool) -> UsableRows:
    """Keep finished rows whose `columns` are finite (and > 0 when `positive`); say why the rest went."""
    require_columns(df, columns)
    values = {c: pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in columns}
    checks = _failed_checks(df, values, positive)
    bad = np.zeros(len(df), dtype=bool)
    for mask, _ in checks:
        bad |= mask
    if bad.all():
        raise NoUsableRowsError(_no_rows_message(df, checks))
    excluded = df.iloc[np.flatnonzero(bad)].assign(**{REASON_COLUMN: _reasons(checks, bad)})
    if not len(excluded):
        return UsableRows(values, np.arange(len(df)), excluded)
    keep = ~bad
    return UsableRows({c: v[keep] for c, v in values.items()}, np.flatnonzero(keep), excluded)


def _failed_checks(df: pd.DataFrame, values: dict[str, np.ndarray], positive: bool) -> list[tuple[np.ndarray, str]]:
    """(mask of rows failing, reason) per check, in the order reasons are reported."""
    checks = []
    if STATUS_COLUMN in df.columns:
        status = df[STATUS_COLUMN].astype(str).to_numpy()
        checks.append((status != FINISHED, f"run did not finish ({STATUS_COLUMN} is not {FINISHED})"))
    for column, v in values.items():
        checks.append((np.isnan(v), f"{column} is NaN or not a number"))
        checks.append((np.isinf(v), f"{column} is infinite"))
        if positive:
            checks.append((v <= 0, f"{column} is not positive"))
    return checks


def _reasons(checks: list[tuple[np.ndarray, str]], bad: np.ndarray) -> np.ndarray:
    """The first failing check's reason for each excluded row."""
    reasons = np.select([m[bad] for m, _ in checks], [r for _, r in checks], default="")
    return reasons.astype(object)


def _no_rows_message(df: pd.DataFrame, checks: list[tuple[np.ndarray, str]]) -> str:
    if len(df) == 0:
        return "the DataFrame has no rows"
    counts = Counter(_reasons(checks, np.ones(len(df), dtype=bool)))
    summary = "; ".join(f"{reason}: {count} rows" for reason, count in counts.most_common())
    return f"no usable rows: all {len(df)} rows were excluded ({summary})"
