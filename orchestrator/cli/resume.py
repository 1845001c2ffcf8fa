"""`orchestrator resume <sweep>`: run a sweep's last `orchestrator run` command again, from the directory it ran in.

Runs already FINISHED are skipped and runs a dead driver left RUNNING are marked and rerun, exactly as when the same
command is typed again; this saves finding that command. Extra arguments are added to it (e.g. --rerun-failed).
"""

from __future__ import annotations

import argparse
import json
import os

from orchestrator.tracking import DEFAULT_TRACKING_URI as DEFAULT_URI


def last_command(uri: str, sweep: str) -> tuple[list[str], str]:
    """The arguments and working directory of the newest launch of `sweep` that `orchestrator run` started."""
    from orchestrator.cli.run import COMMAND_TAG, CONFIG_DIR_TAG, CWD_TAG
    from orchestrator.errors import ConfigError, SweepNotFoundError
    from orchestrator.masking import MASK
    from orchestrator.tracking.store import MlflowStore

    store = MlflowStore(uri, sweep)
    if store.experiment_id() is None:
        raise SweepNotFoundError(sweep, uri, store.experiment_names())
    parents = store.parent_runs(f"tags.`{COMMAND_TAG}` != ''", newest_first=True, max_results=1)
    if not parents:
        raise ConfigError("sweep", f"no launch of {sweep!r} was started by `orchestrator run` (a Hydra multirun resumes "
                                   "by running its own command again)")
    tags = parents[0].data.tags
    overrides = json.loads(tags[COMMAND_TAG])
    hidden = [o.split("=", 1)[0] for o in overrides if o.endswith(f"={MASK}")]
    if hidden:
        raise ConfigError("sweep", f"its command set secret-looking values that were not recorded ({', '.join(hidden)}); "
                                   "run the original command again instead")
    config_dir = ["--config-dir", tags[CONFIG_DIR_TAG]] if tags.get(CONFIG_DIR_TAG) else []
    return [*overrides, *config_dir], tags.get(CWD_TAG, "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator resume", description=__doc__)
    parser.add_argument("sweep", help="sweep name (the MLflow experiment)")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help=f"MLflow tracking URI (default {DEFAULT_URI})")
    args, extra = parser.parse_known_args(argv)

    from orchestrator.cli import run
    from orchestrator.errors import OrchestratorError
    from orchestrator.tracking import absolute_uri

    uri = absolute_uri(args.tracking_uri)
    try:
        overrides, cwd = last_command(uri, args.sweep)
    except OrchestratorError as exc:
        print(f"error: {exc}")
        return run.EXIT_BAD_INPUT
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)  # where the sweep's own ./conf and relative paths are
    command = [o for o in overrides if not o.lstrip("+~").startswith("tracking.uri=")] + [f"tracking.uri={uri}", *extra]
    print(f"resuming {args.sweep!r} from {os.getcwd()}: orchestrator run {' '.join(command)}")
    return run.main(command)
