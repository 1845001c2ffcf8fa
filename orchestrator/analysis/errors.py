"""Errors raised when a DataFrame cannot be analysed as asked; all are `ValueError`s a user can act on."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class AnalysisInputError(OrchestratorError, ValueError):
    """The data handed to a fit or a frontier cannot be used as asked."""


class MissingColumnError(AnalysisInputError):
    """A column named in the call is not in the DataFrame."""

    def __init__(self, column: str, present: list[str]) -> None:
        self.column = column
        super().__init__(f"column {column!r} not found; the DataFrame has columns {present}")


class NoUsableRowsError(AnalysisInputError):
    """Every row was excluded (NaN, inf, non-positive values, or runs that did not finish)."""


class TooFewPointsError(AnalysisInputError):
    """Fewer usable rows (or compute budgets) than the fit needs."""

    def __init__(self, what: str, needed: int, usable: int, detail: str = "") -> None:
        self.needed = needed
        self.usable = usable
        suffix = f" ({detail})" if detail else ""
        super().__init__(f"{what} needs at least {needed} usable rows, got {usable}{suffix}")
