"""The report's sections about the runs themselves: summary and totals, energy and cost, failures and their causes.

Totals are over every child run of every launch (what the sweep spent, failed runs and reruns included); a total
no run measured is shown as unavailable with the runs' reason, never as 0.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import pandas as pd

from orchestrator.records import FINISHED, KILLED, PRUNED
from orchestrator.report.page import TITLES, Section, cell, details, esc, facts, figure, notes, number, skipped, table

if TYPE_CHECKING:
    from orchestrator.report.build import Inputs

# What a run spent, as logged (energy/cost.py), and the unit each is shown in.
SPEND = {"wall_s": "s", "gpu_hours": "GPU-h", "energy_kwh": "kWh", "cost_gpu_usd": "$", "cost_energy_usd": "$",
         "cost_usd": "$", "co2_g": "g"}
STATUSES = (FINISHED, "FAILED", KILLED, PRUNED, "RUNNING", "SCHEDULED")
# Per-run rows shown in the energy table (the costliest first) and lines of a traceback shown per failure.
MAX_RUN_ROWS, TRACEBACK_LINES = 500, 25


def child_runs(inputs: Inputs) -> pd.DataFrame:
    """Every child run with its status as the orchestrator sees it (PRUNED, not KILLED, for a run stopped early), its
    launch's name, the tags that explain it, and energy in kWh."""
    runs = inputs.sweep.all_runs
    tags = inputs.sweep.tags.set_index("run_id")
    for tag in ("cause", "error", "traceback", "attempt", "energy_unavailable_reason"):
        runs[f"tag.{tag}"] = runs["run_id"].map(tags[tag]) if tag in tags else None
    pruned = runs["run_id"].map(tags["status"] if "status" in tags else pd.Series(dtype=object)) == PRUNED
    runs["status"] = runs["status"].where(~(pruned & (runs["status"] == KILLED)), PRUNED)
    launches = inputs.sweep.parents.set_index("parent_run_id")["run_name"]
    runs["launch"] = runs["parent_run_id"].map(launches)
    runs["energy_kwh"] = runs["energy_j"] / 3.6e6 if "energy_j" in runs else float("nan")
    return runs


def spend_totals(runs: pd.DataFrame) -> dict[str, Any]:
    """Per SPEND column: its sum over the runs that logged it (None where none did), and how many did."""
    totals: dict[str, Any] = {}
    for column in SPEND:
        values = pd.to_numeric(runs[column], errors="coerce") if column in runs else pd.Series(dtype=float)
        totals[column] = float(values.sum()) if values.notna().any() else None
        totals[f"n_runs_{column}"] = int(values.notna().sum())
    return totals


# -- summary ----------------------------------------------------------------------------------------------------------
def summary_section(inputs: Inputs, children: pd.DataFrame) -> Section:
    sweep, runs = inputs.sweep, inputs.runs
    by_status = {s: int(n) for s, n in Counter(children["status"]).items()}
    totals = spend_totals(children)
    launches = _launches(inputs)
    launch_wall = pd.to_numeric(sweep.parents.get("wall_s"), errors="coerce") if "wall_s" in sweep.parents else None
    data: dict[str, Any] = {
        "n_launches": len(launches), "n_run_keys": int(children["run_key"].nunique()), "n_child_runs": len(children),
        "n_finished_run_keys": len(runs), "child_runs_by_status": by_status, "totals": totals,
        "launch_wall_s": float(launch_wall.sum()) if launch_wall is not None and launch_wall.notna().any() else None,
        "launches": launches, "best": _best(inputs)}
    shown = {"launches": data["n_launches"], "run keys": data["n_run_keys"],
             "run keys finished": data["n_finished_run_keys"], "child runs (all launches)": data["n_child_runs"],
             **{f"child runs {s}": by_status[s] for s in STATUSES if s in by_status},
             "launch wall time (s)": data["launch_wall_s"], "run time, summed (s)": totals["wall_s"],
             "GPU-hours": totals["gpu_hours"], "energy (kWh)": totals["energy_kwh"], "cost ($)": totals["cost_usd"],
             "CO2 (g)": totals["co2_g"]}
    body = facts(shown, "summary") + _unavailable_note(children, totals)
    if data["best"]:
        best = data["best"]
        body += notes([f"Best {inputs.metric} ({inputs.mode}): {number(best['value'])} by {best['run_name']}."])
    columns = ["run_name", "status", "start_time", "wall_s", "runs_finished", "runs_failed", "runs_killed",
               "runs_pruned", "total_cost_usd", "total_gpu_hours"] + (["this_launch"] if inputs.launch_run_id else [])
    body += "<h3>Launches</h3>" + table(launches, [c for c in columns if any(c in r for r in launches)],
                                        keys="parent_run_id")
    return Section("summary", TITLES["summary"], body, data)


def _launches(inputs: Inputs) -> list[dict[str, Any]]:
    parents = inputs.sweep.parents
    rows = []
    for row in parents.to_dict("records"):
        row = {k: v for k, v in row.items() if k != "end_time"}
        row["start_time"] = str(row["start_time"])[:19]
        row["this_launch"] = "◀ this report" if row["parent_run_id"] == inputs.launch_run_id else ""
        rows.append(row)
    return rows


def _best(inputs: Inputs) -> dict[str, Any] | None:
    runs, metric = inputs.runs, inputs.metric
    if metric not in runs or not runs[metric].notna().any():
        return None
    at = runs[metric].idxmin() if inputs.mode == "min" else runs[metric].idxmax()
    return {"run_name": runs.at[at, "run_name"], "run_id": runs.at[at, "run_id"], "value": runs.at[at, metric]}


def _unavailable_note(children: pd.DataFrame, totals: dict[str, Any]) -> str:
    """Why energy (and what follows from it) is missing: the runs' own reasons, most common first."""
    if totals["n_runs_energy_kwh"] == len(children):
        return ""
    lacking = children[children["energy_kwh"].isna()]
    reasons = Counter(str(r) for r in lacking["tag.energy_unavailable_reason"].dropna())
    why = "; ".join(f"{reason} ({n} runs)" for reason, n in reasons.most_common(3)) or "no reason recorded"
    return notes([f"Energy was not measured for {len(lacking)} of {len(children)} runs: {why}. Their energy, energy "
                  "cost and CO2 are unavailable, not 0, and left out of the totals."], "warning")


# -- energy and cost --------------------------------------------------------------------------------------------------
def energy_section(children: pd.DataFrame) -> Section:
    from orchestrator.analysis.plots import png_bytes
    from orchestrator.analysis.plots.cost import plot_cost_breakdown

    key, title = "energy", TITLES["energy"]
    totals = spend_totals(children)
    money = [c for c in ("cost_gpu_usd", "cost_energy_usd", "cost_usd", "gpu_hours") if totals[c] is not None]
    if not money and totals["energy_kwh"] is None:
        return skipped(key, title, "no run logged a cost or energy (the cost model was off and no meter worked)")
    columns = [c for c in SPEND if totals[c] is not None]
    order = children.sort_values(money[0] if money else "energy_kwh", ascending=False, na_position="last")
    rows = order.head(MAX_RUN_ROWS).to_dict("records")
    per_run = [{"run_id": r["run_id"], "run_name": r["run_name"], "status": r["status"],
                **{c: r.get(c) for c in columns}} for r in rows]
    split = ""
    if totals["cost_gpu_usd"] is not None or totals["cost_energy_usd"] is not None:
        split = notes([f"Of the cost: GPU time {_money(totals['cost_gpu_usd'])}, energy "
                       f"{_money(totals['cost_energy_usd'])} (cost_usd is the cost model's mode: one or their sum)."])
    by_status = {str(s): spend_totals(part) for s, part in children.groupby("status")}
    status_rows = [{"status": s, **{c: t[c] for c in columns}} for s, t in by_status.items()]
    split += "<h3>By status</h3>" + table(status_rows, ["status", *columns], keys="status")
    totals_row = "<tr><th>total</th><td></td>" + "".join(cell(totals[c], f"total.{c}") for c in columns) + "</tr>"
    headers = {c: f"{c} ({SPEND[c]})" for c in columns}
    runs_table = table(per_run, ["run_name", "status", *columns], headers=headers, keys="run_id")
    runs_table = runs_table.replace("<tbody>", f"<tbody>{totals_row}", 1)
    more = notes([f"{MAX_RUN_ROWS} costliest of {len(children)} runs shown."]) if len(children) > MAX_RUN_ROWS else ""
    body = facts({f"{c} ({SPEND[c]})": totals[c] for c in columns}, "energy") + split + _unavailable_note(children,
                                                                                                          totals)
    if money:
        body += figure(png_bytes(plot_cost_breakdown(children)), "cost per run")
    body += f'<h3>Per run, every launch</h3><div class="scroll">{runs_table}</div>{more}'
    return Section(key, title, body, {"totals": totals, "by_status": by_status, "runs": per_run})


def _money(value: float | None) -> str:
    return "unavailable" if value is None else f"${number(value)}"


# -- failures ---------------------------------------------------------------------------------------------------------
def failures_section(inputs: Inputs, children: pd.DataFrame) -> Section:
    key, title = "failures", TITLES["failures"]
    failed = children[children["status"] != FINISHED]
    if not len(failed):
        return skipped(key, title, f"none: all {len(children)} child runs finished")
    finished_keys = set(inputs.runs["run_key"].dropna())
    rows = [{"run_id": r["run_id"], "run_name": r["run_name"], "run_key": r["run_key"], "status": r["status"],
             "cause": r["tag.cause"], "error": _stripped(r["tag.error"]), "attempt": r["tag.attempt"],
             "launch": r["launch"], "finished_in_another_run": r["run_key"] in finished_keys,
             "traceback": r["tag.traceback"]} for r in failed.to_dict("records")]
    causes = Counter(str(r["cause"] or "unknown") for r in rows)
    lead = (f"{len(rows)} of {len(children)} child runs did not finish; by cause: "
            + ", ".join(f"{cause} {n}" for cause, n in causes.most_common()) + ".")
    columns = ["run_name", "status", "cause", "error", "attempt", "launch", "finished_in_another_run"]
    body = notes([lead]) + table(rows, columns, keys="run_id", css="failures")
    body += "".join(details(f"traceback of {r['run_name']}", f"<pre>{esc(_tail(r['traceback']))}</pre>")
                    for r in rows if isinstance(r["traceback"], str) and r["traceback"])
    data = {"by_cause": dict(causes), "runs": [{k: v for k, v in r.items() if k != "traceback"} for r in rows]}
    return Section(key, title, body, data)


def _stripped(text: Any) -> Any:
    return text.strip() if isinstance(text, str) and text.strip() else None


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-TRACEBACK_LINES:])
