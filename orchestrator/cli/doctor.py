"""`orchestrator doctor`: which energy meters work on this machine, and why not (always exits 0: it is a report)."""

from __future__ import annotations

import argparse
import os


def main(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="orchestrator doctor", description=__doc__).parse_args(argv)

    from orchestrator.energy.doctor import diagnose, render_report

    print(render_report(diagnose(os.environ.get("CUDA_VISIBLE_DEVICES"))))
    return 0
