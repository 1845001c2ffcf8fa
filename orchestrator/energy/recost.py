"""Cost and carbon of a sweep's finished runs, recomputed from what MLflow stored, under another cost model.

Nothing is rerun: each FINISHED child run's stored `wall_s`, `gpus_held`, `energy_j` and tag `gpu_name` go through
`cost_metrics`, the function the live path uses. Each run's new values are logged at step (its cost metrics' highest
step + 1), so MLflow shows them as latest and keeps every earlier costing as history. A cost metric the run had but the
new model no longer yields (e.g. `cost_usd` of a run without energy under mode=energy) is logged as NaN, so no stale
number is left looking current. The newest parent run gets the sweep's totals the same way, and the cost factors as
tags `recost.cost.*` plus `recost.at`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from orchestrator.energy.cost import CostModel, cost_metrics, cost_model_dirs, cost_model_path, load_cost_model
from orchestrator.errors import ConfigError, TrackingError
from orchestrator.records import FINISHED

# Everything `compute_cost` can return (mode both, every input present).
COST_METRICS = ("gpu_seconds", "gpu_hours", "cost_gpu_usd", "cost_energy_usd", "co2_g", "cost_usd")
# What `sweep_totals` returns; the counts are always there, a sum only where some run has the quantity.
TOTAL_METRICS = ("total_cost_usd", "total_co2_g", "total_gpu_hours", "total_energy_j", "runs_energy_unavailable",
                 "runs_cost_unavailable")
_SUMS = {"total_cost_usd": "cost_usd", "total_co2_g": "co2_g", "total_gpu_hours": "gpu_hours",
         "total_energy_j": "energy_j"}
TAG_PREFIX = "recost."
_SCALAR_FACTORS = ("default_usd_per_gpu_hour", "usd_per_kwh", "pue", "grid_co2_g_per_kwh")
_PRICE = "usd_per_gpu_hour."
ALLOWED_SETTINGS = (*_SCALAR_FACTORS, "mode", f"{_PRICE}<GPU model>")


def _present(value: Any) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def sweep_totals(runs_metrics: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Totals over runs' metrics (pass FINISHED runs only): a sum is absent, never 0, when no run has the quantity;
    `runs_energy_unavailable` and `runs_cost_unavailable` count the runs a sum left out."""
    totals: dict[str, float] = {"runs_energy_unavailable": 0.0, "runs_cost_unavailable": 0.0}
    for metrics in runs_metrics:
        for total, key in _SUMS.items():
            if _present(metrics.get(key)):
                totals[total] = totals.get(total, 0.0) + float(metrics[key])
        totals["runs_energy_unavailable"] += not _present(metrics.get("energy_j"))
        totals["runs_cost_unavailable"] += not _present(metrics.get("cost_usd"))
    return totals


# -- choosing the cost model ----------------------------------------------------------------------------------------
def resolve_cost_model(name_or_path: str, settings: Sequence[str] = ()) -> CostModel:
    """`load_cost_model`, with a list of the known names when there is no such model, then `--set key=value`s."""
    is_path = Path(name_or_path).suffix in (".yaml", ".yml")
    if not is_path and cost_model_path(name_or_path) is None:
        known = ", ".join(sorted({p.stem for d in cost_model_dirs() for p in d.glob("*.yaml")}))
        raise ConfigError("--cost", f"no cost model named {name_or_path!r}; one of {known}, or a path to a .yaml file")
    return override_model(load_cost_model(name_or_path), settings)


def override_model(model: CostModel, settings: Sequence[str]) -> CostModel:
    """A copy of `model` with each "key=value" applied; CostModel validates the result."""
    values: dict[str, Any] = {f.name: getattr(model, f.name) for f in fields(model)}
    prices = dict(model.usd_per_gpu_hour)
    for setting in settings:
        key, sep, text = (part.strip() for part in setting.partition("="))
        if not sep or not key:
            raise ConfigError("--set", f"expected key=value, got {setting!r}")
        if key == "mode":
            values["mode"] = text
        elif key in _SCALAR_FACTORS:
            values[key] = _number(key, text)
        elif key.startswith(_PRICE) and key[len(_PRICE):].strip():
            gpu = key[len(_PRICE):].strip()
            same = [k for k in prices if k.casefold() == gpu.casefold()]
            prices[same[0] if same else gpu] = _number(key, text)
        else:
            raise ConfigError(f"--set {key}", f"unknown cost factor; allowed: {', '.join(ALLOWED_SETTINGS)}")
    return CostModel.from_dict({**values, "usd_per_gpu_hour": prices})


def _number(key: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--set {key}", f"expected a number, got {text!r}") from None


# -- recosting a sweep ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunRecost:
    """One FINISHED child run: its cost metrics as stored, and as the new model computes them."""

    run_id: str
    run_key: str
    before: Mapping[str, float]
    after: Mapping[str, float]


@dataclass(frozen=True)
class SweepRecost:
    """What `recost_runs` computed (and, unless dry_run, wrote)."""

    sweep: str
    model: CostModel
    runs: tuple[RunRecost, ...]
    # Child runs left alone because they are not FINISHED.
    not_finished: int
    # The sweep's newest parent run, which gets the totals and factors; None if the sweep has none.
    parent_run_id: str | None
    parent_status: str | None
    totals_before: Mapping[str, float]
    totals_after: Mapping[str, float]
    written: bool


def recost_runs(store: Any, model: CostModel, dry_run: bool = False) -> SweepRecost:
    """Recompute (and unless dry_run, log) the cost metrics of every FINISHED child of `store`'s sweep."""
    if _guard(store, "looking up the sweep", store.experiment_id) is None:
        raise ConfigError("sweep", f"no sweep named {store.experiment!r} in {store.uri}")
    children = _guard(store, "reading the sweep's runs", store.child_runs)
    finished = [r for r in children if r.info.status == FINISHED]
    runs = tuple(_recost_one(model, r) for r in finished)
    parent = _newest_parent(store)
    before = sweep_totals(r.data.metrics for r in finished)
    after = sweep_totals({**_inputs(r.data.metrics), **x.after} for r, x in zip(finished, runs))
    if not dry_run:
        # The launches whose runs change no longer match their index files: readers read those runs from MLflow.
        for launch in sorted({r.data.tags.get("mlflow.parentRunId") for r in finished} - {None}):
            _guard(store, f"marking the index of launch {launch} stale", store.index_changed, launch)
        for run, recost in zip(finished, runs):
            _log_latest(store, run, recost.after, COST_METRICS)
        if parent is not None:
            _log_latest(store, parent, after, TOTAL_METRICS)
            _set_factor_tags(store, parent, model)
    return SweepRecost(store.experiment, model, runs, len(children) - len(finished),
                       parent.info.run_id if parent else None, parent.info.status if parent else None,
                       before, after, not dry_run)


def _costs(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k in COST_METRICS and _present(v)}


def _inputs(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in COST_METRICS and _present(v)}


def _recost_one(model: CostModel, run: Any) -> RunRecost:
    return RunRecost(run.info.run_id, run.data.tags.get("run_key", ""), _costs(run.data.metrics),
                     cost_metrics(model, _inputs(run.data.metrics), run.data.tags))


# -- MLflow writes at a chosen step, through the store ------------------------------------------------------------
def _newest_parent(store: Any) -> Any | None:
    found = _guard(store, "reading the sweep's parent runs", store.parent_runs, newest_first=True, max_results=1)
    return found[0] if found else None


def _log_latest(store: Any, run: Any, values: Mapping[str, float], keys: Sequence[str]) -> None:
    """`values` at one step past the highest of `keys` on the run; keys it had but `values` lacks become NaN."""
    had = [k for k in keys if k in run.data.metrics]
    step, now = _next_step(store, run.info.run_id, had), int(time.time() * 1000)
    metrics = {k: float(values.get(k, math.nan)) for k in keys if k in values or k in had}
    _guard(store, f"logging to run {run.info.run_id}", store.log, run.info.run_id, metrics=metrics, timestamp_ms=now,
           step=step)


def _next_step(store: Any, run_id: str, keys: Sequence[str]) -> int:
    """One past the highest step any of `keys` was logged at on the run (0 when it has none of them)."""
    history = (_guard(store, f"reading run {run_id}", store.metric_history, run_id, k) for k in keys)
    return 1 + max((m.step for metrics in history for m in metrics), default=-1)


def _set_factor_tags(store: Any, parent: Any, model: CostModel) -> None:
    run_id = parent.info.run_id
    tags = {f"{TAG_PREFIX}{k}": v for k, v in model.as_params().items()}
    tags[f"{TAG_PREFIX}at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for stale in (k for k in parent.data.tags if k.startswith(f"{TAG_PREFIX}cost.") and k not in tags):
        _guard(store, f"tagging run {run_id}", store.delete_tag, run_id, stale)
    _guard(store, f"tagging run {run_id}", store.log, run_id, tags=tags)


def _guard(store: Any, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call`, any failure a TrackingError saying what recost was doing; one the store already translated (an
    unreachable server, a refused write: it names the URI and the write) is passed on as it is."""
    try:
        return call(*args, **kwargs)
    except TrackingError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated at the boundary
        raise TrackingError(f"MLflow at {store.uri}, {what}: {exc}") from exc
