"""`build_html_report`: a sweep as one self-contained HTML page; `report_bytes`: the same, read from MLflow by name.

What is analysed: the sweep's `analysis:` section where one is given (its fits, IsoFLOP and frontiers), else the
default analysis of the primary metric (analysis/defaults.py: the frontier of cost against the metric, a scaling fit
where the runs support one); the cost-metric frontier is always drawn, and IsoFLOP curves wherever n_params and
flops are columns and the metric is a loss. Every section that the data cannot support says why in one line.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from orchestrator.report import laws, params, runs
from orchestrator.report.page import TITLES, Section, render, skipped

if TYPE_CHECKING:
    import pandas as pd

    from orchestrator.analysis.spec import AnalysisSpec
    from orchestrator.sweeps import Sweep

MODES = ("min", "max")


@dataclass(frozen=True, eq=False)
class Inputs:
    """What every section reads: the sweep, its finished runs, the metric, and what to analyse."""

    sweep: Sweep
    # The newest FINISHED run of each run_key (`sweep.runs`).
    runs: pd.DataFrame
    metric: str
    mode: str
    # The parameters that vary across the finished runs.
    swept: tuple[str, ...]
    # The fits, IsoFLOP analysis and frontiers to draw.
    spec: AnalysisSpec
    # Section key -> why the default analysis left that section out.
    notes: Mapping[str, str]
    launch_run_id: str | None
    seed: int


@dataclass(frozen=True, eq=False)
class HtmlReport:
    """A built report: the page, and its sections (each shown, or with the reason it is not)."""

    html: str
    sections: tuple[Section, ...]

    @property
    def skipped(self) -> dict[str, str]:
        """Section key -> why it is not shown."""
        return {s.key: s.reason for s in self.sections if s.reason is not None}


def build_html_report(sweep: Sweep, *, metric: str = "val_loss", mode: str = "min", cost: str | None = None,
                      analysis: Mapping[str, Any] | AnalysisSpec | None = None, launch_run_id: str | None = None,
                      seed: int = 0) -> str:
    """One self-contained HTML page (no network needed to open it) of `sweep`: summary and totals, the frontier of
    `cost` (default: cost_usd, else gpu_hours, else wall_s) against `metric`, scaling-law fits with intervals and
    extrapolation, IsoFLOP curves, parallel coordinates, parameter importance, energy and cost, failures.

    `analysis`: a sweep's `analysis:` section (mapping or AnalysisSpec) to draw instead of the default analysis.
    `launch_run_id`: the parent run the report is for, marked among the launches. The numbers shown are also in the
    page's `<script type="application/json" id="report-data">` block. Raises ConfigError for a bad `mode` or spec.
    """
    return build_report(sweep, metric=metric, mode=mode, cost=cost, analysis=analysis, launch_run_id=launch_run_id,
                        seed=seed).html


def build_report(sweep: Sweep, *, metric: str = "val_loss", mode: str = "min", cost: str | None = None,
                 analysis: Mapping[str, Any] | AnalysisSpec | None = None, launch_run_id: str | None = None,
                 seed: int = 0) -> HtmlReport:
    """`build_html_report`, with the sections kept apart from the page."""
    inputs = _inputs(sweep, metric, mode, cost, analysis, launch_run_id, seed)
    children = runs.child_runs(inputs)
    builders: dict[str, Callable[[], Section]] = {
        "summary": lambda: runs.summary_section(inputs, children),
        "frontier": lambda: laws.frontier_section(inputs),
        "fit": lambda: laws.fit_section(inputs),
        "isoflop": lambda: laws.isoflop_section(inputs),
        "parallel": lambda: params.parallel_section(inputs),
        "importance": lambda: params.importance_section(inputs),
        "energy": lambda: runs.energy_section(children),
        "failures": lambda: runs.failures_section(inputs, children),
    }
    sections = [_guarded(key, build) for key, build in builders.items()]
    data = {"sweep": sweep.name, "tracking_uri": sweep.tracking_uri, "metric": metric, "mode": mode,
            "launch_run_id": launch_run_id, "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "sections": {s.key: {"shown": s.shown, "reason": s.reason, "error": s.error} for s in sections},
            **{s.key: dict(s.data) for s in sections if s.shown}}
    subtitle = (f"{metric} ({mode}) · {len(inputs.runs)} finished run keys · generated "
                f"{data['generated_at'][:19].replace('T', ' ')} UTC · {sweep.tracking_uri}")
    return HtmlReport(render(f"Sweep report: {sweep.name}", subtitle, sections, data), tuple(sections))


def report_bytes(tracking_uri: str | None, sweep_name: str, metric: str = "val_loss", mode: str = "min", *,
                 analysis: Mapping[str, Any] | AnalysisSpec | None = None, launch_run_id: str | None = None,
                 cost: str | None = None, seed: int = 0) -> bytes:
    """`build_html_report(load_sweep(sweep_name, tracking_uri), ...)` as UTF-8 bytes, to log as `report.html`.

    Reads MLflow, writes nothing. Raises what `load_sweep` raises (SweepNotFoundError, ConfigError, TrackingError).
    """
    from orchestrator.sweeps import load_sweep

    sweep = load_sweep(sweep_name, tracking_uri)
    return build_html_report(sweep, metric=metric, mode=mode, cost=cost, analysis=analysis,
                             launch_run_id=launch_run_id, seed=seed).encode("utf-8")


def _guarded(key: str, build: Callable[[], Section]) -> Section:
    """A section, or, if building it raised, its place in the page saying so: one bad part never costs the rest."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - reported in the page, the other sections still drawn
        return skipped(key, TITLES[key], f"could not be built: {type(exc).__name__}: {exc}", error=True)


def _inputs(sweep: Sweep, metric: str, mode: str, cost: str | None, analysis: Any, launch_run_id: str | None,
            seed: int) -> Inputs:
    from orchestrator.errors import ConfigError

    if mode not in MODES:
        raise ConfigError("mode", f"must be 'min' or 'max', got {mode!r}")
    finished = sweep.runs
    spec, notes = _spec(finished, metric, mode, cost, analysis)
    return Inputs(sweep, finished, metric, mode, params.swept_columns(finished, metric), spec, notes, launch_run_id,
                  seed)


def _spec(finished: pd.DataFrame, metric: str, mode: str, cost: str | None,
          analysis: Any) -> tuple[AnalysisSpec, dict[str, str]]:
    """What to draw: the given `analysis:` section, else the default analysis; always the cost-metric frontier; and
    the IsoFLOP analysis where its columns exist. With why each part that is left out is."""
    from orchestrator.analysis.defaults import default_analysis
    from orchestrator.analysis.spec import AnalysisSpec, IsoFlopSpec, validate_analysis_spec

    given = validate_analysis_spec(analysis)
    default, default_notes = default_analysis(finished, metric, mode)
    if cost is not None:
        default["frontiers"] = [{"objectives": {cost: "min", metric: mode}}]
    default_spec = validate_analysis_spec(default)
    notes = _notes(default_notes, finished, metric, mode)
    fits = given.fits or default_spec.fits
    shown = {tuple(f.objectives.items()) for f in given.frontiers}
    frontiers = given.frontiers + tuple(f for f in default_spec.frontiers if tuple(f.objectives.items()) not in shown)
    isoflop = given.isoflop
    if isoflop is None and "isoflop" not in notes:
        isoflop = IsoFlopSpec({"n": "n_params", "flops": "flops", "loss": metric}, {"bootstrap": 200, "seed": 0})
    return AnalysisSpec(fits, isoflop, frontiers, given.power), notes


def _notes(default_notes: list[str], finished: pd.DataFrame, metric: str, mode: str) -> dict[str, str]:
    """Section key -> why it has nothing to draw, from the default analysis's notes and the runs' columns."""
    notes: dict[str, str] = {}
    if metric not in finished or not finished[metric].notna().any():
        notes["frontier"] = notes["fit"] = f"no finished run logged {metric!r}"
    for note in default_notes:
        for key in ("frontier", "fit"):
            if key in note:
                notes.setdefault(key, note)
    notes.setdefault("fit", "a scaling law needs n_params and tokens (or flops) that vary across the runs"
                            if mode == "min" else f"a scaling law is fitted to a loss; {metric} is maximised")
    missing = [c for c in ("n_params", "flops", metric) if c not in finished]
    if mode != "min":
        notes["isoflop"] = f"IsoFLOP curves are drawn for a loss; {metric} is maximised"
    elif missing:
        notes["isoflop"] = f"no IsoFLOP curves: the runs have no column {', '.join(map(repr, missing))}"
    return notes
