"""`python -m orchestrator <command>`: the same as the `orchestrator` console script (e.g. for `ray job submit`)."""

import sys

from orchestrator.cli.main import main

sys.exit(main())
