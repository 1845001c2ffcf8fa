"""Run one of the shipped studies (conf/sweep/<study>.yaml) and keep its figures for the README.

    python benchmarks/studies.py quant_pareto [--quick] [--out docs/studies] [overrides ...]

Runs `orchestrator run +sweep=<study>` (or `<study>_quick`) into a fresh SQLite store in a temporary directory, as
a user would, prints the runtime and the analysis summary, copies the launch's `analysis/*.png` (and the CSV tables)
into `<out>/<study>/`, and writes `<out>/<study>/summary.txt` with the runtime, the command and the analysis lines.

Last line: `study: <study> runs=<n> finished=<n> wall_s=<s> figures=<n>`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_study(sweep: str, workdir: Path, overrides: list[str]) -> tuple[float, str, list[str], list[str]]:
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    command = [sys.executable, "-m", "orchestrator", "run", f"+sweep={sweep}", f"tracking.uri={uri}", *overrides]
    start = time.perf_counter()
    env = {**os.environ, "COLUMNS": "200"}  # the closing lines unwrapped
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    wall_s = time.perf_counter() - start
    output = done.stdout + done.stderr
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} exited {done.returncode}:\n{output[-4000:]}")
    return wall_s, uri, command[2:], closing_lines(done.stdout)


def closing_lines(stdout: str) -> list[str]:
    """What the run printed after its table: the counts, totals, and the analysis's summary and warnings."""
    lines = stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if re.search(r"\d+ finished, .* in [\d.]+ s$", line)), len(lines))
    end = next((i for i, line in enumerate(lines) if line.startswith("Open ")), len(lines))
    return [line.rstrip() for line in lines[start:end] if line.strip()]


def keep_artifacts(uri: str, sweep_name: str, out: Path) -> tuple[list[str], dict[str, int]]:
    """The newest launch's analysis files copied into `out`, and its run counts."""
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(sweep_name)
    if experiment is None:
        sys.exit(f"no experiment {sweep_name!r} in {uri}")
    parent = client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'parent'", max_results=1,
                                order_by=["attributes.start_time DESC"])[0]
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    for item in client.list_artifacts(parent.info.run_id, "analysis"):
        if item.path.endswith((".png", ".csv")):
            local = client.download_artifacts(parent.info.run_id, item.path)
            shutil.copy(local, out / Path(item.path).name)
            kept.append(Path(item.path).name)
    metrics = parent.data.metrics
    counts = {k: int(metrics.get(f"runs_{k}", 0)) for k in ("planned", "finished", "failed", "pruned")}
    return kept, counts


def sweep_name_of(sweep: str, overrides: list[str]) -> str:
    """The experiment name the sweep config gives (sweep.name), or the one an override sets."""
    for item in overrides:
        if item.startswith("sweep.name="):
            return item.split("=", 1)[1]
    from orchestrator.project import compose

    return str(compose([f"+sweep={sweep}"]).sweep.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="a sweep under conf/sweep/, e.g. quant_pareto")
    parser.add_argument("--quick", action="store_true", help="run <study>_quick instead")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "studies")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to orchestrator run")
    args = parser.parse_args()
    sweep = f"{args.study}_quick" if args.quick else args.study
    with tempfile.TemporaryDirectory() as tmp:
        wall_s, uri, command, lines = run_study(sweep, Path(tmp), args.overrides)
        kept, counts = keep_artifacts(uri, sweep_name_of(sweep, args.overrides), args.out / args.study)
    text = [f"study: {sweep}", f"command: {' '.join(c for c in command if not c.startswith('tracking.uri='))}",
            f"wall_s: {wall_s:.0f} (2-core CPU, start-up included)",
            f"runs: {counts['planned']} planned, {counts['finished']} finished, {counts['failed']} failed", *lines]
    (args.out / args.study / "summary.txt").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"study: {sweep} runs={counts['planned']} finished={counts['finished']} wall_s={wall_s:.0f} "
          f"figures={sum(1 for k in kept if k.endswith('.png'))}")


if __name__ == "__main__":
    main()
