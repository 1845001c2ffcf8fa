"""`orchestrator status <sweep>`: how many of a sweep's run_keys are FINISHED, PRUNED, FAILED, RUNNING, KILLED."""

from __future__ import annotations

import argparse
from collections import Counter

from orchestrator.tracking import DEFAULT_TRACKING_URI as DEFAULT_URI


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator status", description=__doc__)
    parser.add_argument("sweep", help="sweep name (the MLflow experiment)")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default {DEFAULT_URI})")
    args = parser.parse_args(argv)

    from orchestrator.errors import ConfigError
    from orchestrator.sweeps import require_existing_store
    from orchestrator.tracking.store import MlflowStore, best_statuses

    try:
        require_existing_store(args.tracking_uri)
    except ConfigError as exc:
        print(f"error: {exc}")
        return 2
    store = MlflowStore(args.tracking_uri, args.sweep)
    if store.experiment_id() is None:
        print(f"no sweep named {args.sweep!r} in {args.tracking_uri}")
        return 1
    runs = store.child_runs()
    by_key = Counter(best_statuses(runs).values())
    print(f"{args.sweep}: {sum(by_key.values())} run keys, {len(runs)} child runs over all launches")
    for status in ("FINISHED", "PRUNED", "FAILED", "RUNNING", "KILLED", "SCHEDULED"):
        if by_key.get(status):
            print(f"  {status:<9} {by_key[status]}")
    return 0
