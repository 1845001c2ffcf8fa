"""Importing the analysis package stays cheap: heavy libraries load only when a function needs them."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return set(out.strip().split(","))


def test_importing_analysis_loads_no_scipy_matplotlib_torch_or_pandas():
    loaded = _modules_after("import orchestrator.analysis")
    assert not loaded & {"scipy", "matplotlib", "torch", "pandas"}


def test_validating_a_spec_before_a_sweep_loads_no_heavy_library():
    code = "from orchestrator.analysis import validate_analysis_spec; validate_analysis_spec({'fits': []})"
    loaded = _modules_after(code)
    assert not loaded & {"scipy", "matplotlib", "torch", "pandas", "numpy"}


def test_fitting_does_not_load_matplotlib_or_scipy():
    loaded = _modules_after("from orchestrator.analysis import fit_scaling_law, pareto_front, fit_isoflop")
    assert not loaded & {"scipy", "matplotlib", "torch"}
