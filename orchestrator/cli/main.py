"""`orchestrator` console script: `run` is a Hydra app over conf/; the other verbs are plain subcommands."""

from __future__ import annotations

import sys
from typing import Callable

USAGE = """usage: orchestrator <command> [args]

commands:
  init [DIR] [--name NAME] [--force]                      a new project: a job, its config and a sweep that runs
  run [--rerun-failed] [--dry-run] [--config-dir DIR] [hydra overrides...]
                                                          run a sweep (e.g. +sweep=lm_demo cluster.num_gpus=8)
  submit [--rerun-failed] [--dry-run] [hydra overrides...] --address URL [--follow] [--working-dir DIR]
                                                          run a sweep as a Ray job on a cluster (driver on the head)
  logs <submission_id> --address URL [--follow]           a submitted sweep's output
  stop <submission_id> --address URL                      stop a submitted sweep (running runs end KILLED)
  resume <sweep> [--tracking-uri URI] [args...]           run the sweep's last `run` command again: finishes what a
                                                          stopped or dead driver left, skips what is done
  status <sweep> [--tracking-uri URI]                     counts of a sweep's runs by status
  recost <sweep> [--cost NAME|PATH] [--set KEY=VALUE ...] [--tracking-uri URI] [--dry-run]
                                                          cost and CO2 of finished runs again, under another cost model
  fit <sweep> [--form chinchilla|power] [--n COL] [--d COL] [--loss COL] [--x COL] [--y COL]
      [--bootstrap N] [--seed S] [--json] [--plot PNG] [--tracking-uri URI]
                                                          scaling law fitted to the finished runs, with 95% intervals
  frontier <sweep> --objective COL:min|max [...] [--json] [--plot PNG] [--tracking-uri URI]
                                                          the non-dominated finished runs (Pareto front)
  report <sweep> [-o HTML] [--metric COL] [--mode min|max] [--cost COL] [--tracking-uri URI]
                                                          the sweep as one self-contained HTML page (default
                                                          report.html): totals, frontier, fits, failures, ...
  doctor                                                  which energy meters work on this machine, and why not
"""


def _commands() -> dict[str, Callable[[list[str]], int]]:
    from orchestrator.cli import doctor, fit, frontier, init, jobs, recost, report, resume, run, status, submit

    return {"init": init.main, "run": run.main, "submit": submit.submit_main, "logs": jobs.logs_main, "stop": jobs.stop_main,
            "resume": resume.main, "status": status.main, "recost": recost.main, "fit": fit.main,
            "frontier": frontier.main, "report": report.main, "doctor": doctor.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    commands = _commands()
    if argv[0] not in commands:
        print(f"orchestrator: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
