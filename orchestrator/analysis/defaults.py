"""What every launch reports when its sweep has no `analysis:` section, from the job's primary metric.

A job config names its primary metric (`_metric_: val_loss`, `_mode_: min`). The default analysis is then:
- the frontier of cost against that metric: cost is `cost_usd`, else `gpu_hours`, else `wall_s` (the first that is
  positive on some run: on a machine without GPUs runs cost $0 and 0 GPU-hours, and time is what they spent);
- a scaling fit where the data can support one (only for a metric to minimise, a loss): L(N, D) (chinchilla) when
  `n_params` and `tokens` each take at least 3 values over at least 10 runs (5 parameters need more points than
  that); else a power law in `flops` when it takes at least 5 values. Otherwise the fit is skipped, and the reason is
  one of the launch's analysis warnings.
A sweep's own `analysis:` section replaces all of this.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

COST_COLUMNS = ("cost_usd", "gpu_hours", "wall_s")
# A chinchilla fit has 5 parameters: at least this many runs, with at least MIN_VALUES values of N and of D.
MIN_LAW_RUNS, MIN_VALUES = 10, 3
# A power law in compute has 3: at least this many values of flops.
MIN_FLOPS_VALUES = 5


def default_analysis(df: pd.DataFrame, metric: str, mode: str) -> tuple[dict[str, Any], list[str]]:
    """The `analysis:` section to run on `df` (a sweep's runs, `load_sweep(...).runs`), and why parts were left out."""
    if metric not in df.columns or not df[metric].notna().any():
        return {}, [f"default analysis skipped: no finished run logged the job's metric {metric!r} (job._metric_)"]
    spec: dict[str, Any] = {}
    notes: list[str] = []
    cost = next((c for c in COST_COLUMNS if c in df.columns and (pd.to_numeric(df[c], errors="coerce") > 0).any()),
                None)
    if cost is None:
        notes.append(f"frontier skipped: no run has a positive {', '.join(COST_COLUMNS)}")
    else:
        spec["frontiers"] = [{"objectives": {cost: "min", metric: mode}}]
    if mode == "min":
        fit, why = _fit(df, metric)
        if fit is not None:
            spec["fits"] = [fit]
        elif why:
            notes.append(why)
    return spec, notes


def _fit(df: pd.DataFrame, metric: str) -> tuple[dict[str, Any] | None, str | None]:
    rows = df[df[metric].notna()]
    if {"n_params", "tokens"} <= set(rows.columns):
        n_values, d_values = rows["n_params"].nunique(), rows["tokens"].nunique()
        if len(rows) >= MIN_LAW_RUNS and n_values >= MIN_VALUES and d_values >= MIN_VALUES:
            return {"name": "law", "form": "chinchilla", "n": "n_params", "d": "tokens", "loss": metric,
                    "bootstrap": 200}, None
        if n_values > 1 or d_values > 1:
            return None, (f"scaling fit skipped: L(N, D) has 5 parameters; it needs {MIN_LAW_RUNS} runs with "
                          f"{MIN_VALUES} values each of n_params and tokens, here {len(rows)} runs with {n_values} "
                          f"and {d_values}")
    if "flops" in rows.columns and rows["flops"].nunique() > 1:
        if rows["flops"].nunique() >= MIN_FLOPS_VALUES:
            return {"name": "compute", "form": "power", "x": "flops", "y": metric, "bootstrap": 200}, None
        return None, (f"scaling fit skipped: a power law in flops needs {MIN_FLOPS_VALUES} values of flops, here "
                      f"{rows['flops'].nunique()}")
    return None, None
