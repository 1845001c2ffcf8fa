"""Power limits on one node, with NVML faked in this process: how runs hold a board's limit, share it, give it back,
and how a limit left by a process that died is put back; the fake's limit behaviour the meter relies on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from orchestrator.energy import power_limits
from orchestrator.energy.power_limits import BoardLimits, NodeLimits, PowerLimitError, check_limits, hold
from orchestrator.errors import ConfigError
from orchestrator.testing.fake_nvml import INTEGRATED, FakeBoard

A, B = "GPU-aaaaaaaa-0000-0000-0000-000000000000", "GPU-bbbbbbbb-0000-0000-0000-000000000000"


@pytest.fixture
def node(fake_nvml, tmp_path, monkeypatch):
    monkeypatch.setenv(power_limits.RECORDS_ENV, str(tmp_path / "held"))
    monkeypatch.setattr(power_limits, "CONFLICT_WAIT_S", 0.3)
    return fake_nvml([FakeBoard(A, pci_bus=0), FakeBoard(B, pci_bus=1)])


def test_a_run_holds_its_limit_on_its_own_boards_and_gives_it_back(node):
    held = hold(("frac", 0.5), "run-1", visible_devices="1", device_order="PCI_BUS_ID")
    assert [b.limit_now_mw for b in node.boards] == [700_000, 350_000]
    assert held.tags == {"power_limit_w": "350", "power_limit_default_w": "700", "power_limit_status": "set"}
    held.release()
    assert [b.limit_now_mw for b in node.boards] == [700_000, 700_000]


def test_runs_sharing_a_board_share_one_limit_and_the_last_one_out_restores(node):
    node.boards[0].limit_mw = 600_000  # an operator's own setting, not the default: that is what comes back
    first = hold(("w", 300), "run-1", visible_devices="0", device_order="PCI_BUS_ID")
    second = hold(("w", 300), "run-2", visible_devices="0", device_order="PCI_BUS_ID")
    with pytest.raises(PowerLimitError, match="held at 300 W by run.s. run-1, run-2; this run asks 400 W"):
        hold(("w", 400), "run-3", visible_devices="0", device_order="PCI_BUS_ID")
    first.release()
    assert node.boards[0].limit_now_mw == 300_000
    second.release()
    assert node.boards[0].limit_now_mw == 600_000


def test_a_limit_left_by_a_process_that_died_is_put_back(node, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    held = hold(("w", 250), "run-1", visible_devices="0", device_order="PCI_BUS_ID")
    record = tmp_path / "held" / f"{A}.json"
    record.write_text(record.read_text().replace(f'"pid": {__import__("os").getpid()}', f'"pid": {pid}'))
    held.boards = []  # this process no longer holds it: as if it had been killed mid-run
    assert node.boards[0].limit_now_mw == 250_000
    assert power_limits.restore_left_behind() == [f"{__import__('socket').gethostname()}: {A}"]
    assert node.boards[0].limit_now_mw == 700_000 and not record.exists()


def test_without_permission_a_run_fails_or_goes_on_at_the_default_when_not_required(node):
    node.boards[0].limit_settable = False
    with pytest.raises(PowerLimitError, match="needs root .or CAP_SYS_ADMIN."):
        hold(("frac", 0.7), "run-1", visible_devices="0", device_order="PCI_BUS_ID")
    held = hold(("frac", 0.7), "run-1", required=False, visible_devices="0", device_order="PCI_BUS_ID")
    assert held.tags["power_limit_status"] == "not_permitted" and held.tags["power_limit_w"] == "700"
    held.release()


def test_the_check_before_a_sweep_names_the_field_and_the_allowed_range():
    board = BoardLimits(A, "NVIDIA H100 80GB HBM3", 700, 200, 700, 700)
    with pytest.raises(ConfigError, match=r"resources.power_limit_frac: 0.2 of the default 700 W = 140 W is outside "
                                          r"what NVIDIA H100 80GB HBM3 .* allows: 200 to 700 W"):
        check_limits([("frac", 0.2)], [NodeLimits("n1", (board,))], required=True)
    check_limits([("frac", 0.5), ("frac", 1.0)], [NodeLimits("n1", (board,))], required=True)
    denied = BoardLimits(A, "NVIDIA H100 80GB HBM3", 700, 200, 700, 700, "nvml_no_permission: ...")
    with pytest.raises(ConfigError, match="power_limit_required=false"):
        check_limits([("w", 300)], [NodeLimits("n1", (denied,))], required=True)
    check_limits([("w", 300)], [NodeLimits("n1", (denied,))], required=False)
    with pytest.raises(ConfigError, match="cannot read GPU power limits on node n2: nvml_library_not_found"):
        check_limits([("w", 300)], [NodeLimits("n2", error="nvml_library_not_found: no NVIDIA driver")], True)


def test_the_fake_board_draws_up_to_its_limit_and_its_counter_integrates_that(fake_nvml, clock):
    fake = fake_nvml([FakeBoard(A, power_mw=500_000, energy_mj=INTEGRATED, clock=clock)])
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    clock.advance(10)
    fake.nvmlDeviceSetPowerManagementLimit(handle, 300_000)
    clock.advance(10)
    assert fake.nvmlDeviceGetPowerUsage(handle) == 300_000
    assert fake.nvmlDeviceGetTotalEnergyConsumption(handle) == 10 * 500_000 + 10 * 300_000
    assert fake.nvmlDeviceGetPowerManagementLimitConstraints(handle) == [200_000, 700_000]
    with pytest.raises(fake.NVMLError):  # outside the board's range, as NVML refuses it
        fake.nvmlDeviceSetPowerManagementLimit(handle, 100_000)


def test_the_scheduler_gives_an_executor_sharing_a_board_only_runs_at_the_limit_its_board_holds():
    from collections import deque

    from orchestrator.execution.cluster import ClusterInfo
    from orchestrator.execution.pool import Slot
    from orchestrator.execution.scheduler import Scheduler, SchedulerOptions
    from orchestrator.records import Resources, RunSpec

    half = Resources(gpus=0.5)
    scheduler = Scheduler(ClusterInfo(()), events=None, options=SchedulerOptions(), writer=None)
    scheduler.power_limited = True
    on_board_0 = [Slot(half, None, None, info={"ray_node": "n", "gpu_ids": ["0"]}) for _ in range(2)]
    on_board_1 = Slot(half, None, None, info={"ray_node": "n", "gpu_ids": ["1"]})
    scheduler.slots = [*on_board_0, on_board_1]

    def spec(key: str, frac: float) -> RunSpec:
        return RunSpec(key, {}, Resources(gpus=0.5, power_limit_frac=frac), key)

    running = spec("running", 0.5)
    on_board_0[0].pending.append("ref")
    scheduler.in_flight["ref"] = (on_board_0[0], running)
    queue = deque([spec("a", 1.0), spec("b", 0.5), spec("c", 1.0)])
    assert scheduler._next_for(on_board_0[1], queue).run_key == "b"  # its board runs at 0.5: skips a
    assert scheduler._next_for(on_board_0[1], queue) is None  # nothing at 0.5 left: it waits
    assert scheduler._next_for(on_board_1, queue).run_key == "a"  # a board no run holds takes the first
    assert [s.run_key for s in queue] == ["c"]
