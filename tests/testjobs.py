"""Jobs used only by tests: they report where they ran, crash their process, or hold the run open."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


def where(cfg: Any, ctx: Any) -> dict[str, float]:
    """Sleep, then report this process and its devices (as metrics, so tests can read them from MLflow)."""
    start = time.time()
    time.sleep(cfg.get("sleep_s", 0.0))
    ctx.log(step=0, alive=1.0)
    gpus = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g]
    return {"pid": float(os.getpid()), "n_visible_gpus": float(len(gpus)), "t_start": start, "t_end": time.time(),
            "index": float(cfg.get("index", 0))}


def together(cfg: Any, ctx: Any) -> dict[str, float]:
    """Wait at a barrier until `parties` runs have reached it (a file each in `barrier_dir`), then run `where`: the
    first `parties` runs provably held their resources at the same time (later ones pass straight through). With
    `release_file`, every run then also waits for that file: a test holds runs running until it has acted on them."""
    barrier = Path(cfg.barrier_dir)
    (barrier / ctx.run_key).touch()
    deadline = time.monotonic() + cfg.get("barrier_timeout_s", 120.0)
    while len(list(barrier.iterdir())) < cfg.parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(list(barrier.iterdir()))} of {cfg.parties} runs reached the barrier")
        time.sleep(0.05)
    release = cfg.get("release_file")
    while release and not Path(release).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release} was not created")
        time.sleep(0.05)
    return where(cfg, ctx)


def crash_once(cfg: Any, ctx: Any) -> dict[str, float]:
    """Kill the executor process the first time it runs for a marker file; succeed after."""
    marker = Path(cfg.marker)
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(3)
    return {"recovered": 1.0}


def fail_until_marker(cfg: Any, ctx: Any) -> dict[str, float]:
    """Fail while a marker file is missing: the same config fails, then succeeds once the cause is fixed."""
    if not Path(cfg.marker).exists():
        raise RuntimeError(f"marker {cfg.marker} missing")
    return {"ok": 1.0}


def bad_config(cfg: Any, ctx: Any) -> dict[str, float]:
    """Reject the config the way a real job does: a ConfigError (a ValueError) naming the field."""
    from orchestrator.errors import ConfigError

    raise ConfigError("width", f"must be a multiple of 8, got {cfg.get('width', 3)}")


def crash_always(cfg: Any, ctx: Any) -> dict[str, float]:
    """Kill the executor process every time (a job that takes its process down, e.g. a segfault or OOM kill)."""
    os._exit(3)


def fail_first_attempt(cfg: Any, ctx: Any) -> dict[str, float]:
    """The synthetic job, after its first attempt raised: every run ends FINISHED on attempt 2 with attempt_1 tags."""
    from orchestrator.jobs.synthetic import train

    if ctx.attempt == 1:
        raise RuntimeError("first attempt fails")
    return train(cfg, ctx)
