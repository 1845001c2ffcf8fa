"""The report's sections about the swept parameters: parallel coordinates of every run, and which parameters matter."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from pandas.api.types import is_numeric_dtype

from orchestrator.analysis.errors import AnalysisInputError
from orchestrator.report.page import TITLES, Section, figure, notes, number, skipped, table
from orchestrator.tracking.frames import IDENTITY

if TYPE_CHECKING:
    from orchestrator.report.build import Inputs

# Axes of a parallel-coordinates plot past which it is unreadable: the first ones (swept first) are drawn.
MAX_AXES = 12


def swept_columns(runs: pd.DataFrame, metric: str) -> tuple[str, ...]:
    """The parameters that vary across the runs: every `sweep.<path>` column (how a run's swept numbers are logged),
    and text params (an optimizer's name, say), run identity aside."""
    return tuple(str(c) for c in runs.columns
                 if c not in IDENTITY and c != metric and runs[c].nunique(dropna=True) > 1
                 and (str(c).startswith("sweep.") or not is_numeric_dtype(runs[c])))


def parallel_section(inputs: Inputs) -> Section:
    from orchestrator.analysis.plots import png_bytes
    from orchestrator.analysis.plots.params import plot_parallel_coordinates

    key, title = "parallel", TITLES["parallel"]
    usable, why = _usable(inputs)
    if why:
        return skipped(key, title, why)
    if len(usable) < 2:
        return skipped(key, title, f"{len(usable)} finished run with {inputs.metric}: nothing to compare")
    columns = list(inputs.swept[:MAX_AXES])
    png = png_bytes(plot_parallel_coordinates(usable, columns, inputs.metric, inputs.mode))
    lead = (f"{len(usable)} finished runs, one line each through the {len(columns)} swept parameters and "
            f"{inputs.metric}; colour follows {inputs.metric}, the best run is red. Each axis spans its own range "
            "(log where it spans more than two decades).")
    more = [f"{len(inputs.swept) - MAX_AXES} more swept parameters not drawn."] if len(inputs.swept) > MAX_AXES else []
    return Section(key, title, notes([lead, *more]) + figure(png, "parallel coordinates"),
                   {"columns": columns, "n_runs": len(usable)})


def importance_section(inputs: Inputs) -> Section:
    from orchestrator.analysis.importance import parameter_importance
    from orchestrator.analysis.plots import png_bytes
    from orchestrator.analysis.plots.params import plot_importance

    key, title = "importance", TITLES["importance"]
    usable, why = _usable(inputs)
    if why:
        return skipped(key, title, why)
    try:
        result = parameter_importance(usable, inputs.swept, inputs.metric, seed=inputs.seed)
    except AnalysisInputError as err:
        return skipped(key, title, str(err))
    except ImportError as err:
        return skipped(key, title, f"scikit-learn is not importable ({err}); it ships with MLflow, or "
                                   "`pip install scikit-learn`")
    rows = [{**r, "parameter": str(r["parameter"])} for r in result.table.to_dict("records")]
    lead = (f"A random forest ({result.n_runs} runs) learns {inputs.metric} from the swept parameters; a parameter's "
            f"importance is how much R² drops when its values are shuffled ({result.n_repeats} shuffles, mean ± std)."
            f" Out-of-bag R² of the forest: {number(result.oob_r2)}.")
    if result.n_sampled < result.n_runs:
        lead += (f" Each tree learns from a sample of {result.n_sampled} runs and each shuffle is scored on "
                 f"{result.n_sampled}, so the cost does not grow with the sweep.")
    body = notes([lead]) + figure(png_bytes(plot_importance(result)), "parameter importance")
    body += table(rows, ["rank", "parameter", "importance", "importance_std"], keys="parameter")
    data = {"method": "permutation importance (R^2) of a random forest", "oob_r2": result.oob_r2,
            "n_runs": result.n_runs, "n_sampled": result.n_sampled, "n_repeats": result.n_repeats,
            "seed": result.seed, "importances": rows}
    return Section(key, title, body + notes(result.warnings, "warning"), data)


def _usable(inputs: Inputs) -> tuple[pd.DataFrame, str | None]:
    """The finished runs with a value of the metric, or why there is nothing to draw."""
    runs, metric = inputs.runs, inputs.metric
    if metric not in runs or not runs[metric].notna().any():
        return runs, f"no finished run logged {metric!r}"
    if not inputs.swept:
        return runs, "no parameter varies across the finished runs"
    return runs[runs[metric].notna()], None
