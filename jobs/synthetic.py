"""A job whose loss follows a known scaling law, with seeded noise and an adjustable duration.

L(N, D) = E + A / N^alpha + B / D^beta. Used by tests and benchmarks: fits on its results must recover the constants.
The curve is the same law evaluated at the fraction of D seen so far.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any


def law(n_params: float, tokens: float, cfg: Any) -> float:
    """The noiseless loss at model size N and data size D."""
    return cfg.E + cfg.A / n_params**cfg.alpha + cfg.B / tokens**cfg.beta


def train(cfg: Any, ctx: Any) -> dict[str, float]:
    """Sleep `sleep_s` across `steps` logged points, then return the noisy final loss and the run's scale."""
    rng = random.Random(f"{cfg.seed}-{cfg.n_params}-{cfg.tokens}")
    steps = max(int(cfg.steps), 1)
    for step in range(1, steps + 1):
        if cfg.sleep_s:
            time.sleep(cfg.sleep_s / steps)
        seen = cfg.tokens * step / steps
        ctx.log(step=step, train_loss=law(cfg.n_params, seen, cfg), tokens_seen=seen)
    if cfg.fail:
        raise RuntimeError("synthetic job asked to fail (job.fail=true)")
    val_loss = law(cfg.n_params, cfg.tokens, cfg) * math.exp(cfg.noise * rng.gauss(0.0, 1.0))
    return {"val_loss": val_loss, "n_params": float(cfg.n_params), "tokens": float(cfg.tokens),
            "flops": 6.0 * cfg.n_params * cfg.tokens}
