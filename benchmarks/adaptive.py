"""Benchmark: closed-loop sweeps against static designs, random search and plain Optuna, on simulated scaling laws.

Worlds: 4 true laws L = E + A/N^α + B/D^β (Chinchilla's, Epoch's refit, a data-hungry and a parameter-hungry one),
N in [1e6, 1e9], D in [1e9, 1e11], 1% multiplicative noise, 3% of runs failing part-way, cost 6·N·D at 4e14 FLOP/s
per GPU (the largest run is 417 GPU-hours), 8 runs in flight (see adaptive_sim.py). Seed s uses law s mod 4; every
method sees the same noise, failures and budget (the full grid's GPU-hours) in a world.

Methods: grid (8 x 8, log-spaced, in `kind: grid` order: N outer, D inner), isoflop (5 budgets x 16 sizes, 33 cells
in the box), random (log-uniform), optuna (create_study(directions=[min, min]), its default TPESampler seeded,
ask/tell, objectives gpu_hours and val_loss), ours-frontier and ours-law (AdaptivePlanner, budget {gpu_hours: the
grid's total}, initial 8, in_flight 8); "+es" adds early stopping (val_loss, min, min_fraction 1/16, cost gpu_hours;
its front is the finished runs, as in the measure) to the same method; "+oracle" adds the ceiling of that rule, a
stopper that knows each run's own final value and stops it at the first checkpoint where that value at its full cost
is dominated by the finished runs (adaptive_sim.OracleStopper); grid+es and grid+oracle also run the whole grid, to
report what stopping saves of it and how much of the plain grid's hypervolume its front keeps. Every method is judged
on both measures, except that ours-frontier is judged on the front only and ours-law on the law only. Early stopping
is for the front: it is not run with ours-law (a law design needs the final value of every run it chose, front or
not; see orchestrator/sweep/early_stop.py), and its savings are given on the frontier measure only.

Measures. GPU-hours consumed (every run's GPU time so far, running ones included) when:
- frontier: the hypervolume of the finished runs first reaches 95% of the full grid's (all 64 points, no failures).
  Hypervolume of (log10 GPU-hours, true noiseless loss of each finished run), each axis normalised to [0, 1] over the
  search box: cost from the cheapest to the costliest run the box allows, loss from L(N_max, D_max) to
  L(N_min, D_min); reference point (1, 1), the box's worst corner.
- law: the 90% bootstrap interval (100 resamples, fit_scaling_law chinchilla, 20x20 exponent grid) of the
  compute-optimal exponent a = β/(α+β), fitted to the method's finished runs plus valid checkpoints (the same data
  rule for every method), is first no wider than the full grid's own final interval and contains the true a.
  Checked when GPU-hours consumed pass each step of a x1.25 ladder and at the end. Coverage and bias: of the interval
  at the first check whose width reaches the grid's (the last check if none does).
The grid is measured by the same rule, in its config order (it reaches 95% of its own hypervolume well before its
last, dearest runs); the table also gives every number as a fraction of the grid's total GPU-hours. Ratios on the
last line are medians over seeds of per-seed ratios (ours over the baseline's GPU-hours to reach); a method that
never reaches counts as infinite, a grid that never reaches (its interval misses the truth) counts at its total, and
a random search that never reaches counts as reaching at the budget (all conservative for ours). A simulated sweep
stops once its measures are settled, or after 1000 runs. --quick: 4 seeds and 50 bootstrap resamples.

Run: .venv/bin/python benchmarks/adaptive.py [--seeds 32] [--quick] [--workers 2]
Last line:
adaptive: frontier_vs_grid=<r> frontier_vs_random=<r> law_vs_grid=<r> law_vs_random=<r> law_coverage=<f> seeds=<n>
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from adaptive_sim import (  # noqa: E402
    D_RANGE, LAWS, N_RANGE, Fixed, Method, OptunaMO, Ours, Random, Trace, World, gpu_hours, grid_points,
    isoflop_points, simulate)

from orchestrator.analysis._skyline import nondominated  # noqa: E402
from orchestrator.sweep.adaptive.improvement import hypervolume  # noqa: E402
from orchestrator.sweep.adaptive.lawfit import estimate, law_rows  # noqa: E402
from orchestrator.sweep.adaptive.spec import LawSpec  # noqa: E402

HV_FRACTION, LADDER, FIRST_CHECK = 0.95, 1.25, 0.001
HAVE_OPTUNA = importlib.util.find_spec("optuna") is not None
LAW = LawSpec("chinchilla", "job.n_params", "job.tokens", "val_loss", None)
INF = math.inf


def normalised_costs(world: World, points: np.ndarray) -> np.ndarray:
    """(log10 GPU-hours, true loss) of (N, D) points, each scaled to [0, 1] over the search box."""
    lo_c, hi_c = (math.log10(gpu_hours(N_RANGE[i], D_RANGE[i])) for i in (0, 1))
    lo_l, hi_l = world.loss(N_RANGE[1], D_RANGE[1]), world.loss(N_RANGE[0], D_RANGE[0])
    cost = (np.log10(6.0 * points[:, 0] * points[:, 1] / 4e14 / 3600.0) - lo_c) / (hi_c - lo_c)
    loss = (np.array([world.loss(n, d) for n, d in points]) - lo_l) / (hi_l - lo_l)
    return np.column_stack([cost, loss])


class FrontierMeter:
    """Hypervolume of a trace's finished runs after each end; when it first reached the target."""

    def __init__(self, world: World, target: float) -> None:
        self.world, self.target, self.reach, self.seen, self.volume = world, target, INF, 0, 0.0
        self.points: list[tuple[float, float]] = []

    def update(self, trace: Trace) -> bool:
        for consumed, obs in trace.ends[self.seen :]:
            self.seen += 1
            if obs.status == "FINISHED":
                self.points.append((obs.point["job.n_params"], obs.point["job.tokens"]))
                self.volume = volume = hypervolume(normalised_costs(self.world, np.array(self.points)))
                if self.reach == INF and volume >= self.target:
                    self.reach = consumed
        return self.reach < INF


class LawMeter:
    """Exponent intervals on a ladder of GPU-hours; when width and truth are first both good (target known)."""

    def __init__(self, world: World, scale_gpu_hours: float, bootstrap: int, target_width: float | None) -> None:
        self.world, self.bootstrap, self.target = world, bootstrap, target_width
        self.next_check = FIRST_CHECK * scale_gpu_hours
        self.checks: list[tuple[float, float, float, float]] = []  # (consumed, estimate, lo, hi)

    def update(self, trace: Trace, final: bool = False) -> bool:
        consumed = trace.ends[-1][0] if trace.ends else 0.0
        if consumed >= self.next_check or final:
            while self.next_check <= consumed:
                self.next_check *= LADDER
            self._check(trace, consumed)
        return self.target is not None and self.reached(self.target) < INF

    def reached(self, width: float) -> float:
        truth = self.world.exponent
        return next((c for c, _, lo, hi in self.checks if hi - lo <= width and lo <= truth <= hi), INF)

    def claimed(self, width: float) -> tuple[bool, float] | None:
        """(truth inside, estimate - truth) at the first check as narrow as `width`, else at the last check."""
        hit = next((k for k in self.checks if k[3] - k[2] <= width), self.checks[-1] if self.checks else None)
        return None if hit is None else (hit[2] <= self.world.exponent <= hit[3], hit[1] - self.world.exponent)

    def _check(self, trace: Trace, consumed: float) -> None:
        rows = law_rows([obs for _, obs in trace.ends], LAW)
        if len(rows) < 8:
            return
        try:
            est = estimate(rows, None, self.bootstrap, seed=0)
        except ValueError:
            return
        self.checks.append((consumed, est.exponent, *est.exponent_ci))


def run_world(args: tuple[int, bool]) -> dict[str, dict[str, Any]]:
    """Every method in one world (law = seed mod 4); per method its reach in GPU-hours and law statistics."""
    seed, quick = args
    world = World(list(LAWS)[seed % len(LAWS)], seed)
    bootstrap = 50 if quick else 100
    grid_design = np.array(grid_points())
    hv_target = HV_FRACTION * hypervolume(normalised_costs(world, grid_design))
    budget = sum(gpu_hours(n, d) for n, d in grid_design)
    out: dict[str, dict[str, Any]] = {}

    def measure(name: str, make: Callable[[], Method], es: bool | str, law: bool, law_target: float | None,
                run_all: bool = False) -> LawMeter | None:
        front = FrontierMeter(world, hv_target)
        meter = LawMeter(world, budget, bootstrap, law_target) if law else None
        start = time.perf_counter()

        def stop(trace: Trace) -> bool:  # ours-law is judged on the law only, ours-frontier on the front only
            done_front = front.update(trace) or name.startswith("ours-law")
            done_law = meter.update(trace) if meter else True
            return not run_all and done_front and done_law

        trace = simulate(world, make(), budget, es, stop)
        if meter is not None:
            meter.update(trace, final=True)
        print(f"  world {seed} ({world.law}) {name}: {len(trace.ends)} runs, {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)
        out[name] = {"frontier": front.reach, "total": trace.total_gpu_hours, "runs": len(trace.ends),
                     "seconds": time.perf_counter() - start, "meter": meter,
                     "volume": front.volume / (hv_target / HV_FRACTION)}
        return meter

    grid_meter = measure("grid", lambda: Fixed("grid", grid_points()), False, True, None, run_all=True)
    width = grid_meter.checks[-1][3] - grid_meter.checks[-1][2]
    out["grid"]["law_target"] = width
    # The grid with a stopper runs to its end too: what early stopping saves of a whole grid, and what front it keeps.
    measure("grid+es", lambda: Fixed("grid", grid_points()), True, False, None, run_all=True)
    measure("grid+oracle", lambda: Fixed("grid", grid_points()), "oracle", False, None, run_all=True)
    plans: list[tuple[str, Callable[[], Method], bool | str, bool]] = [
        ("isoflop", lambda: Fixed("isoflop", isoflop_points()), False, True),
        ("random", lambda: Random(seed), False, True),
        ("random+es", lambda: Random(seed), True, False),
        ("random+oracle", lambda: Random(seed), "oracle", False),
        ("optuna", lambda: OptunaMO(seed), False, False),
        ("optuna+es", lambda: OptunaMO(seed), True, False),
        ("optuna+oracle", lambda: OptunaMO(seed), "oracle", False),
        ("ours-frontier", lambda: Ours("frontier", seed, budget), False, False),
        ("ours-frontier+es", lambda: Ours("frontier", seed, budget), True, False),
        ("ours-frontier+oracle", lambda: Ours("frontier", seed, budget), "oracle", False),
        ("ours-law", lambda: Ours("law", seed, budget), False, True),
    ]
    for name, make, es, law in plans:
        if name.startswith("optuna") and not HAVE_OPTUNA:
            continue
        measure(name, make, es, law, width)
    for name, row in out.items():
        meter = row.pop("meter")
        row["grid_total"] = budget
        if meter is not None:
            row["law"] = meter.reached(width)
            row["claim"] = meter.claimed(width)
    return out


def front_share(law: str) -> float:
    """The share of the 8x8 grid's GPU-hours spent on the runs of its noiseless front (what stopping cannot save)."""
    world, points = World(law, 0), grid_points()
    cost = np.array([gpu_hours(n, d) for n, d in points])
    loss = np.array([world.loss(n, d) for n, d in points])
    return float(cost[nondominated(np.column_stack([cost, loss]))].sum() / cost.sum())


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def ratios(results: list[dict], method: str, measure: str, versus: str) -> list[float]:
    """Per world: the method's GPU-hours to reach over the baseline's (an unreached random counts at the budget)."""
    out = []
    for r in results:
        ours, base = r[method][measure], r[versus][measure]
        if base == INF:
            base = r[versus]["grid_total"] if versus != "random" else r[versus]["total"]
        out.append(INF if ours == INF else ours / base)
    return out


def table(results: list[dict]) -> None:
    names = list(results[0])
    print(f"{'method':20} {'frontier: GPU-h/grid':>21} {'reached':>8} {'law: GPU-h/grid':>16} {'reached':>8} "
          f"{'coverage':>9} {'bias':>8} {'runs':>6} {'sim s':>6}")
    for name in names:
        rows = [r[name] for r in results]
        front = [row["frontier"] / row["grid_total"] for row in rows if not name.startswith("ours-law")]
        law = [row["law"] / row["grid_total"] for row in rows if "law" in row]
        claims = [row["claim"] for row in rows if row.get("claim") is not None]
        cover = f"{np.mean([c[0] for c in claims]):.2f}" if claims else "-"
        bias = f"{np.mean([c[1] for c in claims]):+.4f}" if claims else "-"
        law_text = f"{median(law):16.3f} {np.mean(np.isfinite(law)):8.0%}" if law else f"{'-':>16} {'-':>8}"
        front_text = f"{median(front):21.3f} {np.mean(np.isfinite(front)):8.0%}" if front else f"{'-':>21} {'-':>8}"
        print(f"{name:20} {front_text} {law_text} {cover:>9} {bias:>8} "
              f"{median([row['runs'] for row in rows]):6.0f} {median([row['seconds'] for row in rows]):6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="4 seeds and 50 bootstrap resamples (under 2 minutes)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = 4 if args.quick and args.seeds == 32 else args.seeds
    if not HAVE_OPTUNA:
        print("optuna is not installed (pip install optuna==5.0.0): its rows are skipped")
    start = time.perf_counter()
    jobs = [(s, args.quick) for s in range(seeds)]
    if args.workers > 1:
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(run_world, jobs, chunksize=1)
    else:
        results = [run_world(j) for j in jobs]
    print(f"{seeds} worlds ({', '.join(LAWS)}, seed s uses law s mod {len(LAWS)}); GPU-hours as a fraction of the "
          f"full grid's ({median([r['grid']['grid_total'] for r in results]):.0f}); medians over worlds")
    table(results)
    fvg, fvr = (median(ratios(results, "ours-frontier", "frontier", base)) for base in ("grid", "random"))
    lvg, lvr = (median(ratios(results, "ours-law", "law", base)) for base in ("grid", "random"))
    coverage = np.mean([r["ours-law"]["claim"][0] for r in results if r["ours-law"].get("claim")])
    print("goals: frontier_vs_grid <= 0.333 and frontier_vs_random <= 0.5; law_vs_grid <= 0.25 (stretch 0.1) with "
          "law_coverage >= 0.85; early stopping saves >= 20% more")
    print(f"wall time {time.perf_counter() - start:.0f} s")
    for stopper, what in (("es", "early stopping saves"), ("oracle", "its ceiling, the oracle stopper, saves")):
        savings = {m: 1.0 - median(ratios(results, f"{m}+{stopper}", "frontier", m))
                   for m in ("ours-frontier", "random", "optuna", "grid") if f"{m}+{stopper}" in results[0]}
        print(f"{what} on the frontier measure (1 - median ratio with/without): "
              + " ".join(f"{m}={s:.3f}" for m, s in savings.items()) + " ours-law=n/a (not for law designs)")
        whole = [1.0 - r[f"grid+{stopper}"]["total"] / r["grid"]["total"] for r in results]
        kept = [r[f"grid+{stopper}"]["volume"] / r["grid"]["volume"] for r in results]  # the same failures
        print(f"  the whole 8x8 grid run to its end: {median(whole):.1%} fewer GPU-hours (worlds {min(whole):.1%} to "
              f"{max(whole):.1%}), its front keeping {median(kept):.2%} of the plain grid's hypervolume (lowest "
              f"{min(kept):.2%})")
    print("share of the grid's GPU-hours on its noiseless front, by law: "
          + " ".join(f"{law}={front_share(law):.1%}" for law in LAWS))
    print(f"adaptive: frontier_vs_grid={fvg:.3f} frontier_vs_random={fvr:.3f} law_vs_grid={lvg:.3f} "
          f"law_vs_random={lvr:.3f} law_coverage={coverage:.3f} seeds={seeds}")


if __name__ == "__main__":
    main()
