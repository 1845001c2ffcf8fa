"""The Ray Jobs API as `orchestrator submit`, `logs` and `stop` use it: where the cluster is, errors translated.

The job API is HTTP on the head node's dashboard port (8265), behind Ray's token auth. Ray's connection and auth
errors become ClusterError here, saying what to do about them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from orchestrator.environ import scoped_env
from orchestrator.errors import ClusterError, ConfigError

# 1: the job did not succeed, or the cluster could not be reached or refused the request.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
HTTP = ("http://", "https://")
# Ray loggers that set themselves to INFO.
QUIET_LOGGERS = ("ray", "ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk")
# Seconds `stop` waits for the job to end (and `--follow`, after the job's log stream closes), and the poll period.
END_WAIT_S, POLL_S = 30.0, 0.5
AUTH_HELP = ("Ray clusters use token authentication: set RAY_AUTH_MODE=token here and put the cluster's token "
             "(`ray get-auth-token` on the head node prints it) in ~/.ray/auth_token, or point RAY_AUTH_TOKEN_PATH "
             "at a file that holds it")


def add_address_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", metavar="URL",
                   help="the cluster's job API, http://<head>:8265 (default: $RAY_API_SERVER_ADDRESS, or $RAY_ADDRESS "
                        "when it is an http URL)")


def resolve_address(flag: str | None) -> str:
    """The job API URL from --address, else $RAY_API_SERVER_ADDRESS, else $RAY_ADDRESS when it is an http URL (it is
    usually the GCS address ray.init takes); ConfigError naming --address when there is none."""
    ray_address = os.environ.get("RAY_ADDRESS", "")
    given = flag or os.environ.get("RAY_API_SERVER_ADDRESS") or (ray_address if ray_address.startswith(HTTP) else "")
    if not given:
        raise ConfigError("--address", "give the cluster's job API, e.g. --address http://<head-node>:8265 "
                                       "(or set RAY_API_SERVER_ADDRESS)")
    url = given if "://" in given else f"http://{given}"
    if not url.startswith(HTTP):
        raise ConfigError("--address", f"expected the job API's URL, http://<head-node>:8265; got {given!r}")
    return url.rstrip("/")


def is_local(address: str) -> bool:
    return urlsplit(address).hostname in ("127.0.0.1", "localhost", "::1")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def translated(address: str) -> Iterator[None]:
    """Ray's auth, connection and request errors as ClusterError saying what to do."""
    import aiohttp
    import requests
    from ray.exceptions import AuthenticationError

    try:
        yield
    except AuthenticationError as exc:
        raise ClusterError(f"{address} refused the request ({_first_line(exc)}). {AUTH_HELP}") from exc
    except aiohttp.ClientResponseError as exc:
        if exc.status not in (401, 403):
            raise ClusterError(f"{address}: {exc.status} {exc.message}") from exc
        raise ClusterError(f"{address} refused the request ({exc.status} {exc.message}). {AUTH_HELP}") from exc
    except (ConnectionError, requests.exceptions.RequestException, aiohttp.ClientError) as exc:
        raise ClusterError(f"cannot reach the Ray job API at {address} ({_first_line(exc)}); is the head node up, "
                           "and is this its dashboard port (8265 by default)?") from exc
    except RuntimeError as exc:  # the job API's answer to a bad request, e.g. an unknown submission id
        raise ClusterError(f"{address}: {_first_line(exc)}") from exc


def connect(address: str) -> Any:
    """A JobSubmissionClient for `address` (Ray lets RAY_ADDRESS override its argument; here --address wins)."""
    import logging

    from ray.job_submission import JobSubmissionClient

    for chatty in QUIET_LOGGERS:  # their INFO lines (each file left out of the upload, ...) are not for users
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with translated(address), scoped_env({"RAY_API_SERVER_ADDRESS": address}):
        return JobSubmissionClient(address)


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run `body`: bad input exits 2, an unreachable or refusing cluster 1, each with one line on stderr."""
    try:
        return body()
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ClusterError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def logs_command(address: str, submission_id: str) -> str:
    return f"orchestrator logs {submission_id} --address {address} --follow"


def stop_command(address: str, submission_id: str) -> str:
    return f"orchestrator stop {submission_id} --address {address}"


def wait_for_end(client: Any, submission_id: str, deadline_s: float) -> Any:
    """The job's info once it has ended, or as it is after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    info = client.get_job_info(submission_id)
    while info.status.value not in ENDED and time.monotonic() < deadline:
        time.sleep(POLL_S)
        info = client.get_job_info(submission_id)
    return info


def stream_logs(client: Any, submission_id: str) -> None:
    """Print the job's output as it comes, until the job ends."""
    import asyncio

    async def tail() -> None:
        async for chunk in client.tail_job_logs(submission_id):
            print(chunk, end="", flush=True)

    asyncio.run(tail())


def follow(client: Any, address: str, submission_id: str) -> int:
    """Stream the job's logs to its end, then say how it ended: 0 if it SUCCEEDED, 1 if not. Ctrl-C only stops
    following; the job keeps running."""
    try:
        with translated(address):
            stream_logs(client, submission_id)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {submission_id} keeps running on the cluster.\n"
              f"  follow again: {logs_command(address, submission_id)}\n"
              f"  stop it:      {stop_command(address, submission_id)}")
        return EXIT_INTERRUPTED
    with translated(address):
        info = wait_for_end(client, submission_id, END_WAIT_S)
    status = info.status.value
    print(f"job {submission_id} {status}" + (f": {info.message}" if info.message and status != "SUCCEEDED" else ""))
    return EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED
