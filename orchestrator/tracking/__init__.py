"""MLflow tracking: the store, the single writer, and where a store is by default."""

from __future__ import annotations

import os

# Where runs are tracked unless told otherwise: a SQLite file in the working directory.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
_SQLITE = "sqlite:///"


def absolute_uri(uri: str, cwd: str | None = None) -> str:
    """sqlite:///relative.db made absolute against `cwd` (default: this process's), so every process opens the same
    file whatever its own working directory; other URIs unchanged."""
    if uri.startswith(_SQLITE) and not uri.startswith(_SQLITE + "/"):
        return _SQLITE + os.path.abspath(os.path.join(cwd or os.getcwd(), uri[len(_SQLITE):]))
    return uri
