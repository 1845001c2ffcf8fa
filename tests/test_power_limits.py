"""GPU power limits as a sweep dimension, end to end: `orchestrator run` in a subprocess (its own embedded Ray with
logical GPUs, SQLite MLflow), NVML faked at the `pynvml` seam by a `SharedFakeNVML` file that the driver, the probe
tasks and every executor read and change (ORCHESTRATOR_FAKE_NVML), as processes on one node share its boards.

The job reads its board's limit through NVML while it runs, so "set before the job" is what the job saw; the fake's
event log (every limit set, by which process) and its final state say what was restored, and by whom.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.testing.fake_nvml import FakeBoard, SharedFakeNVML

DEFAULT_W, DEMAND_W = 700, 500

JOB = '''
import os, signal, time

from orchestrator.energy import _nvml, _resolve
from orchestrator.energy.devices import parse_visible_devices


def _limit_w():
    tokens = parse_visible_devices(os.environ.get("CUDA_VISIBLE_DEVICES"))
    board = _resolve.open_devices(tokens, "PCI_BUS_ID")[0]
    return _nvml.power_limit_mw(_nvml.handle_by_uuid(board.board_uuid)) / 1000, int(tokens[0])


def train(cfg, ctx):
    start = time.time()
    seen, board = _limit_w()
    if cfg.mode == "error":
        raise RuntimeError("the job failed")
    if cfg.mode == "hang":
        time.sleep(120)
    if cfg.mode == "kill" and ctx.attempt == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(cfg.sleep_s)
    seen_end, _ = _limit_w()
    return {"seen_limit_w": seen, "seen_limit_end_w": seen_end, "board": board, "t_start": start, "t_end": time.time()}
'''


def project(tmp_path: Path, sweep: str, boards: list[FakeBoard]) -> tuple[SharedFakeNVML, dict[str, str]]:
    (tmp_path / "power_job.py").write_text(JOB)
    (tmp_path / "conf" / "job").mkdir(parents=True)
    (tmp_path / "conf" / "sweep").mkdir()
    (tmp_path / "conf" / "job" / "power_probe.yaml").write_text(
        "# @package job\n_target_: power_job.train\nmode: ok\nsleep_s: 1.5\nseed: 0\n")
    (tmp_path / "conf" / "sweep" / "limits.yaml").write_text(textwrap.dedent(sweep))
    fake = SharedFakeNVML.create(tmp_path / "nvml.json", boards)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(ORCHESTRATOR_FAKE_NVML=str(tmp_path / "nvml.json"), ORCHESTRATOR_POWER_RECORDS=str(tmp_path / "held"))
    return fake, env


def boards(n: int, **options: object) -> list[FakeBoard]:
    return [FakeBoard(f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd", pci_bus=i, power_mw=DEMAND_W * 1000,
                      default_limit_mw=DEFAULT_W * 1000, **options) for i in range(n)]  # type: ignore[arg-type]


def run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator", "run", "job=power_probe", "+sweep=limits",
                           "tracking.uri=sqlite:///mlflow.db", "tracking.report=false", "energy.sample_interval_s=0.05",
                           *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def latest_runs(tmp_path: Path, name: str) -> dict[str, object]:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'", max_results=1000)
    latest: dict[str, object] = {}
    for r in sorted(runs, key=lambda r: r.info.start_time):
        latest[r.data.tags["run_key"]] = r
    return latest


def test_each_limit_is_its_own_run_set_before_the_job_and_restored_however_it_ends(tmp_path):
    fake, env = project(tmp_path, """\
        # @package sweep
        name: power-limits
        params:
          resources: {power_limit_frac: [0.5, 1.0]}
          job: {mode: [ok, error, hang, kill]}
        """, boards(2))
    done = run(tmp_path, env, "cluster.num_gpus=2", "execution.timeout_s=8")
    assert "Traceback" not in done.stderr, done.stderr

    runs = latest_runs(tmp_path, "power-limits")
    assert len(runs) == 8  # every (limit, mode) its own run_key
    by = {(r.data.params["resources.power_limit_frac"], r.data.params["mode"]): r for r in runs.values()}
    assert set(by) == {(f, m) for f in ("0.5", "1.0") for m in ("ok", "error", "hang", "kill")}
    for frac in (0.5, 1.0):
        limit = DEFAULT_W * frac
        ok, killed = by[(str(frac), "ok")], by[(str(frac), "kill")]
        for r in (ok, killed):  # the job ran under its limit, start to end; the limit and default are tagged
            assert r.info.status == "FINISHED"
            assert r.data.metrics["seen_limit_w"] == limit and r.data.metrics["seen_limit_end_w"] == limit
            assert r.data.metrics["power_limit_w"] == limit and r.data.metrics["power_limit_default_w"] == DEFAULT_W
            assert r.data.tags["power_limit_w"] == f"{limit:g}"
            assert r.data.tags["power_limit_default_w"] == f"{DEFAULT_W:g}"
            assert r.data.tags["power_limit_status"] == "set"
            # the board draws what it wants up to its limit, and the meter sees it
            assert r.data.metrics["power_mean_w"] == pytest.approx(min(DEMAND_W, limit), rel=0.02)
        assert killed.data.tags["attempt"] == "1"  # its first executor died mid-run; run again on a new one
        assert by[(str(frac), "error")].info.status == "FAILED"
        assert by[(str(frac), "error")].data.tags["cause"] == "job_error"
        assert by[(str(frac), "hang")].data.tags["cause"] == "timeout"

    # Every board is back at its default, nothing is held, and every limit set was undone.
    state = SharedFakeNVML(tmp_path / "nvml.json")
    assert [b.limit_now_mw for b in state.boards] == [DEFAULT_W * 1000] * 2
    assert not list((tmp_path / "held").glob("*.json"))
    events = fake.events()
    lowered = [e for e in events if e["limit_mw"] == DEFAULT_W * 500]
    assert lowered, events
    for e in lowered:  # each lowering is followed on its board by a restore to the default
        assert any(r["uuid"] == e["uuid"] and r["t"] > e["t"] and r["limit_mw"] == DEFAULT_W * 1000 for r in events)
    # The runs whose process died (killed, timed out) were restored by another process: a new executor or the driver.
    setters = {e["pid"] for e in lowered}
    restorers = {e["pid"] for e in events if e["limit_mw"] == DEFAULT_W * 1000}
    assert any(any(r["pid"] != e["pid"] and r["uuid"] == e["uuid"] and r["t"] > e["t"] for r in events
                   if r["limit_mw"] == DEFAULT_W * 1000) for e in lowered), (setters, restorers)


def test_fractional_runs_with_different_limits_never_share_a_board_at_once(tmp_path):
    _, env = project(tmp_path, """\
        # @package sweep
        name: power-packed
        params:
          resources: {power_limit_frac: [0.5, 1.0]}
          job: {seed: [0, 1, 2]}
        analysis:
          power: [{name: energy, eta: 1.0}, {name: time, eta: 0.0}]
        """, boards(1))
    done = run(tmp_path, env, "cluster.num_gpus=1", "resources.gpus=0.5", "job.sleep_s=1.0")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = [r.data for r in latest_runs(tmp_path, "power-packed").values()]
    assert len(runs) == 6
    for r in runs:  # each ran under its own limit throughout
        limit = DEFAULT_W * float(r.params["resources.power_limit_frac"])
        assert r.metrics["seen_limit_w"] == limit and r.metrics["seen_limit_end_w"] == limit
    for a in runs:
        for b in runs:
            if a.params["resources.power_limit_frac"] != b.params["resources.power_limit_frac"]:
                apart = a.metrics["t_end"] <= b.metrics["t_start"] or b.metrics["t_end"] <= a.metrics["t_start"]
                assert apart, (a.metrics, b.metrics)
    # Runs of one limit still shared the board (two executors on it).
    overlaps = [(a, b) for a in runs for b in runs if a is not b
                and a.metrics["t_start"] < b.metrics["t_end"] and b.metrics["t_start"] < a.metrics["t_end"]]
    assert overlaps

    # The launch's power analysis ran on these runs: per seed one group of two limits, and each group's pick is the
    # one power_frontier makes from load_sweep (the picks themselves, which depend on run times here, are checked
    # on exact data in tests/analysis/test_power_frontier.py).
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("power-packed")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'parent'")
    metrics = parent.data.metrics
    import orchestrator as orc

    for name, eta in (("energy", 1.0), ("time", 0.0)):
        expected = orc.load_sweep("power-packed", f"sqlite:///{tmp_path / 'mlflow.db'}").power_frontier(
            cost={"eta": eta}).groups
        assert metrics[f"power.{name}.n_groups"] == len(expected) == 3
        assert [metrics[f"power.{name}.group{i}.best_limit"] for i in range(3)] == list(expected["best_limit"])
        assert set(expected["best_limit"]) <= {DEFAULT_W * 0.5, DEFAULT_W * 1.0}


def test_a_limit_outside_the_boards_range_fails_before_anything_runs(tmp_path):
    _, env = project(tmp_path, """\
        # @package sweep
        name: power-range
        params:
          resources: {power_limit_w: [150, 300]}
        """, boards(1))
    done = run(tmp_path, env, "cluster.num_gpus=1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "resources.power_limit_w: 150 W is outside what NVIDIA H100 80GB HBM3" in done.stderr
    assert "allows: 200 to 700 W" in done.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_experiment_by_name("power-range") is None


def test_without_permission_the_sweep_is_refused_unless_limits_are_not_required(tmp_path):
    fake, env = project(tmp_path, """\
        # @package sweep
        name: power-denied
        params:
          resources: {power_limit_frac: [0.6]}
        """, boards(1, limit_settable=False))
    done = run(tmp_path, env, "cluster.num_gpus=1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "resources.power_limit_frac: cannot set power limits on NVIDIA H100" in done.stderr
    assert "needs root (or CAP_SYS_ADMIN)" in done.stderr and "power_limit_required=false" in done.stderr
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_experiment_by_name("power-denied") is None

    done = run(tmp_path, env, "cluster.num_gpus=1", "+sweep.power_limit_required=false", "job.sleep_s=0.2")
    assert done.returncode == 0, done.stdout + done.stderr
    (r,) = latest_runs(tmp_path, "power-denied").values()
    assert r.info.status == "FINISHED"
    assert r.data.tags["power_limit_status"] == "not_permitted"
    assert r.data.tags["power_limit_w"] == f"{DEFAULT_W:g}" and r.data.metrics["seen_limit_w"] == DEFAULT_W
    assert "power_limit_w" not in r.data.metrics  # it ran at no limit of its own: the power analysis leaves it out
    assert fake.events() == []


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine runs the real check instead")
def test_the_prepared_gpu_check_says_there_is_no_gpu_and_exits_0():
    done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "benchmarks" / "gpu_check.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last == ("gpu_check: cuda_lm=n/a energy_err_pct=n/a power_limit=n/a "
                    "energy_saving_pct_at_70pct_limit=n/a")
    assert "no GPU here (nvidia-smi not found)" in done.stdout
