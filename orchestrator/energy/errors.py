"""Energy errors: every vendor (NVML, sysfs) failure is translated into one of these at the boundary.

`code` is a short stable identifier (it starts the `energy_unavailable_reason` tag); the message says what to do.
"""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class EnergyError(OrchestratorError):
    """A meter could not read what it needed."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class EnergyUnavailableError(EnergyError):
    """No energy can be measured for this device or run (no driver, no permission, unknown device, ...)."""


class NotSupportedError(EnergyError):
    """This device does not provide this one reading (e.g. no total-energy counter before Volta)."""
