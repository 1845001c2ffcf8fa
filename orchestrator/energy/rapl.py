"""CPU package energy from RAPL through the Linux powercap sysfs tree (`<root>/intel-rapl:*`).

`cpu_energy_j` sums the top-level *package* domains (``intel-rapl:<n>`` named ``package-<n>``); sub-domains (core,
uncore, dram) and psys are not added, so nothing is counted twice. Each `energy_uj` counter wraps at
`max_energy_range_uj`; `PackageEnergy.update` adds the wrap-aware delta and must run at least once per wrap period
(minutes at full load) - the meter's sampler calls it every sample. The package is node-wide: every process on the
socket is in it, and it is not apportioned between concurrent runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from orchestrator.energy.errors import EnergyUnavailableError

DEFAULT_RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class RaplDomain:
    """One RAPL domain folder, e.g. ``/sys/class/powercap/intel-rapl:0`` named ``package-0``."""

    path: Path
    name: str
    max_energy_range_uj: int

    @property
    def is_package(self) -> bool:
        return self.path.name.count(":") == 1 and self.name.startswith("package")

    def read_energy_uj(self) -> int:
        """The counter now; EnergyUnavailableError when it cannot be read (root-only since Linux 5.10)."""
        try:
            return int((self.path / "energy_uj").read_text())
        except PermissionError as err:
            hint = "RAPL counters are root-only by default"
            raise EnergyUnavailableError("rapl_no_permission", f"{err}; {hint}") from err
        except (OSError, ValueError) as err:
            raise EnergyUnavailableError("rapl_unreadable", str(err)) from err


def wrap_delta_uj(before_uj: int, after_uj: int, max_energy_range_uj: int) -> int:
    """Energy between two reads of one counter, allowing for at most one wrap-around."""
    if after_uj >= before_uj:
        return after_uj - before_uj
    return after_uj + max_energy_range_uj - before_uj


def list_domains(root: str | os.PathLike[str] = DEFAULT_RAPL_ROOT) -> tuple[RaplDomain, ...]:
    """Every RAPL domain under `root` whose name and range can be read, sub-domains included."""
    domains = []
    for path in sorted(Path(root).glob("intel-rapl:*")):
        try:
            name = (path / "name").read_text().strip()
            max_range = int((path / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        domains.append(RaplDomain(path, name, max_range))
    return tuple(domains)


class PackageEnergy:
    """Accumulated energy of all CPU packages since it was opened."""

    def __init__(self, domains: tuple[RaplDomain, ...]) -> None:
        self._domains = domains
        self._last_uj = [d.read_energy_uj() for d in domains]
        self.energy_uj = 0

    @property
    def energy_j(self) -> float:
        return self.energy_uj / 1e6

    def update(self) -> None:
        """Read every counter and add what was used since the last read."""
        for i, domain in enumerate(self._domains):
            now_uj = domain.read_energy_uj()
            self.energy_uj += wrap_delta_uj(self._last_uj[i], now_uj, domain.max_energy_range_uj)
            self._last_uj[i] = now_uj


def open_packages(root: str | os.PathLike[str] = DEFAULT_RAPL_ROOT) -> PackageEnergy:
    """Start accumulating package energy; EnergyUnavailableError (with the reason) when RAPL is not readable."""
    packages = tuple(d for d in list_domains(root) if d.is_package)
    if not packages:
        raise EnergyUnavailableError("rapl_not_found", f"no readable RAPL package domain under {root}")
    return PackageEnergy(packages)
