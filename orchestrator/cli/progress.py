"""Live progress of a launch (rich): runs done / running / failed, elapsed and ETA; and the end-of-launch report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text
from rich.table import Table

from orchestrator.records import FINISHED, PRUNED, RunResult, RunSpec

MAX_TABLE_ROWS = 25
SHOWN_METRICS = ("val_loss", "loss", "train_loss", "wall_s")


class BudgetColumn(ProgressColumn):
    """Budget spent / budget (e.g. 12.5/60 runs, 0.031/0.05 gpu_hours), for sweeps whose run count is not known."""

    def render(self, task: Any) -> Text:
        return Text(f"{task.completed:.4g}/{task.total:.4g}")


class ProgressDisplay:
    """Listens to scheduler events and keeps a progress bar up to date."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.task: Any = None
        self.running = 0
        self.failed = 0
        self.finished = 0
        # Live sums over ended runs: energy where measured, GPU-hours, cost, carbon.
        self.totals = {"energy_j": 0.0, "gpu_hours": 0.0, "cost_usd": 0.0, "co2_g": 0.0}
        # Which totals some run actually reported: the others show n/a, never 0.
        self.measured: set[str] = set()
        self.pruned = 0
        # The budget unit the bar counts (a closed-loop sweep); None: the bar counts runs.
        self.unit: str | None = None

    def on_plan(self, plan: Any, skipped: int, skipped_failed: int) -> None:
        if plan.closed_loop:
            self._on_search(plan, skipped)
            return
        todo = len(plan.runs) - skipped
        self.console.print(f"[bold]{plan.name}[/]: {len(plan.runs)} runs planned ({plan.kind}), "
                           f"{skipped - skipped_failed} already finished, {todo} to run")
        if skipped_failed:
            self.console.print(f"  {skipped_failed} runs failed in an earlier launch and are skipped; "
                               "--rerun-failed runs them again", style="yellow")
        for dropped in plan.dropped:
            self.console.print(f"  dropped {dropped.point}: {dropped.reason}", style="yellow")
        if todo:
            self.task = self.progress.add_task(plan.name, total=todo, counts=self._counts())
            self.progress.start()

    def _on_search(self, plan: Any, told: int) -> None:
        """A closed-loop sweep: no count is known up front, so the bar counts its budget (the first unit given)."""
        spec = plan.adaptive
        unit, limit = next(iter(spec.budget.items()))
        limits = ", ".join(f"{v:g} {u}" for u, v in spec.budget.items())
        self.console.print(f"[bold]{plan.name}[/]: adaptive sweep (goal {spec.goal}), budget {limits}, up to "
                           f"{spec.in_flight if plan.section.get('in_flight') else 'one per executor'} runs in flight"
                           + (f"; {told} runs ended in earlier launches count against it" if told else ""))
        self.unit = unit
        self.task = self.progress.add_task(f"{plan.name} ({unit})", total=limit, counts=self._counts())
        self.progress.columns = tuple(BudgetColumn() if isinstance(c, MofNCompleteColumn) else c
                                      for c in self.progress.columns)
        self.progress.start()

    def on_budget(self, state: Any, ended: int) -> None:
        """Budget spent by ended runs (and the runs in flight's predicted share) after a run ended."""
        if self.task is not None:
            self.progress.update(self.task, completed=min(state.spent, state.limit), total=state.limit,
                                 counts=self._counts())

    def _counts(self) -> str:
        shown = {key: (f"{value:.3g}" if key in self.measured else "n/a") for key, value in self.totals.items()}
        pruned = f" [yellow]{self.pruned} pruned[/]" if self.pruned else ""
        return (f"[green]{self.finished} done[/]{pruned} [cyan]{self.running} running[/] [red]{self.failed} failed[/] "
                f"| energy {shown['energy_j']} J, {shown['gpu_hours']} GPU-h, ${shown['cost_usd']}, "
                f"{shown['co2_g']} gCO2")

    def _update(self, advance: int = 0) -> None:
        if self.task is not None:
            self.progress.update(self.task, advance=advance, counts=self._counts())

    def on_start(self, spec: RunSpec, where: dict[str, Any]) -> None:
        self.running += 1
        self._update()

    def on_requeue(self, spec: RunSpec) -> None:
        self.running -= 1
        self._update()

    def on_retry(self, spec: RunSpec, failed: RunResult) -> None:
        self.running -= 1
        self.console.print(f"  retrying {spec.name} (attempt {spec.attempt + 1}): {failed.error}", style="yellow")
        self._update()

    def on_end(self, result: RunResult) -> None:
        self.running = max(self.running - 1, 0)
        for key in self.totals:
            value = result.metrics.get(key)
            if value is not None and value == value:
                self.totals[key] += value
                self.measured.add(key)
        if result.status in (FINISHED, PRUNED):
            self.finished += 1
            self.pruned += result.status == PRUNED
        else:
            self.failed += 1
        self._update(advance=0 if self.unit else 1)

    def stop(self) -> None:
        self.progress.stop()


def ui_command(uri: str) -> str:
    """The command that opens the MLflow UI on this tracking store (loopback only)."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        uri = "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def runs_link(base: str, experiment_id: str | None) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def _metric_cell(result: RunResult) -> str:
    shown = [f"{k}={result.metrics[k]:.4g}" for k in SHOWN_METRICS if k in result.metrics]
    return "  ".join(shown)


def _totals_line(summary: Any) -> str:
    """Energy, GPU time, cost and carbon of this launch's finished runs; unmeasured energy is said, never shown as 0."""
    from orchestrator.energy.recost import sweep_totals

    totals = sweep_totals(r.metrics for r in summary.results.values() if r.status in (FINISHED, PRUNED))
    energy = totals.get("total_energy_j")
    parts = [f"energy {energy / 3.6e6:.4g} kWh" if energy is not None else "energy unavailable",
             f"{totals.get('total_gpu_hours', 0.0):.4g} GPU-hours"]
    if "total_cost_usd" in totals:
        parts.append(f"${totals['total_cost_usd']:.4g}")
    if "total_co2_g" in totals:
        parts.append(f"{totals['total_co2_g']:.4g} gCO2")
    if totals["runs_energy_unavailable"]:
        reasons = {r.tags.get("energy_unavailable_reason", "") for r in summary.results.values()} - {""}
        parts.append(f"({int(totals['runs_energy_unavailable'])} runs without energy: "
                     f"{'; '.join(sorted(reasons))[:160] or 'see the energy_unavailable_reason tag'})")
    what = "finished and pruned runs" if summary.count(PRUNED) else "finished runs"
    return f"Cost of {what}: " + ", ".join(parts)


def report(console: Console, summary: Any) -> None:
    """Table of the launch's runs (failed first), counts, and how to look at them in MLflow."""
    order = {key: i for i, key in enumerate(summary.names)}
    results = sorted(summary.results.values(), key=lambda r: (r.status in (FINISHED, PRUNED), order.get(r.run_key, 0)))
    if results:
        table = Table(title=f"{summary.sweep}: this launch")
        for column in ("run", "status", "metrics", "error"):
            table.add_column(column, overflow="fold")
        for result in results[:MAX_TABLE_ROWS]:
            style = {FINISHED: "green", PRUNED: "yellow"}.get(result.status, "red")
            table.add_row(summary.names.get(result.run_key, result.run_key), f"[{style}]{result.status}[/]",
                          _metric_cell(result), result.error or "")
        console.print(table)
        if len(results) > MAX_TABLE_ROWS:
            console.print(f"... and {len(results) - MAX_TABLE_ROWS} more runs")
    pruned = f"{summary.count(PRUNED)} pruned (stopped early), " if summary.count(PRUNED) else ""
    console.print(f"{summary.count('FINISHED')} finished, {pruned}{summary.count('FAILED')} failed, "
                  f"{summary.count('KILLED')} killed, {summary.skipped} skipped (done in an earlier launch) "
                  f"in {summary.wall_s:.1f} s")
    console.print(_totals_line(summary))
    if summary.budget is not None:
        b = summary.budget
        console.print(f"Budget: {b.spent:.4g} of {b.limit:.4g} {b.unit} spent"
                      + (f" (this launch found it spent; raise sweep.budget.{b.unit} to go on)" if not results else ""))
    for refused in summary.refused[:5]:
        console.print(f"not run: {refused}", style="yellow")
    for line in summary.analysis_summary:
        console.print(line, soft_wrap=True, highlight=False)
    for warning in summary.analysis_warnings:
        console.print(f"analysis: {warning}", style="yellow")
    for error in summary.tracking_errors[:5]:
        console.print(f"tracking error: {error}", style="red")
    view = getattr(summary, "view_link", None)
    if summary.tracking_uri.startswith(("http://", "https://")):
        base = summary.tracking_uri.rstrip("/")
        console.print(f"Open in MLflow: {f'{base}/{view}' if view else runs_link(base, summary.experiment_id)}",
                      soft_wrap=True)
    else:
        base = "http://127.0.0.1:5000"
        console.print(f"Open the MLflow UI:  {ui_command(summary.tracking_uri)}", soft_wrap=True)
        console.print(f"then browse to       {f'{base}/{view}' if view else runs_link(base, summary.experiment_id)}",
                      soft_wrap=True)
    if view:
        console.print("(the sweep's saved view: its runs with the swept parameters, the primary metric and cost as "
                      "columns; the Chart toggle shows parallel coordinates, cost against the metric, the curves)",
                      highlight=False)
    if summary.parent_run_id and (summary.analysis_summary or summary.analysis_warnings):
        launch = f"{base}/#/experiments/{summary.experiment_id}/runs/{summary.parent_run_id}"
        console.print(f"This launch (its notes; plots, tables and report.html under Artifacts): "
                      f"{launch}?workflowType=machine_learning", soft_wrap=True, highlight=False)
