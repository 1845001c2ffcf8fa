"""The markdown notes MLflow shows as a run's or an experiment's description (`mlflow.note.content`).

- The experiment: what the sweep is, how to run it again, and a link to its latest launch.
- The launch's parent run: counts, totals, the analysis's headline (fits with intervals, the front as a table),
  warnings, and where its plots are.
- Each child run: its configuration when it is created; when its launch ends, where it stands against the front of
  the primary metric (on it, or dominated by which run).
Notes are built here as plain text (pure functions). At the end of a launch the driver makes them
(`launch.write_notes`) and the writer process writes them while the driver builds the report. A
child's standing is written for the runs of that launch only, its front first, then the best of the others, at most
MAX_STANDINGS of them: a launch costs at most that many writes after its last run, not one per run of the sweep; an
older run's note says where it stood when its launch ended.
"""

from __future__ import annotations

import math
import time
from typing import Any, Iterable, Mapping, Sequence

NOTE = "mlflow.note.content"
# Rows of the front shown in a launch's note, and children given their standing at the end of a launch.
FRONT_ROWS = 15
MAX_STANDINGS = 200
# A note stays well inside MLflow's tag value limit (8000 characters).
NOTE_MAX_CHARS = 7000


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "-"
    return str(value)


def _clip(text: str) -> str:
    return text if len(text) <= NOTE_MAX_CHARS else text[: NOTE_MAX_CHARS - 40] + "\n\n*(note shortened)*\n"


def run_link(experiment_id: str, run_id: str) -> str:
    """A link within the MLflow UI to a run, in its model-training views (MLflow 3.17 opens GenAI ones otherwise)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def child_config_note(name: str, job: Mapping[str, Any], resources: Mapping[str, Any],
                      varied: Sequence[str] = ()) -> str:
    """A child's note when it is created: its name and the values it runs with, the swept ones first."""
    flat = dict(_flatten(job, "job."))
    flat.update(_flatten({k: v for k, v in resources.items() if v is not None}, "resources."))
    swept = [p for p in varied if p in flat]
    rows = [f"| **{p}** | {_fmt(flat[p])} |" for p in swept]
    rows += [f"| {p} | {_fmt(v)} |" for p, v in flat.items() if p not in swept]
    return _clip(f"### {name}\n\n| setting | value |\n|---|---|\n" + "\n".join(rows) + "\n")


def spec_note(spec: Any) -> str:
    """`child_config_note` of a RunSpec: its job config with secrets masked, the resources it asks, swept first."""
    from orchestrator.masking import mask_secrets

    resources = {k: v for k, v in vars(spec.resources).items() if v is not None}
    return child_config_note(spec.name, mask_secrets(spec.job), resources, list(spec.varied))


def _flatten(config: Mapping[str, Any], prefix: str) -> Iterable[tuple[str, Any]]:
    for key, value in config.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def experiment_note(sweep: str, kind: str, job_target: str, varied: Sequence[str], primary: tuple[str, str] | None,
                    command: str | None, cwd: str | None, latest: str, latest_counts: str,
                    view_link: str | None = None) -> str:
    lines = [f"# {sweep}", "",
             f"A **{kind}** sweep of `{job_target}`" + (f" over {', '.join(f'`{v}`' for v in varied)}." if varied
                                                       else ", one run.")]
    if primary is not None:
        better = "lower" if primary[1] == "min" else "higher"
        lines.append(f"Primary metric: `{primary[0]}` ({better} is better).")
    if command:
        lines += ["", "Run it again (runs that finished are skipped; a larger sweep adds only what is new):", "",
                  "```", *([f"cd {cwd}"] if cwd else []), command, "```"]
    lines += ["", f"Latest launch: [{time.strftime('%Y-%m-%d %H:%M')}]({latest}): {latest_counts}."]
    if view_link:
        lines.append(f"The sweep's saved view: [columns and charts]({view_link}).")
    return _clip("\n".join(lines) + "\n")


def launch_note(sweep: str, counts: Mapping[str, int], wall_s: float, totals: Mapping[str, float],
                summary: Sequence[str], warnings: Sequence[str], front: Any, objectives: Mapping[str, str] | None,
                artifacts: Sequence[str], unstood: int = 0) -> str:
    """The launch's note; `front` is the DataFrame of the front's runs (or None), `objectives` its columns."""
    lines = [f"## Launch of {sweep}, {time.strftime('%Y-%m-%d %H:%M:%S')}", "",
             "| finished | failed | pruned | killed | skipped | wall time |", "|---|---|---|---|---|---|",
             f"| {counts.get('FINISHED', 0)} | {counts.get('FAILED', 0)} | {counts.get('PRUNED', 0)} | "
             f"{counts.get('KILLED', 0)} | {counts.get('skipped', 0)} | {wall_s:.1f} s |", ""]
    parts = [f"{totals['total_gpu_hours']:.4g} GPU-hours" if "total_gpu_hours" in totals else None,
             f"{totals['total_energy_kwh']:.4g} kWh" if "total_energy_kwh" in totals else None,
             f"${totals['total_cost_usd']:.4g}" if "total_cost_usd" in totals else None,
             f"{totals['total_co2_g']:.4g} gCO2" if "total_co2_g" in totals else None]
    if any(parts):
        lines += ["Totals of this launch's finished runs: " + ", ".join(p for p in parts if p) + ".", ""]
    if summary:
        lines += ["### Analysis", ""] + [f"- {line}" for line in summary] + [""]
    if front is not None and objectives:
        columns = ["run_name", *objectives]
        lines += [f"Front of {' vs '.join(objectives)} (all runs of the sweep):", "",
                  "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for _, row in front.head(FRONT_ROWS).iterrows():
            lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
        if len(front) > FRONT_ROWS:
            lines.append(f"\n... and {len(front) - FRONT_ROWS} more (analysis/ CSV files).")
        lines.append("")
    if warnings:
        lines += ["**Warnings**", ""] + [f"- {w}" for w in warnings] + [""]
    if artifacts:
        lines += ["Plots and tables: Artifacts, " + ", ".join(f"`analysis/{a}`" for a in artifacts) + "."]
    if unstood:
        lines.append(f"The {MAX_STANDINGS} runs of this launch nearest the front (the front first) were told where "
                     f"they stand in their notes; the other {unstood} were not (one write each).")
    return _clip("\n".join(lines) + "\n")


def standing_note(config_note: str, name: str, row: Any, front: Any, objectives: Mapping[str, str],
                  experiment_id: str) -> str:
    """A child's note at the end of its launch: its configuration, then on the front or dominated by which run."""
    values = ", ".join(f"{k} {_fmt(row[k])}" for k in objectives)
    if row.name in front.index:
        stand = f"**On the front** of {' vs '.join(objectives)}: {values}."
    else:
        dominating = _dominating(row, front, objectives)
        if dominating is None:
            stand = f"Not on the front of {' vs '.join(objectives)}: {values}."
        else:
            other = ", ".join(f"{k} {_fmt(dominating[k])}" for k in objectives)
            link = run_link(experiment_id, dominating["run_id"]) if "run_id" in dominating else ""
            stand = (f"Dominated by [{dominating.get('run_name', '?')}]({link}) ({other}) against this run's "
                     f"{values}.")
    when = time.strftime("%Y-%m-%d %H:%M")
    return _clip(f"{config_note.rstrip()}\n\n{stand} *(as of its launch's end, {when})*\n")


def _dominating(row: Any, front: Any, objectives: Mapping[str, str]) -> Any:
    """The front run that dominates `row` with the best value of the last objective (the quality one)."""
    def no_worse(a: float, b: float, sense: str) -> bool:
        return a <= b if sense == "min" else a >= b

    candidates = [r for _, r in front.iterrows()
                  if all(no_worse(r[k], row[k], sense) for k, sense in objectives.items())]
    if not candidates:
        return None
    last, sense = list(objectives.items())[-1]
    return (min if sense == "min" else max)(candidates, key=lambda r: r[last])
