"""The sampler thread lives exactly as long as the run, also when the job raises."""

from __future__ import annotations

import threading

import pytest

from orchestrator.energy import RunMeter
from orchestrator.testing.fake_nvml import FakeBoard

NAME = "orchestrator-energy-sampler"


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == NAME]


@pytest.fixture
def board(fake_nvml) -> FakeBoard:
    board = FakeBoard("GPU-a", energy_mj=0)
    fake_nvml([board])
    return board


def test_sampler_thread_runs_during_the_run_and_stops_with_it(board, no_rapl):
    meter = RunMeter("0", sample_interval_s=0.005, rapl_root=no_rapl).start()
    assert len(sampler_threads()) == 1
    meter.stop()
    assert sampler_threads() == []


def test_sampler_thread_stops_when_the_job_raises(board, no_rapl):
    meter = RunMeter("0", sample_interval_s=0.005, rapl_root=no_rapl)
    with pytest.raises(ValueError, match="job failed"), meter:
        raise ValueError("job failed")
    assert sampler_threads() == []
    assert meter.reading is not None and meter.reading.tags["energy_source"] == "nvml_power"


def test_a_hundred_runs_leak_no_threads(board, no_rapl):
    before = threading.active_count()
    for _ in range(100):
        with RunMeter("0", sample_interval_s=0.001, rapl_root=no_rapl):
            pass
    assert threading.active_count() == before
    assert sampler_threads() == []


def test_no_thread_is_started_when_nothing_can_be_measured(no_rapl):
    meter = RunMeter(None, rapl_root=no_rapl).start()
    assert sampler_threads() == []
    meter.stop()
