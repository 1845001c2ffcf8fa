"""Sweeps written straight into MLflow in the layout tracking/store.py writes, from a known scaling law.

`write_law_sweep` builds two launches of an 8 x 8 grid of (N, D) runs whose val_loss follows
L = E + A/N^alpha + B/D^beta with 1% multiplicative noise, plus the cases a reader must get right:
a run_key FINISHED in both launches, one that FAILED on its rerun after finishing, and one that only FAILED.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from orchestrator.tracking.flatten import flatten, metric_name_for, param_value

TRUTH = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# 0.7-decade steps: N from 1e6 to ~8e10, D from 1e7 to ~8e11; N*D repeats along diagonals, so the grid also
# holds IsoFLOP curves.
N_VALUES = 10 ** (6 + 0.7 * np.arange(8))
D_VALUES = 10 ** (7 + 0.7 * np.arange(8))
NOISE = 0.01
USD_PER_FLOP = 2e-21


@dataclass
class LawSweep:
    """What was written, to check reads against."""

    uri: str
    name: str
    old_parent: str
    new_parent: str
    # run_key -> run_id of the run a reader must return for it (the newest FINISHED).
    expected: dict[str, str] = field(default_factory=dict)
    # run_key -> val_loss of that run.
    val_loss: dict[str, float] = field(default_factory=dict)
    # Every child run id written, any status.
    children: list[str] = field(default_factory=list)
    twice_key: str = "n00-d00"
    failed_rerun_key: str = "n01-d00"
    failed_key: str = "n99-d99"


def law(n: float, d: float) -> float:
    return TRUTH["E"] + TRUTH["A"] / n ** TRUTH["alpha"] + TRUTH["B"] / d ** TRUTH["beta"]


def job_config(n: float, d: float) -> dict[str, Any]:
    return {"_target_": "orchestrator.jobs.synthetic.train", "n_params": int(n), "tokens": int(d), "noise": NOISE,
            "schedule": "cosine", "device": None, "optim": {"lr": 3e-3, "betas": [0.9, 0.95]}}


def write_law_sweep(uri: str, name: str = "law-sweep", seed: int = 0) -> LawSweep:
    client = MlflowClient(uri)
    exp = client.create_experiment(name)
    sweep = LawSweep(uri, name, _parent(client, exp, "launch-1", 1_000), _parent(client, exp, "launch-2", 500_000))
    rng = np.random.default_rng(seed)
    for i, n in enumerate(N_VALUES):
        for j, d in enumerate(D_VALUES):
            loss = law(n, d) * float(np.exp(NOISE * rng.standard_normal()))
            _finished(client, exp, sweep, sweep.old_parent, f"n{i:02d}-d{j:02d}", n, d, loss, 2_000 + 8 * i + j)
    n, d = N_VALUES[0], D_VALUES[0]
    _finished(client, exp, sweep, sweep.new_parent, sweep.twice_key, n, d, law(n, d) * 1.004, 501_000)
    sweep.children.append(_child(client, exp, sweep.new_parent, sweep.failed_rerun_key, N_VALUES[1], D_VALUES[0],
                                 {}, "FAILED", 502_000))
    sweep.children.append(_child(client, exp, sweep.old_parent, sweep.failed_key, 1e12, 1e13, {}, "FAILED", 3_000))
    for parent in (sweep.old_parent, sweep.new_parent):
        client.log_batch(parent, metrics=[Metric("total_cost_usd", 1.5, 0, 0), Metric("runs_finished", 64.0, 0, 0)])
        client.set_terminated(parent, "FINISHED", end_time=600_000)
    return sweep


def _parent(client: MlflowClient, exp: str, name: str, start_ms: int) -> str:
    return client.create_run(exp, run_name=name, start_time=start_ms, tags={"orchestrator.role": "parent"}).info.run_id


def _finished(client: MlflowClient, exp: str, sweep: LawSweep, parent: str, key: str, n: float, d: float,
              loss: float, start_ms: int) -> None:
    metrics = {"val_loss": loss, "n_params": n, "tokens": d, "flops": 6 * n * d,
               "cost_usd": 6 * n * d * USD_PER_FLOP, "wall_s": 1.0}
    run_id = _child(client, exp, parent, key, n, d, metrics, "FINISHED", start_ms)
    sweep.children.append(run_id)
    sweep.expected[key], sweep.val_loss[key] = run_id, loss


def _child(client: MlflowClient, exp: str, parent: str, key: str, n: float, d: float, metrics: dict[str, float],
           status: str, start_ms: int) -> str:
    """One child run as the writer's ops (`tracking.ops.create_child`, `end_child`) leave it."""
    tags = {"orchestrator.role": "child", "mlflow.parentRunId": parent, "run_key": key, "status": status}
    run_id = client.create_run(exp, run_name=f"n_params={n:.2g},tokens={d:.2g}", tags=tags,
                               start_time=start_ms).info.run_id
    params = {k: param_value(v) for k, v in flatten(job_config(n, d))}
    params.update({"resources.gpus": param_value(1.0), "resources.memory_bytes": param_value(None)})
    swept = {metric_name_for("job.n_params"): n, metric_name_for("job.tokens"): d}
    client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()],
                     metrics=[Metric(k, float(v), start_ms, 0) for k, v in {**swept, **metrics}.items()])
    client.set_terminated(run_id, status, end_time=start_ms + 500)
    return run_id
