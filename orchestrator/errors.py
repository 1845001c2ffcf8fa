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
