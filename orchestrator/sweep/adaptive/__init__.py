"""`kind: adaptive`: a closed-loop planner that proposes runs from the runs that ended, under a budget.

    spec = parse_adaptive(cfg.sweep, default_in_flight=slots)     # ConfigError naming the field on bad input
    planner = AdaptivePlanner(spec)
    planner.ask(n) -> proposals; planner.tell(observation); planner.done; planner.budget(); planner.metrics()

Pure: no Ray, no MLflow, no clock. Importing this package loads numpy only; scipy and pandas load on first use.
"""

from __future__ import annotations

from orchestrator.sweep.adaptive.cost import MissingCostError
from orchestrator.sweep.adaptive.lawfit import LawEstimate
from orchestrator.sweep.adaptive.planner import AdaptivePlanner
from orchestrator.sweep.adaptive.spec import ADAPTIVE_KEYS, AdaptiveSpec, LawSpec, parse_adaptive

__all__ = ["ADAPTIVE_KEYS", "AdaptivePlanner", "AdaptiveSpec", "LawEstimate", "LawSpec", "MissingCostError",
           "parse_adaptive"]
