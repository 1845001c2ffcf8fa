"""From your own project: the wheel (not an editable install) runs sweeps of jobs defined in the directory you run
from, `orchestrator init` makes a project whose sweep runs at once, and no generic top-level name is installed.

The wheel is built from this checkout and installed into a fresh virtual environment that borrows the test
environment's dependencies (ray, mlflow, torch) through a .pth file, so only orchestrator itself comes from the wheel.
Every command runs as a user types it: the venv's own `orchestrator` script, its own embedded Ray, no PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]

MY_JOB = '''
def train(cfg, ctx):
    for step in range(1, 4):
        ctx.log(step=step, train_loss=cfg.width / step)
    return {"val_loss": 1.0 / cfg.width, "n_params": 10.0 * cfg.width, "tokens": 100.0}
'''
MY_JOB_CONFIG = "# @package job\n_target_: my_train.train\nwidth: 4\n"
MY_SWEEP = """\
# @package sweep
defaults:
  - override /job@_global_.job: mine
name: mysweep
params:
  job:
    width: [2, 4, 8]
"""


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with orchestrator installed from its wheel; returns its bin/ directory."""
    build = tmp_path_factory.mktemp("wheel")
    source = build / "source"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    for name in listed:  # the checkout as committed plus new files, without build/ leftovers or local databases
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(build / "dist"), str(source)],
                   check=True, capture_output=True)
    (wheel,) = (build / "dist").glob("orchestrator-*.whl")
    venv = build / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # Without this checkout on the path: pip would take its egg-info for an installed orchestrator.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, cwd=build, env=clean_env())
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    assert (site / "orchestrator" / "conf").is_dir()
    # Only after the install: pip would otherwise take the borrowed editable install for this one.
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def clean_env() -> dict[str, str]:
    """The environment without this checkout on PYTHONPATH (tests/conftest.py puts it there) or a Ray to join."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS", "VIRTUAL_ENV")}


def user(bin_dir: Path, cwd: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """The venv's `orchestrator` command, run from `cwd` with nothing of this checkout on the path."""
    env = clean_env()
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", COLUMNS="200")
    return subprocess.run([str(bin_dir / "orchestrator"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def finished_children(db: Path, sweep: str) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name(sweep)
    assert experiment is not None, f"no experiment {sweep!r} in {db}"
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrator.role` = 'child'")
    return [r for r in runs if r.info.status == "FINISHED"]


def my_project(folder: Path) -> Path:
    (folder / "conf" / "job").mkdir(parents=True)
    (folder / "conf" / "sweep").mkdir()
    (folder / "my_train.py").write_text(MY_JOB)
    (folder / "conf" / "job" / "mine.yaml").write_text(MY_JOB_CONFIG)
    (folder / "conf" / "sweep" / "mysweep.yaml").write_text(MY_SWEEP)
    return folder


def test_the_wheel_installs_configs_and_jobs_inside_the_package_and_no_generic_top_level_name(wheel_env):
    (wheel,) = (wheel_env.parent.parent / "dist").glob("orchestrator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top_level == {"orchestrator", "hydra_plugins"}
    assert {"orchestrator/conf/job/lm.yaml", "orchestrator/conf/sweep/lm_demo.yaml", "orchestrator/conf/cost/default.yaml",
            "orchestrator/jobs/lm.py", "orchestrator/jobs/synthetic.py", "orchestrator/py.typed"} <= set(names)


def test_a_wheel_install_runs_a_sweep_of_a_job_defined_in_the_directory_it_runs_from(wheel_env, tmp_path):
    project = my_project(tmp_path)
    result = user(wheel_env, project, "run", "+sweep=mysweep")
    assert result.returncode == 0, result.stdout + result.stderr
    children = finished_children(project / "mlflow.db", "mysweep")
    assert sorted(c.data.metrics["val_loss"] for c in children) == pytest.approx([1 / 8, 1 / 4, 1 / 2])
    assert {c.data.params["_target_"] for c in children} == {"my_train.train"}


def test_a_project_made_by_init_runs_its_sweep_right_away(wheel_env, tmp_path):
    made = user(wheel_env, tmp_path, "init", "demo_project")
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo_project"
    assert {"demo_project.py", "README.md"} <= {p.name for p in project.iterdir()}
    result = user(wheel_env, project, "run", "+sweep=demo_project")
    assert result.returncode == 0, result.stdout + result.stderr
    children = finished_children(project / "mlflow.db", "demo_project")
    assert len(children) == 6
    assert all({"val_loss", "n_params", "tokens", "flops"} <= set(c.data.metrics) for c in children)
    again = user(wheel_env, tmp_path, "init", "demo_project")
    assert again.returncode == 2 and "already exist" in again.stderr  # nothing overwritten


BOTH_SWEEP = """\
# @package sweep
defaults:
  - override /job@_global_.job: synthetic
name: both
params:
  job:
    _target_: [jobs.mine.train, orchestrator.jobs.synthetic.train]
"""


def test_a_projects_own_jobs_package_works_beside_the_shipped_jobs(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "mine.py").write_text(MY_JOB)
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "both.yaml").write_text(BOTH_SWEEP)
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", "+sweep=both", "+job.width=3"],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    by_target = {c.data.params["_target_"]: c for c in finished_children(tmp_path / "mlflow.db", "both")}
    assert by_target["jobs.mine.train"].data.metrics["val_loss"] == pytest.approx(1 / 3)
    assert by_target["orchestrator.jobs.synthetic.train"].data.metrics["val_loss"] > 1.69  # the shipped law's E


# Bad input, and the field its one-line error must name.
BAD_INPUT = [
    (["+sweep=mysweep", "+sweep.kind=gird"], "sweep.kind: unknown kind 'gird'"),
    (["+sweep=mysweep", "sweep.kind=gird"], "sweep.kind: this config does not set it; to add it, use +sweep.kind=gird"),
    (["+sweep=nope"], "Could not find 'sweep/nope'"),
    (["+sweep=mysweep", "execution.retries=x"], "execution.retries: Value 'x'"),
    (["+sweep=mysweep", "executon.retries=1"], "executon: unknown key; allowed: name, job, sweep"),
    (["+sweep=mysweep", "job._target_=my_trian.train"], "job._target_: cannot import 'my_trian.train': no module "
                                                        "'my_trian' in the directory you run from"),
]


@pytest.mark.parametrize(("args", "error"), BAD_INPUT)
def test_bad_input_gives_one_clean_error_and_exit_2_with_and_without_dry_run_and_through_submit(tmp_path, args,
                                                                                                  error):
    project = my_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    for command in (["run", *args], ["run", *args, "--dry-run"],
                    ["submit", *args, "--address", "http://127.0.0.1:9"], ["submit", *args, "--dry-run"]):
        result = subprocess.run([sys.executable, "-m", "orchestrator", *command], cwd=project, env=env,
                                capture_output=True, text=True, timeout=120)
        output = result.stdout + result.stderr
        assert result.returncode == 2, (command, output)
        assert error in output and "Traceback" not in output, (command, output)
    assert not (project / "mlflow.db").exists()
