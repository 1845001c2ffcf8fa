"""CUDA_VISIBLE_DEVICES resolves to NVML devices by UUID: indices through PCI order, UUIDs, MIG identifiers."""

from __future__ import annotations

import pytest

from orchestrator.energy.devices import parse_visible_devices
from orchestrator.testing.fake_nvml import FakeBoard, FakeMig

A = "GPU-aaaaaaaa-1111-1111-1111-111111111111"
B = "GPU-bbbbbbbb-2222-2222-2222-222222222222"
C = "GPU-cccccccc-3333-3333-3333-333333333333"
SLICE = "MIG-5e5e5e5e-4444-4444-4444-444444444444"


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        (None, ()),
        ("", ()),
        ("NoDevFiles", ()),
        ("0,1", ("0", "1")),
        (" 2 , 0 ", ("2", "0")),
        ("0,-1,1", ("0",)),  # CUDA stops at the first invalid entry
        ("1,01", ("1",)),  # and at a repeated one
        (f"{A},{B}", (A, B)),
        (SLICE, (SLICE,)),
        (f"MIG-{A}/1/0", (f"MIG-{A}/1/0",)),
    ],
)
def test_visible_devices_parse_as_cuda_reads_them(value, tokens):
    assert parse_visible_devices(value) == tokens


def three_boards_enumerated_out_of_pci_order() -> list[FakeBoard]:
    # NVML index order B, C, A; PCI bus order A (bus 1), B (bus 2), C (bus 3).
    return [
        FakeBoard(B, pci_bus=2, energy_mj=0),
        FakeBoard(C, pci_bus=3, energy_mj=0),
        FakeBoard(A, pci_bus=1, energy_mj=0),
    ]


def run(make_meter, clock, visible, boards, **kwargs):
    meter = make_meter(visible, **kwargs).start()
    clock.advance(2.0)
    for i, board in enumerate(boards):
        board.energy_mj = (i + 1) * 1_000_000  # board k draws (k + 1) kJ
    return meter.stop()


def test_integer_indices_map_through_pci_bus_order(fake_nvml, make_meter, clock):
    boards = three_boards_enumerated_out_of_pci_order()
    fake_nvml(boards)
    reading = run(make_meter, clock, "0", boards)
    assert reading.tags["gpu_uuid"] == A
    assert reading.metrics["gpu0_energy_j"] == pytest.approx(3000.0)  # A is boards[2]


def test_permuted_indices_keep_the_run_order_and_their_own_energy(fake_nvml, make_meter, clock):
    boards = three_boards_enumerated_out_of_pci_order()
    fake_nvml(boards)
    reading = run(make_meter, clock, "2,0", boards)
    assert reading.tags["gpu_uuid"] == f"{C},{A}"
    assert reading.metrics["gpu0_energy_j"] == pytest.approx(2000.0)
    assert reading.metrics["gpu1_energy_j"] == pytest.approx(3000.0)


def test_uuids_and_unique_uuid_prefixes_resolve_to_their_boards(fake_nvml, make_meter, clock):
    boards = three_boards_enumerated_out_of_pci_order()
    fake_nvml(boards)
    reading = run(make_meter, clock, f"{B},GPU-cccc", boards)
    assert reading.tags["gpu_uuid"] == f"{B},{C}"
    assert reading.metrics["gpu_energy_j"] == pytest.approx(1000.0 + 2000.0)


def test_a_uuid_prefix_matching_several_boards_is_unavailable(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard("GPU-abc1"), FakeBoard("GPU-abc2", pci_bus=1)])
    reading = run(make_meter, clock, "GPU-abc", [])
    assert reading.tags["energy_unavailable_reason"].startswith("device_not_found:")


def test_an_index_beyond_the_node_is_unavailable(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(A)])
    reading = run(make_meter, clock, "3", [])
    assert reading.tags["energy_unavailable_reason"].startswith("device_not_found:")
    assert "energy_j" not in reading.metrics


def test_fastest_first_order_on_identical_boards_is_pci_order(fake_nvml, make_meter, clock):
    boards = three_boards_enumerated_out_of_pci_order()
    fake_nvml(boards)
    reading = run(make_meter, clock, "1", boards, cuda_device_order="FASTEST_FIRST")
    assert reading.tags["gpu_uuid"] == B


def test_fastest_first_order_on_mixed_models_is_ambiguous_not_guessed(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(A, name="NVIDIA A100-SXM4-80GB", pci_bus=1), FakeBoard(B, name="NVIDIA H100", pci_bus=2)])
    reading = run(make_meter, clock, "0", [], cuda_device_order="FASTEST_FIRST")
    assert reading.tags["energy_unavailable_reason"].startswith("device_order_ambiguous:")
    by_pci = run(make_meter, clock, "0", [], cuda_device_order="PCI_BUS_ID")
    assert by_pci.tags["gpu_uuid"] == A


def test_device_order_defaults_to_the_environment(fake_nvml, make_meter, clock, monkeypatch):
    fake_nvml([FakeBoard(A, name="NVIDIA A100-SXM4-80GB", pci_bus=1), FakeBoard(B, name="NVIDIA H100", pci_bus=2)])
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert run(make_meter, clock, "1", [], cuda_device_order=None).tags["gpu_uuid"] == B


def mig_board() -> FakeBoard:
    return FakeBoard(A, energy_mj=0, migs=[FakeMig(SLICE, gi=1, ci=0, sms=16)], full_profile_sms=112)


def test_mig_uuid_resolves_to_its_slice_on_its_board_and_is_apportioned(fake_nvml, make_meter, clock):
    board = mig_board()
    fake_nvml([board])
    meter = make_meter(SLICE).start()
    clock.advance(10.0)
    board.energy_mj = 7_000_000
    reading = meter.stop()
    assert reading.tags["gpu_uuid"] == SLICE
    assert reading.tags["gpu_board_uuid"] == A
    assert reading.tags["gpu_name"].endswith("MIG 1g.10gb")
    assert reading.tags["energy_shared"] == "true"
    assert reading.metrics["gpu_board_energy_j"] == pytest.approx(7000.0)
    assert reading.metrics["energy_j"] == pytest.approx(7000.0 * 16 / 112)


def test_legacy_mig_identifier_resolves_to_the_same_slice(fake_nvml, make_meter, clock):
    fake_nvml([FakeBoard(B, pci_bus=0), mig_board()])
    meter = make_meter(f"MIG-{A}/1/0").start()
    clock.advance(2.0)
    reading = meter.stop()
    assert reading.tags["gpu_uuid"] == SLICE
    assert reading.tags["energy_share"] == f"{16 / 112:.6g}"


def test_a_whole_board_in_mig_mode_named_by_index_is_unsupported(fake_nvml, make_meter, clock):
    fake_nvml([mig_board()])
    reading = run(make_meter, clock, "0", [])
    assert reading.tags["energy_unavailable_reason"].startswith("mig_device_ambiguous:")
    assert "energy_j" not in reading.metrics


def test_a_slice_whose_board_fraction_nvml_cannot_give_is_unavailable_and_shared(fake_nvml, make_meter, clock):
    fake_nvml([mig_board()], errors={"nvmlDeviceGetAttributes_v2": 3})  # NVML_ERROR_NOT_SUPPORTED
    reading = run(make_meter, clock, SLICE, [])
    assert reading.tags["energy_unavailable_reason"].startswith("mig_share_unknown:")
    assert reading.tags["energy_shared"] == "true"
    assert "energy_j" not in reading.metrics
