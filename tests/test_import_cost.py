"""`import orchestrator` is cheap: the public verbs load on first use, and the heavy libraries only when needed."""

from __future__ import annotations

import subprocess
import sys

HEAVY = {"ray", "mlflow", "pynvml", "torch", "scipy", "pandas", "numpy", "matplotlib", "omegaconf", "hydra"}
PUBLIC = {"load_sweep", "Sweep", "fit_scaling_law", "fit_isoflop", "pareto_front", "hypervolume",
          "plot_scaling_fit", "plot_isoflop", "plot_pareto_front", "grouped_front",
          "fit_optimal_hparams"}


def _top_level_modules_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(','.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(out.strip().split(","))


def test_importing_orchestrator_loads_no_heavy_library():
    assert not _top_level_modules_after("import orchestrator") & HEAVY


def test_the_public_names_are_exactly_the_users_verbs():
    import orchestrator

    assert set(orchestrator.__all__) == PUBLIC
    assert PUBLIC <= set(dir(orchestrator))


def test_every_public_name_resolves_to_its_definition():
    import orchestrator
    from orchestrator.analysis import plots
    from orchestrator.analysis._hypervolume import hypervolume
    from orchestrator.analysis.hparams import fit_optimal_hparams
    from orchestrator.analysis.isoflop import fit_isoflop
    from orchestrator.analysis.pareto import pareto_front
    from orchestrator.analysis.scaling import fit_scaling_law
    from orchestrator.sweeps import Sweep, load_sweep

    assert orchestrator.fit_optimal_hparams is fit_optimal_hparams
    assert orchestrator.load_sweep is load_sweep and orchestrator.Sweep is Sweep
    assert orchestrator.fit_scaling_law is fit_scaling_law and orchestrator.fit_isoflop is fit_isoflop
    assert orchestrator.pareto_front is pareto_front and orchestrator.hypervolume is hypervolume
    assert orchestrator.plot_pareto_front is plots.plot_pareto_front


def test_reaching_load_sweep_and_the_fits_loads_no_tracking_scheduler_or_plotting_library():
    loaded = _top_level_modules_after("import orchestrator as orc; orc.load_sweep; orc.Sweep; orc.fit_scaling_law; "
                                      "orc.fit_isoflop; orc.pareto_front; orc.hypervolume; orc.fit_optimal_hparams")
    assert not loaded & {"ray", "mlflow", "pynvml", "torch", "scipy", "matplotlib", "omegaconf", "hydra"}


def test_an_unknown_name_is_an_attribute_error_and_submodules_still_import():
    code = ("import orchestrator\ntry:\n    orchestrator.nope\nexcept AttributeError as e:\n    print(e)\n"
            "from orchestrator import errors; print(errors.ConfigError.__name__)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.splitlines() == ["module 'orchestrator' has no attribute 'nope'", "ConfigError"]
