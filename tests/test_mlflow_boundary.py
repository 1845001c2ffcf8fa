"""MLflow is reached through one module, orchestrator/tracking/store.py (STYLE.md 12): what is made fast, batched or
outage-proof there (its error translation: unreachable → TrackingUnreachable, a refused write → TrackingError) then
holds for every read and write. These tests read the package's source with `ast`, so a new module that imports
mlflow, builds its own MlflowClient or reaches through a store to its raw `client` fails here, naming file:line.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import Iterator

PACKAGE = Path(__file__).resolve().parents[1] / "orchestrator"
STORE = "orchestrator/tracking/store.py"
# (file, what) pairs allowed outside the store, each with why it must stay.
ALLOWED = {
    # The store's error translation (`MlflowStore._vendor` calls `auth_refusal`) recognises MLflow's 401/403 here.
    ("orchestrator/tracking/auth.py", "import mlflow.exceptions"),
}


def _root_name(node: ast.expr) -> str:
    """The last identifier of `store`, `self.store`, `self._store`: what a `.client` is read from."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _mlflow_uses(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, what) for each import of mlflow, each mention of MlflowClient, each `<store>.client`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "mlflow" or alias.name.startswith("mlflow."):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                (node.module == "mlflow" or node.module.startswith("mlflow.")):
            yield node.lineno, f"import {node.module}"
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) and \
                str(node.args[0].value).split(".")[0] == "mlflow" and \
                _root_name(node.func) in ("import_module", "__import__"):
            yield node.lineno, f"import {node.args[0].value}"
        elif isinstance(node, ast.Name) and node.id == "MlflowClient" or \
                isinstance(node, ast.Attribute) and node.attr == "MlflowClient":
            yield node.lineno, "MlflowClient"
        elif isinstance(node, ast.Attribute) and node.attr == "client" and "store" in _root_name(node.value).lower():
            yield node.lineno, "store.client"


@cache
def _uses_outside_the_store() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE.parent).as_posix()
        if name == STORE:
            continue
        for line, what in _mlflow_uses(ast.parse(path.read_text(), filename=name)):
            found.setdefault((name, what), []).append(line)
    return found


def test_only_the_store_imports_mlflow_or_uses_its_client():
    found = _uses_outside_the_store()
    stray = sorted(f"{name}:{line}: {what}" for (name, what), lines in found.items() if (name, what) not in ALLOWED
                   for line in lines)
    assert not stray, ("MLflow reached outside orchestrator/tracking/store.py; add a named MlflowStore method (wrapped "
                       "in `self._vendor(...)`) and call that instead:\n" + "\n".join(stray))


def test_every_allowed_exception_is_still_needed():
    found = _uses_outside_the_store()
    assert not [entry for entry in ALLOWED if entry not in found], "drop allow-list entries that no longer occur"


def test_the_check_catches_each_way_around_the_store():
    source = ("import mlflow\nfrom mlflow.entities import Metric\nfrom mlflow.tracking import MlflowClient\n"
              "importlib.import_module('mlflow.artifacts')\nstore.client.search_runs([])\nself._store.client\n"
              "job_client.submit_job()\nself.client.list_jobs()\nclient = MlflowClient(uri)\n")
    assert [(line, what) for line, what in sorted(_mlflow_uses(ast.parse(source)))] == [
        (1, "import mlflow"), (2, "import mlflow.entities"), (3, "import mlflow.tracking"),
        (4, "import mlflow.artifacts"), (5, "store.client"), (6, "store.client"), (9, "MlflowClient")]
