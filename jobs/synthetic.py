"""A job whose loss follows a known scaling law, with seeded noise and an adjustable duration.

L(N, D) = E + A / N^alpha + B / D^beta. Used by tests and benchmarks: fits on its results must recover the constants.
Each step logs the law at the fraction of D seen so far (`train_loss`, and a noisy `val_loss` with the run's
`progress`, which early stopping watches), and the FLOPs spent so far; the final val_loss is the last step's.

How long a run takes: `sleep_s` seconds, or, with `flops_per_second` set (a simulated throughput), 6·N·D /
flops_per_second seconds capped at `max_sleep_s`, so that cost grows with N·D as it does for a real model (closed-loop
sweeps learn it). Optional keys, read with defaults so the shipped config and its run_keys stay as they were:
flops_per_second (null), max_sleep_s (60), valid_checkpoints (false: whether the values at each step are valid
measurements of a run trained on that many tokens, as they are for this law).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any


def law(n_params: float, tokens: float, cfg: Any) -> float:
    """The noiseless loss at model size N and data size D."""
    return cfg.E + cfg.A / n_params**cfg.alpha + cfg.B / tokens**cfg.beta


def duration_s(cfg: Any) -> float:
    """Seconds the run takes: `sleep_s`, or its simulated compute time when `flops_per_second` is set."""
    throughput = cfg.get("flops_per_second")
    if not throughput:
        return float(cfg.sleep_s or 0.0)
    return min(6.0 * cfg.n_params * cfg.tokens / float(throughput), float(cfg.get("max_sleep_s", 60.0)))


def train(cfg: Any, ctx: Any) -> dict[str, float]:
    """Sleep across `steps` logged points, then return the noisy final loss and the run's scale."""
    rng = random.Random(f"{cfg.seed}-{cfg.n_params}-{cfg.tokens}")
    final_noise = math.exp(cfg.noise * rng.gauss(0.0, 1.0))
    steps, seconds = max(int(cfg.steps), 1), duration_s(cfg)
    valid = bool(cfg.get("valid_checkpoints", False))
    val_loss = law(cfg.n_params, cfg.tokens, cfg) * final_noise
    for step in range(1, steps + 1):
        if seconds:
            time.sleep(seconds / steps)
        seen = cfg.tokens * step / steps
        noise = final_noise if step == steps else math.exp(cfg.noise * rng.gauss(0.0, 1.0))
        ctx.log(step=step, progress=step / steps, checkpoint=valid, train_loss=law(cfg.n_params, seen, cfg),
                tokens_seen=seen, flops=6.0 * cfg.n_params * seen, val_loss=law(cfg.n_params, seen, cfg) * noise)
    if cfg.fail:
        raise RuntimeError("synthetic job asked to fail (job.fail=true)")
    return {"val_loss": val_loss, "n_params": float(cfg.n_params), "tokens": float(cfg.tokens),
            "flops": 6.0 * cfg.n_params * cfg.tokens}
