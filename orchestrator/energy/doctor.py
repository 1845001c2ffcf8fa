"""Which energy meters work on this machine, and why not: structured findings (`diagnose`) and their text
(`render_report`), kept apart so a CLI or a test can use either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

from orchestrator.energy import rapl
from orchestrator.energy.devices import parse_visible_devices
from orchestrator.energy.errors import EnergyError, NotSupportedError

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Finding:
    """One check: what was probed, how it went (ok | warn: works, degraded | fail) and the detail to act on."""

    check: str
    status: str
    detail: str


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...]
    # energy_source a run holding a GPU would get here, then one holding none ("unavailable: <reason>" when so).
    gpu_run_source: str
    cpu_run_source: str

    def status_of(self, check: str) -> str | None:
        return next((f.status for f in self.findings if f.check == check), None)


def diagnose(
    visible_devices: str | None = None,
    cuda_device_order: str | None = None,
    rapl_root: str | os.PathLike[str] = rapl.DEFAULT_RAPL_ROOT,
) -> DoctorReport:
    """Probe NVML (import, init, every board's readings), how `visible_devices` resolves, and each RAPL domain."""
    findings: list[Finding] = []
    gpu_source = _diagnose_nvml(findings, visible_devices, cuda_device_order)
    cpu_source = _diagnose_rapl(findings, rapl_root)
    return DoctorReport(tuple(findings), gpu_source, cpu_source)


def _probe(fn: Callable[[], Any]) -> tuple[str, str]:
    """(status, detail) of one NVML reading: ok, warn for not supported, fail for other errors."""
    try:
        return OK, str(fn())
    except NotSupportedError as err:
        return WARN, err.message
    except EnergyError as err:
        return FAIL, str(err)


def _diagnose_nvml(findings: list[Finding], visible_devices: str | None, device_order: str | None) -> str:
    try:
        from orchestrator.energy import _nvml
    except ImportError as err:
        findings.append(Finding("nvml.import", FAIL, f"cannot import pynvml ({err}); pip install nvidia-ml-py"))
        return "unavailable: nvml_not_installed"
    findings.append(Finding("nvml.import", OK, f"pynvml imported (nvidia-ml-py {_package_version('nvidia-ml-py')})"))
    try:
        boards = _nvml.boards()
    except EnergyError as err:
        findings.append(Finding("nvml.init", FAIL, str(err)))
        return f"unavailable: {err.code}"
    findings.append(Finding("nvml.init", OK if boards else WARN, f"{len(boards)} GPU(s) found"))
    for i, board in enumerate(boards):
        findings.extend(_board_findings(_nvml, i, board))
    if visible_devices:
        findings.append(_resolution_finding(visible_devices, device_order))
    return _gpu_source(findings, len(boards))


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "version unknown"


def _board_findings(nvml: Any, i: int, board: Any) -> list[Finding]:
    prefix = f"gpu{i}"
    pci = "{:04x}:{:02x}:{:02x}".format(*board.pci)
    found = [Finding(prefix, OK, f"{board.name} {board.uuid} PCI {pci}")]
    status, detail = _probe(lambda: f"{nvml.energy_counter_mj(board.handle)} mJ")
    fallback = "" if status == OK else "; power sampling used"
    found.append(Finding(f"{prefix}.energy_counter", status, detail + fallback))
    for api, note in ((nvml.POWER_INSTANT, ""), (nvml.POWER_USAGE, " (a 1 s average on H100-class GPUs)")):
        status, detail = _probe(partial(_power_text, nvml, board.handle, api))
        found.append(Finding(f"{prefix}.{api}", status, detail + (note if status == OK else "")))
    if board.mig_enabled:
        found.append(Finding(f"{prefix}.mig", WARN, "MIG mode: name slices by MIG UUID; their energy is apportioned"))
    found.append(_power_limit_finding(nvml, prefix, board.handle))
    return found


def _power_limit_finding(nvml: Any, prefix: str, handle: Any) -> Finding:
    """The board's power limit, its range, and whether this user may set it (resources.power_limit_w/_frac)."""
    try:
        now, default = nvml.power_limit_mw(handle) / 1000, nvml.default_power_limit_mw(handle) / 1000
        low, high = (v / 1000 for v in nvml.power_limit_range_mw(handle))
    except EnergyError as err:
        return Finding(f"{prefix}.power_limit", WARN, f"cannot read power limits: {err}")
    detail = f"{now:g} W (default {default:g} W, allowed {low:g} to {high:g} W)"
    try:
        nvml.set_power_limit_mw(handle, int(now * 1000))  # the limit it has: a change of nothing, where permitted
    except EnergyError as err:
        return Finding(f"{prefix}.power_limit", WARN, f"{detail}; not settable here ({err.code}): power-limit "
                                                      "sweeps need root or CAP_SYS_ADMIN on the Ray workers")
    return Finding(f"{prefix}.power_limit", OK, f"{detail}; settable")


def _power_text(nvml: Any, handle: Any, api: str) -> str:
    return f"{nvml.read_power_w(handle, api):.1f} W"


def _resolution_finding(visible_devices: str, device_order: str | None) -> Finding:
    from orchestrator.energy.gpu import open_gpus

    order = device_order if device_order is not None else os.environ.get("CUDA_DEVICE_ORDER")
    opened = open_gpus(parse_visible_devices(visible_devices), order)
    if opened.unavailable_reason:
        return Finding("cuda_visible_devices", FAIL, f"{visible_devices!r}: {opened.unavailable_reason}")
    resolved = ", ".join(f"{i} -> {d.uuid} ({d.name})" for i, d in enumerate(opened.devices))
    return Finding("cuda_visible_devices", OK, f"{visible_devices!r}: {resolved or 'no GPU'}")


def _gpu_source(findings: list[Finding], n_boards: int) -> str:
    if not n_boards:
        return "unavailable: no GPU on this node"
    if all(f.status == OK for f in findings if f.check.endswith(".energy_counter")):
        return "nvml_counter"
    power_ok = any(f.status == OK for f in findings if f.check.endswith(("power_instant", "power_usage")))
    return "nvml_power" if power_ok else "unavailable: energy_not_supported"


def _diagnose_rapl(findings: list[Finding], root: str | os.PathLike[str]) -> str:
    domains = rapl.list_domains(root)
    if not domains:
        findings.append(Finding("rapl", FAIL, f"no RAPL domain under {root} (no powercap driver, or not mounted)"))
        return "unavailable: rapl_not_found"
    source = "unavailable: rapl_not_found: no package domain"
    for domain in domains:
        try:
            status, detail = OK, f"{domain.read_energy_uj()} uJ (wraps at {domain.max_energy_range_uj} uJ)"
        except EnergyError as err:
            status, detail = FAIL, str(err)
        if domain.is_package and source != "rapl":
            source = "rapl" if status == OK else f"unavailable: {detail}"
        findings.append(Finding(f"rapl.{domain.path.name}", status, f"{domain.name}: {detail}"))
    return source


def render_report(report: DoctorReport) -> str:
    """The report as text, one line per finding, then what a run would record here."""
    marks = {OK: "[ ok ]", WARN: "[warn]", FAIL: "[FAIL]"}
    lines = [f"{marks[f.status]} {f.check}: {f.detail}" for f in report.findings]
    lines.append(f"energy_source for a GPU run here: {report.gpu_run_source}")
    lines.append(f"energy_source for a CPU-only run here: {report.cpu_run_source}")
    return "\n".join(lines)
