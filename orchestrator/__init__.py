"""orchestrator: scaling-law sweeps, from Hydra configs to fitted laws and Pareto frontiers.

    import orchestrator as orc
    sweep = orc.load_sweep("lm-scaling")
    fit = orc.fit_scaling_law(sweep.runs, form="chinchilla", bootstrap=1000)
    lr = orc.fit_optimal_hparams(sweep.runs, hparam="lr", over=["n_params", "tokens"], loss="val_loss")
    front = orc.pareto_front(sweep.runs, {"cost_usd": "min", "val_loss": "min"})

Names load on first use, so `import orchestrator` imports none of ray, mlflow, pynvml, torch, scipy, pandas,
matplotlib, omegaconf or hydra. Everything not listed here is internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.analysis._hypervolume import hypervolume
    from orchestrator.analysis.hparams import fit_optimal_hparams
    from orchestrator.analysis.isoflop import fit_isoflop
    from orchestrator.analysis.grouped import grouped_front
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.analysis.plots import plot_isoflop, plot_pareto_front, plot_scaling_fit
    from orchestrator.analysis.scaling import fit_scaling_law
    from orchestrator.sweeps import Sweep, load_sweep

# Public name -> module that defines it.
_EXPORTS = {
    "load_sweep": "orchestrator.sweeps",
    "Sweep": "orchestrator.sweeps",
    "fit_scaling_law": "orchestrator.analysis.scaling",
    "fit_isoflop": "orchestrator.analysis.isoflop",
    "fit_optimal_hparams": "orchestrator.analysis.hparams",
    "pareto_front": "orchestrator.analysis.pareto",
    "grouped_front": "orchestrator.analysis.grouped",
    "hypervolume": "orchestrator.analysis._hypervolume",
    "plot_scaling_fit": "orchestrator.analysis.plots",
    "plot_isoflop": "orchestrator.analysis.plots",
    "plot_pareto_front": "orchestrator.analysis.plots",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
