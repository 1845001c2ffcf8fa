"""`orchestrator init [DIR] [--name NAME]`: a project to start from, whose sweep runs as soon as it is written.

Writes <name>.py (a job: a small torch MLP fitting a fixed random teacher, logging its loss curve, returning its final
metrics with n_params, tokens and flops), conf/job/<name>.yaml, conf/sweep/<name>.yaml (3 widths x 2 data sizes) and
a README.md of the commands. Refuses to overwrite a file unless --force.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path

EXIT_OK, EXIT_BAD_INPUT = 0, 2

JOB = '''"""{name}: a training job for orchestrator. Replace the model and data with your own; keep the signature.

`train(cfg, ctx)` gets the job's config (conf/job/{name}.yaml, with the sweep's values set) and a context: log curves
with `ctx.log(step=..., name=value)`, run on `ctx.device`, and return the final metrics. Report the run's scale
(`n_params`, `tokens`, `flops`) so `orchestrator fit` can fit a scaling law to the sweep.
"""

from __future__ import annotations

import torch


def teacher_data(samples: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and noisy targets of a fixed random two-layer teacher network (the same teacher for every run)."""
    teacher = torch.Generator().manual_seed(1234)
    w1, w2 = torch.randn(dim, 64, generator=teacher), torch.randn(64, 1, generator=teacher) / 8
    data = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, dim, generator=data)
    return x, torch.tanh(x @ w1) @ w2 + 0.05 * torch.randn(samples, 1, generator=data)


def train(cfg, ctx) -> dict[str, float]:
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(cfg.dim, cfg.width), torch.nn.GELU(), torch.nn.Linear(cfg.width, 1))
    model = model.to(ctx.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    x, y = teacher_data(cfg.samples, cfg.dim, cfg.seed)
    x_val, y_val = teacher_data(1024, cfg.dim, seed=10_000 + cfg.seed)
    steps = max(cfg.samples // cfg.batch_size, 1)
    for step in range(1, steps + 1):
        batch = torch.randint(0, cfg.samples, (cfg.batch_size,))
        loss = torch.nn.functional.mse_loss(model(x[batch].to(ctx.device)), y[batch].to(ctx.device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % 20 == 0 or step == steps:
            ctx.log(step=step, train_loss=loss.item())
    with torch.no_grad():
        val_loss = torch.nn.functional.mse_loss(model(x_val.to(ctx.device)), y_val.to(ctx.device)).item()
    n_params = sum(p.numel() for p in model.parameters())
    tokens = steps * cfg.batch_size  # samples seen, the "D" of a scaling law
    return {{"val_loss": val_loss, "n_params": n_params, "tokens": tokens, "flops": 6.0 * n_params * tokens}}
'''

JOB_CONFIG = '''# @package job
# The job {name}.py runs: conf/job/{name}.yaml. Every key is a value the sweep may vary (job.<key>).
_target_: {name}.train
# The metric that says how good a run is, and whether lower (min) or higher (max) is better: every launch ends with
# the frontier of cost against it. Not passed to the job, not part of its run_key.
_metric_: val_loss
_mode_: min
# Hidden units of the MLP (its size N).
width: 32
# Training samples (its data D).
samples: 4000
# Inputs per sample.
dim: 16
batch_size: 32
lr: 3.0e-3
seed: 0
'''

SWEEP = '''# @package sweep
# 3 widths x 2 data sizes of {name}.py: `orchestrator run +sweep={name}` (about a minute on a laptop CPU).
defaults:
  - override /job@_global_.job: {name}

name: {name}
kind: grid
params:
  job:
    width: [8, 32, 128]
    samples: [2000, 8000]
analysis:
  frontiers:
    - {{objectives: {{wall_s: min, val_loss: min}}}}
'''

README = '''# {name}

A sweep project for orchestrator: `{name}.py` is the job, `conf/job/{name}.yaml` its config, `conf/sweep/{name}.yaml`
the sweep. Run these from this directory, which makes `{name}.py` importable and `conf/` found.

    orchestrator run +sweep={name} --dry-run      # the runs it would make, nothing started
    orchestrator run +sweep={name}                # run it (embedded Ray, MLflow in ./mlflow.db)
    orchestrator run +sweep={name} job.lr=1e-3    # any value of the job or the sweep, from the command line
    orchestrator status {name}                    # runs by status; run the same command again to resume
    orchestrator frontier {name} --objective wall_s:min --objective val_loss:min
    orchestrator fit {name} --n n_params --d tokens --loss val_loss
    mlflow ui --backend-store-uri sqlite:///mlflow.db   # then open the printed link

On a Ray cluster, from this directory (it is uploaded as the job's working directory):

    orchestrator submit +sweep={name} tracking.uri=http://<mlflow-host>:5000 --address http://<head>:8265 --follow
'''


def files(name: str) -> dict[str, str]:
    """Relative path -> content of the project `init` writes."""
    return {f"{name}.py": JOB.format(name=name), f"conf/job/{name}.yaml": JOB_CONFIG.format(name=name),
            f"conf/sweep/{name}.yaml": SWEEP.format(name=name), "README.md": README.format(name=name)}


def project_name(folder: Path, given: str | None) -> str:
    """A module name: --name, else the folder's name made into an identifier."""
    name = given or re.sub(r"\W+", "_", folder.resolve().name).strip("_").lower() or "project"
    if not name.isidentifier() or keyword.iskeyword(name) or name in sys.stdlib_module_names or name == "orchestrator":
        raise ValueError(f"--name: {name!r} cannot name a Python module here; give another with --name")
    return name


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator init", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", nargs="?", default=".", help="the project directory (default: this one)")
    parser.add_argument("--name", help="name of the job, its configs and the sweep (default: the directory's name)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    try:
        name = project_name(folder, args.name)
    except ValueError as exc:
        print(f"orchestrator init: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    planned = files(name)
    existing = [path for path in planned if (folder / path).exists()]
    if existing and not args.force:
        print(f"orchestrator init: {', '.join(existing)} already exist in {folder}; nothing written (--force "
              "overwrites them)", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path, text in planned.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text)
    where = "" if folder.resolve() == Path.cwd().resolve() else f"cd {args.dir} && "
    print(f"wrote {', '.join(planned)} in {folder.resolve()}\nnext: {where}orchestrator run +sweep={name}")
    return EXIT_OK
