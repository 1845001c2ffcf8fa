"""The project's own exception types; vendor errors are translated into these at the boundary."""

from __future__ import annotations


class OrchestratorError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(OrchestratorError, ValueError):
    """A sweep or job config is invalid; raised before any run starts and before anything is written."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class InfeasibleResourcesError(ConfigError):
    """A run asks for resources that no node of the cluster can ever provide."""


class TrackingError(OrchestratorError):
    """The tracking store could not be read or written."""


class SweepNotFoundError(ConfigError):
    """The tracking store has no sweep (MLflow experiment) of that name; `available` lists the ones it has."""

    def __init__(self, name: str, tracking_uri: str, available: list[str], detail: str = "") -> None:
        self.name = name
        self.available = available
        listing = ", ".join(repr(a) for a in available) if available else "none"
        super().__init__("sweep", f"no sweep named {name!r} in {tracking_uri}{detail}; sweeps there: {listing}")


class ClusterError(OrchestratorError):
    """A Ray cluster could not be reached, refused a request (e.g. a missing auth token), or does not know a job."""


class SweepBusyError(OrchestratorError):
    """Another live driver is running this sweep now; launching it again would run its runs twice."""
