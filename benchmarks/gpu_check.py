"""Prepared GPU check: what this CPU-only project cannot test, checked in a few minutes when a GPU machine is lent.

1. cuda_lm: the shipped LM job (a GPT-2-small-sized model, bf16) runs on CUDA through the orchestrator (embedded Ray,
   SQLite MLflow in a temporary folder), as one tracked run.
2. energy_err_pct: the meter's energy_j for that run against `nvidia-smi --query-gpu=power.draw.instant` (or
   power.draw where the driver lacks it) sampled every 100 ms and integrated (trapezoid) over the same run window,
   on the same GPU: 100 * (meter - smi) / smi. Goal: within 2%.
3. power_limit: the same job swept over resources.power_limit_frac [1.0, 0.7]: ok when each run saw its limit
   (tag power_limit_w), nvidia-smi shows the board back at its limit from before, and the sweep did not fail;
   no_permission when the orchestrator refused it for want of root (it says so before anything runs); else fail.
4. energy_saving_pct_at_70pct_limit: 100 * (1 - energy at 70% / energy at 100%) from that sweep.

Run: .venv/bin/python benchmarks/gpu_check.py [--steps 600] [--keep DIR]
Without a GPU it says so and exits 0. Last line:
gpu_check: cuda_lm=<ok|fail> energy_err_pct=<x> power_limit=<ok|no_permission|fail> energy_saving_pct_at_70pct_limit=<x>
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

NA = "n/a"
LM = ["job=lm", "job.device=cuda", "job.precision=bf16", "job.n_layer=12", "job.d_model=768", "job.n_head=12",
      "job.context=256", "job.batch_size=64", "job.eval_interval=200", "job.eval_batches=4", "resources.gpus=1",
      "energy.sample_interval_s=0.05", "energy.curve_interval_s=1"]


def gpu_present() -> str | None:
    """Why there is no GPU to check (None when there is one)."""
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    try:
        import torch
    except ImportError as err:
        return f"torch not installed ({err})"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False"
    return None


def smi(query: str, index: int = 0) -> list[str]:
    out = subprocess.run(["nvidia-smi", f"--id={index}", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=30)
    return [v.strip() for v in out.stdout.strip().split(",")] if out.returncode == 0 else []


class SmiPower:
    """nvidia-smi's power draw, sampled in a thread every `period_s`: (unix time, W) pairs."""

    def __init__(self, index: int = 0, period_s: float = 0.1) -> None:
        self.index, self.period_s, self.samples = index, period_s, []  # type: ignore[var-annotated]
        self.field = "power.draw.instant" if smi("power.draw.instant", index) not in ([], ["[N/A]"]) else "power.draw"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> SmiPower:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            values = smi(self.field, self.index)
            try:
                self.samples.append((time.time(), float(values[0])))
            except (IndexError, ValueError):
                pass
            self._stop.wait(self.period_s)

    def energy_j(self, start: float, end: float) -> float:
        """Trapezoid of the samples over [start, end] (unix seconds), the ends interpolated."""
        pts = sorted(self.samples)
        if len(pts) < 2 or pts[0][0] > start or pts[-1][0] < end:
            raise ValueError(f"nvidia-smi samples do not cover the run window ({len(pts)} samples)")

        def at(t: float) -> float:
            for (t0, p0), (t1, p1) in zip(pts, pts[1:]):
                if t0 <= t <= t1:
                    return p0 + (p1 - p0) * (t - t0) / (t1 - t0) if t1 > t0 else p0
            return pts[-1][1]

        inner = [(t, p) for t, p in pts if start < t < end]
        path = [(start, at(start)), *inner, (end, at(end))]
        return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(path, path[1:]))


def launch_sweep(overrides: list[str], folder: Path) -> Any:
    from orchestrator.launch import launch
    from orchestrator.project import compose

    cfg = compose([*LM, f"tracking.uri=sqlite:///{folder / 'mlflow.db'}", *overrides])
    return launch(cfg)


def check_cuda_lm(folder: Path, steps: int) -> tuple[str, str]:
    with SmiPower() as power:
        summary = launch_sweep(["name=gpu-check-lm", f"job.max_steps={steps}"], folder)
        time.sleep(0.5)
    (result,) = summary.results.values()
    if result.status != "FINISHED":
        print(f"cuda_lm: run {result.status}: {result.error}")
        return "fail", NA
    m, tags = result.metrics, result.tags
    print(f"cuda_lm: val_loss={m.get('val_loss')} wall_s={m['wall_s']:.1f} energy_source={tags.get('energy_source')} "
          f"gpu={tags.get('gpu_name')} energy_j={m.get('energy_j')} power_mean_w={m.get('power_mean_w')}")
    if "energy_j" not in m:
        print(f"cuda_lm: no energy measured: {tags.get('energy_unavailable_reason')}")
        return "ok", NA
    # The meter's window is the job's, inside the run's start and end as the executor stamped them.
    start, end = result.started_at_ms / 1000, result.ended_at_ms / 1000
    reference = power.energy_j(start, end)
    err = 100.0 * (m["energy_j"] - reference) / reference
    print(f"energy: meter {m['energy_j']:.1f} J, nvidia-smi {power.field} integrated {reference:.1f} J over "
          f"{end - start:.1f} s ({len(power.samples)} samples): {err:+.2f}%")
    return "ok", f"{err:.2f}"


def check_power_limit(folder: Path, steps: int) -> tuple[str, str]:
    from orchestrator.errors import ConfigError

    before = smi("power.limit")
    try:
        summary = launch_sweep(["name=gpu-check-power", f"job.max_steps={steps}",
                                "+sweep.params.resources.power_limit_frac=[1.0,0.7]"], folder)
    except ConfigError as err:
        print(f"power_limit: refused before running: {err}")
        return ("no_permission" if "CAP_SYS_ADMIN" in str(err) else "fail"), NA
    after = smi("power.limit")
    runs = {r.tags.get("power_limit_w"): r for r in summary.results.values()}
    print(f"power_limit: board limit before {before} W, after {after} W; runs at "
          + ", ".join(f"{w} W: {r.status} energy_j={r.metrics.get('energy_j')} wall_s={r.metrics.get('wall_s', 0):.1f}"
                      for w, r in runs.items()))
    ok = before == after and len(runs) == 2 and all(r.status == "FINISHED" for r in runs.values())
    energies = sorted(((float(w), r.metrics.get("energy_j")) for w, r in runs.items() if w), reverse=True)
    if not ok or len(energies) != 2 or None in (energies[0][1], energies[1][1]):
        return ("ok" if ok else "fail"), NA
    saving = 100.0 * (1.0 - energies[1][1] / energies[0][1])
    return "ok", f"{saving:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=600, help="LM steps per run (about a minute on an H100/H200)")
    parser.add_argument("--keep", help="folder for the MLflow store (default: a temporary one, removed)")
    args = parser.parse_args()
    missing = gpu_present()
    if missing is not None:
        print(f"gpu_check: no GPU here ({missing}); nothing to check")
        print(f"gpu_check: cuda_lm={NA} energy_err_pct={NA} power_limit={NA} energy_saving_pct_at_70pct_limit={NA}")
        return 0
    folder = Path(args.keep or tempfile.mkdtemp(prefix="gpu-check-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"gpu_check: {smi('name,driver_version,power.limit,power.default_limit')} store {folder}")
    cuda_lm, err, limit, saving = "fail", NA, "fail", NA
    try:
        cuda_lm, err = check_cuda_lm(folder, args.steps)
    except Exception:  # noqa: BLE001 - a prepared check reports every part, whatever one of them does
        traceback.print_exc()
    try:
        limit, saving = check_power_limit(folder, args.steps)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"gpu_check: cuda_lm={cuda_lm} energy_err_pct={err} power_limit={limit} "
          f"energy_saving_pct_at_70pct_limit={saving}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
