"""`orchestrator logs <submission_id>` and `orchestrator stop <submission_id>`: a submitted sweep's output, its end.

Both take --address http://<head>:8265 (or $RAY_API_SERVER_ADDRESS) and Ray's token auth, as `orchestrator submit`.
"""

from __future__ import annotations

import argparse

from orchestrator.cli._job_api import (END_WAIT_S, ENDED, EXIT_FAILED, EXIT_OK, add_address_argument, connect, follow,
                                       guarded, logs_command, resolve_address, translated, wait_for_end)


STOP_HELP = ("Stop a submitted sweep. Ray sends its driver SIGTERM, which ends the launch like Ctrl-C (running runs are "
             "marked KILLED and run again on resume), and SIGKILL after $RAY_JOB_STOP_WAIT_TIME_S of the head node "
             "(3 s by default).")


def _job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("submission_id", help="the id `orchestrator submit` printed (raysubmit_...)")
    add_address_argument(p)
    return p


def logs_main(argv: list[str]) -> int:
    p = _job_parser("orchestrator logs", "Print a submitted sweep's output (its driver's logs).")
    p.add_argument("--follow", action="store_true", help="keep printing until the job ends; exit 0 if it succeeded")
    args = p.parse_args(argv)
    return guarded(p.prog, lambda: _logs(args))


def _logs(args: argparse.Namespace) -> int:
    address = resolve_address(args.address)
    client = connect(address)
    if args.follow:
        return follow(client, address, args.submission_id)
    with translated(address):
        print(client.get_job_logs(args.submission_id), end="")
    return EXIT_OK


def stop_main(argv: list[str]) -> int:
    p = _job_parser("orchestrator stop", STOP_HELP)
    args = p.parse_args(argv)
    return guarded(p.prog, lambda: _stop(args))


def _stop(args: argparse.Namespace) -> int:
    address, sid = resolve_address(args.address), args.submission_id
    client = connect(address)
    with translated(address):
        was_running = client.stop_job(sid)
        info = wait_for_end(client, sid, END_WAIT_S)
    status = info.status.value
    if not was_running:
        print(f"job {sid} was not running; it is {status}")
    elif status in ENDED:
        print(f"job {sid} {status}")
    else:
        print(f"job {sid} is still {status} after {END_WAIT_S:g} s; Ray will kill it. Check: "
              f"{logs_command(address, sid)}")
        return EXIT_FAILED
    return EXIT_OK
