"""`hydra/launcher=orchestrator`: an existing Hydra app runs on the orchestrator with one override and no code change.

Hydra's own launcher conformance suites run unchanged on this launcher, in-process on the session's Ray (8 logical
GPUs), and as subprocess apps that join that Ray through $RAY_ADDRESS. MLflow goes to a tmp SQLite per test through
$MLFLOW_TRACKING_URI, the launcher's default.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite
from mlflow.tracking import MlflowClient

from hydra_plugins.orchestrator_launcher.orchestrator_launcher import OrchestratorLauncher

APPS = Path(__file__).parent / "hydra_apps"
# Experiments the suites' apps log to (their task names), created with their artifacts under the test's tmp dir.
EXPERIMENTS = ("a_module", "task", "no_config", "overridden_name", "name_from_config_file", "train", "widths")


@pytest.fixture(autouse=True)
def _orchestrator_env(ray_cluster: Any, tracking_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jobs of this test track to its own SQLite; subprocess apps join the session's Ray instead of starting one (they
    inherit RAY_AUTH_MODE from this process, where the session's Ray set it, and read the token Ray keeps in ~/.ray)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    for name in EXPERIMENTS:
        client.create_experiment(name, artifact_location=(tmp_path / "artifacts" / name).as_uri())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("RAY_ADDRESS", ray_cluster.get_runtime_context().gcs_address)


@pytest.fixture(autouse=True)
def _fresh_hydra_version_base() -> Iterator[None]:
    """Hydra's suites assume a fresh process, where no version_base is set yet (1.1 defaults: jobs chdir into their
    directories); tests that ran before in this session may have set one. Each test here starts unset; the session's
    own version base is put back after."""
    from hydra import version

    instance = version.VersionBase.instance()
    before, instance.version_base = instance.version_base, version._UNSPECIFIED_
    yield
    instance.version_base = before
    version.VersionBase.set_instance(instance)


def test_discovery() -> None:
    assert OrchestratorLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@pytest.mark.parametrize("launcher_name, overrides", [("orchestrator", [])])
class TestOrchestratorLauncher(LauncherTestSuite):
    """Hydra's launcher test suite (hydra.test_utils.launcher_common_tests), unchanged."""


@pytest.mark.parametrize("launcher_name, overrides", [("orchestrator", ["hydra.sweeper.max_batch_size=2"])])
class TestOrchestratorLauncherBatched(BatchedSweeperTestSuite):
    """The basic sweeper in batches of two, each batch one launch on this launcher."""


@pytest.mark.parametrize(
    "task_launcher_cfg, extra_flags",
    [({"defaults": [{"override hydra/launcher": "orchestrator"}, {"override hydra/hydra_logging": "hydra_debug"},
                    {"override hydra/job_logging": "disabled"}]}, ["-m"])],
)
class TestOrchestratorLauncherIntegration(IntegrationTestSuite):
    """Hydra's integration suite: generated apps run as subprocesses with `-m`."""


# -- this project's own specification of the launcher ----------------------------------------------------------------
def runs_of(uri: str, experiment: str, role: str = "child") -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    query = f"tags.`orchestrator.role` = '{role}'"
    return [] if found is None else client.search_runs([found.experiment_id], query, max_results=1000)


def sweep_train(runner: Any, tmp_path: Path, *overrides: str) -> Any:
    """The shipped example app (tests/hydra_apps/train.py) as a multirun in this process, on this launcher."""
    from tests.hydra_apps.train import register_resolvers, train

    register_resolvers()  # again: hydra_restore_singletons drops it after each test
    return runner(calling_file=str(APPS / "train.py"), calling_module=None, task_function=train,
                  config_path="conf", config_name="train", temp_dir=tmp_path / "multirun",
                  overrides=["hydra/launcher=orchestrator", *overrides])


def test_an_existing_app_runs_unchanged_with_one_override_on_a_laptop_and_lands_in_mlflow(
        tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # As a user runs it: its own process, its own (embedded, GPU-less) Ray, MLflow in ./mlflow.db by default.
    monkeypatch.delenv("RAY_ADDRESS")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    overrides = ["model.width=64,128", "optim.lr=1e-3,3e-3"]
    subprocess.run([sys.executable, str(APPS / "train.py"), "-m", *overrides, "hydra/launcher=orchestrator",
                    "hydra.sweep.dir=multirun"], cwd=tmp_path, check=True, timeout=300)

    parents, children = runs_of(tracking_uri, "train", "parent"), runs_of(tracking_uri, "train")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["runs_finished"] == 4
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {f"model.width={w} optim.lr={lr}" for w in (64, 128) for lr in ("0.001", "0.003")}
    child = by_name["model.width=128 optim.lr=0.003"]
    assert child.info.status == "FINISHED"
    assert child.data.params["model.width"] == "128" and child.data.params["optim.lr"] == "0.003"
    assert child.data.metrics["sweep.model.width"] == 128
    # loss = 1 / hidden + lr, with hidden = ${double:${model.width}}: the driver's resolver worked in the job.
    assert child.data.metrics["loss"] == pytest.approx(1 / 256 + 3e-3)
    assert "note" not in child.data.metrics  # the return value's non-numbers are not metrics
    assert child.data.tags["device"] == "cpu" and child.data.params["resources.gpus"] == "0.0"  # no GPU here
    assert "wall_s" in child.data.metrics and "gpu_hours" in child.data.metrics

    for num, child in enumerate(sorted(children, key=lambda c: int(c.data.params["hydra.job.num"]))):
        job_dir = tmp_path / "multirun" / str(num)
        from omegaconf import OmegaConf

        assert OmegaConf.load(job_dir / ".hydra" / "overrides.yaml") == child.info.run_name.split(" ")
        config = OmegaConf.to_container(OmegaConf.load(job_dir / ".hydra" / "config.yaml"))
        assert config["model"] == {"width": int(child.data.params["model.width"]), "hidden": "${double:${model.width}}"}
        assert OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.job.id == child.data.tags["run_key"]
        assert "training width=" in (job_dir / "train.log").read_text()


def test_a_failing_job_is_a_failed_run_with_its_error_and_its_job_return_raises_it(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra_plugins.orchestrator_launcher import _core

    returned: list[Any] = []
    launch = _core.launch
    monkeypatch.setattr(_core, "launch", lambda *args: returned.extend(launch(*args)) or returned)
    sweep = sweep_train(hydra_sweep_runner, tmp_path, "model.width=64,128", "fail_at_width=128")
    with pytest.raises(ValueError, match="width 128 diverged"), sweep:  # Hydra's sweeper reads every return value
        pass

    from hydra.core.utils import JobStatus

    assert [r.status for r in returned] == [JobStatus.COMPLETED, JobStatus.FAILED]
    assert returned[0].return_value["loss"] == pytest.approx(1 / 128 + 1e-3)
    with pytest.raises(ValueError, match="width 128 diverged"):
        _ = returned[1].return_value
    children = {c.info.run_name: c for c in runs_of(tracking_uri, "train")}
    failed = children["model.width=128 fail_at_width=128"]
    assert failed.info.status == "FAILED" and failed.data.tags["status"] == "FAILED"
    assert failed.data.tags["error"] == "ValueError: width 128 diverged"
    assert "train.py" in failed.data.tags["traceback"] and "loss" not in failed.data.metrics
    assert children["model.width=64 fail_at_width=128"].info.status == "FINISHED"
    assert runs_of(tracking_uri, "train", "parent")[0].info.status == "FAILED"


def test_a_job_that_raised_is_run_again_while_retries_allow(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str) -> None:
    marker = tmp_path / "first-attempt-done"

    def flaky(cfg: Any) -> dict[str, float]:
        if not marker.exists():
            marker.write_text("failed once")
            raise RuntimeError("transient")
        return {"loss": 0.5}

    sweep = hydra_sweep_runner(calling_file=str(APPS / "train.py"), calling_module=None, task_function=flaky,
                               config_path="conf", config_name="train", temp_dir=tmp_path / "multirun",
                               overrides=["hydra/launcher=orchestrator", "hydra.launcher.execution.retries=1"])
    with sweep:
        assert sweep.returns[0][0].return_value == {"loss": 0.5}
    (child,) = runs_of(tracking_uri, "train")
    assert child.info.status == "FINISHED" and child.data.tags["attempt"] == "2"
    assert child.data.tags["attempt_1.error"] == "RuntimeError: transient"


def test_a_job_whose_executor_died_fails_with_the_cause_in_its_job_return(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str) -> None:
    from hydra_plugins.orchestrator_launcher._core import JobNotReturnedError

    def crash(cfg: Any) -> None:
        os._exit(3)

    sweep = hydra_sweep_runner(calling_file=str(APPS / "train.py"), calling_module=None, task_function=crash,
                               config_path="conf", config_name="train", temp_dir=tmp_path / "multirun",
                               overrides=["hydra/launcher=orchestrator"])
    with pytest.raises(JobNotReturnedError, match=r"job #0 \(\): executor lost"), sweep:
        pass
    (child,) = runs_of(tracking_uri, "train")
    assert child.info.status == "FAILED" and child.data.tags["cause"] == "executor_lost"


def test_a_batched_multirun_is_one_parent_run_with_totals_over_every_batch(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str) -> None:
    sweep = sweep_train(hydra_sweep_runner, tmp_path, "model.width=16,32,64", "optim.lr=1e-3",
                        "hydra.sweeper.max_batch_size=2", "hydra.launcher.experiment=widths",
                        "hydra.launcher.cost.usd_per_kwh=0.3", "hydra.launcher.resources.cpus=2")
    with sweep:
        assert [len(batch) for batch in sweep.returns] == [2, 1]
    (parent,) = runs_of(tracking_uri, "widths", "parent")
    children = runs_of(tracking_uri, "widths")
    assert parent.info.status == "FINISHED" and parent.data.metrics["runs_finished"] == 3
    assert parent.data.params["cost.usd_per_kwh"] == "0.3" and parent.data.params["cost.pue"] == "1.2"
    assert parent.data.params["hydra.overrides.task"] == "model.width=16,32,64 optim.lr=1e-3"
    assert len(children) == 3 and {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert {c.data.params["hydra.job.num"] for c in children} == {"0", "1", "2"}
    for child in children:  # the session's Ray has 8 logical GPUs: gpus=auto gives each job one of its own
        assert child.data.params["resources.gpus"] == "1.0" and child.data.params["resources.cpus"] == "2.0"
        assert child.data.tags["device"].startswith("gpu:") and child.data.metrics["gpus_held"] == 1


def test_a_bad_launcher_setting_fails_before_anything_runs_naming_the_setting(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str) -> None:
    from orchestrator.errors import ConfigError

    sweep = sweep_train(hydra_sweep_runner, tmp_path, "model.width=16,32", "hydra.launcher.resources.gpus=1.5")
    named = r"hydra\.launcher\.resources\.gpus: more than one GPU must be a whole number"
    with pytest.raises(ConfigError, match=named), sweep:
        pass
    assert runs_of(tracking_uri, "train", "parent") == []


def test_secret_looking_overrides_are_masked_in_run_names_and_params(
        hydra_sweep_runner: Any, hydra_restore_singletons: Any, tmp_path: Path, tracking_uri: str) -> None:
    sweep = sweep_train(hydra_sweep_runner, tmp_path, "+api_key=s3cr3t", "model.width=16,32")
    with sweep:
        pass
    (parent,) = runs_of(tracking_uri, "train", "parent")
    assert parent.data.params["hydra.overrides.task"] == "+api_key=*** model.width=16,32"
    for child in runs_of(tracking_uri, "train"):
        assert "s3cr3t" not in child.info.run_name and child.data.params["api_key"] == "***"


def test_a_jobs_overrides_are_its_params_under_names_mlflow_accepts() -> None:
    from hydra_plugins.orchestrator_launcher._plan import override_values

    assert override_values(["model.width=64", "+seed=1", "~dropout", "db=mysql", "db@backup=pg", "optim.lr=0.001",
                            "tags=[a,b]"]) == {"model.width": 64, "seed": 1, "dropout": None, "db": "mysql",
                                               "db_backup": "pg", "optim.lr": 0.001, "tags": ["a", "b"]}


def test_the_same_overrides_at_another_job_number_are_another_run() -> None:
    from hydra_plugins.orchestrator_launcher._plan import hydra_run
    from orchestrator.records import Resources

    first, again = (hydra_run("train", num, ["a=1"], Resources()) for num in (0, 1))
    assert first.run_key != again.run_key and first.name == again.name == "a=1"
    assert hydra_run("train", 0, [], Resources()).name == "train #0"


def test_only_the_numbers_of_a_returned_mapping_are_final_metrics() -> None:
    from hydra_plugins.orchestrator_launcher._job import final_metrics

    assert final_metrics({"loss": 0.5, "step": 10, "ok": True, "ckpt": "a.pt"}) == {"loss": 0.5, "step": 10.0}
    assert final_metrics(0.5) == {} and final_metrics(None) == {}


def test_discovering_plugins_imports_none_of_ray_mlflow_pynvml_or_torch() -> None:
    probe = ("import sys; from hydra.core.plugins import Plugins; from hydra.plugins.launcher import Launcher; "
             "names = [p.__name__ for p in Plugins.instance().discover(Launcher)]; "
             "print(','.join(names)); print(','.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    launchers, modules = (set(line.split(",")) for line in out.splitlines())
    assert "OrchestratorLauncher" in launchers
    assert not {m.split(".")[0] for m in modules} & {"ray", "mlflow", "pynvml", "torch"}
    # Only the config schema the launcher's settings share with `orchestrator run` (dataclasses, nothing heavy).
    assert {m for m in modules if m.startswith("orchestrator")} == {"orchestrator", "orchestrator.schema"}
