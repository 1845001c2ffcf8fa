"""`orchestrator fit` and `orchestrator frontier`: the analysis verbs on a tracked sweep, from the shell.

Run in-process against real MLflow on SQLite; the sweep is tests/tracked_sweeps.py's 8 x 8 grid from a known law.
"""

from __future__ import annotations

import json
import re

import pytest
from mlflow.tracking import MlflowClient

import orchestrator as orc
from orchestrator.cli.main import main
from tests.tracked_sweeps import TRUTH, write_law_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OBJECTIVES = ["--objective", "cost_usd:min", "--objective", "val_loss:min"]


# A line Ray's log streaming prints on this process's stdout, from its own thread, when an earlier test's Ray is still
# up (e.g. "(raylet) WARNING: 26 PYTHON worker processes have been started"): not the command's output.
RAY_LOG_LINE = re.compile(r"^(\x1b\[[0-9;]*m)?\((raylet|[\w.]* ?pid=\d+[^)]*)\)")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    out = "".join(line for line in out.splitlines(keepends=True) if not RAY_LOG_LINE.match(line))
    return code, out, err


def test_fit_json_is_the_fit_of_the_api(law_sweep, capsys):
    code, out, _ = run_cli(capsys, "fit", law_sweep.name, "--tracking-uri", law_sweep.uri, "--bootstrap", "50",
                           "--json")
    assert code == 0
    printed = json.loads(out)
    expected = orc.load_sweep(law_sweep.name, law_sweep.uri).fit(form="chinchilla", bootstrap=50, seed=0).to_dict()
    assert printed == {"sweep": law_sweep.name, **expected}
    assert printed["n_points"] == 64 and printed["n_excluded"] == 0 and printed["warnings"] == []
    assert printed["params"]["alpha"] == pytest.approx(TRUTH["alpha"], rel=0.05)


def test_fit_prints_each_parameter_with_its_interval_and_stderr(law_sweep, capsys):
    code, out, _ = run_cli(capsys, "fit", law_sweep.name, "--tracking-uri", law_sweep.uri, "--bootstrap", "50")
    assert code == 0
    assert "chinchilla fit on 64 runs (n=n_params, d=tokens, loss=val_loss), 0 excluded" in out
    for header in ("parameter", "estimate", "95% CI", "stderr"):
        assert header in out
    for name in TRUTH:
        assert any(line.strip(" │┃|").startswith(name) for line in out.splitlines()), name
    assert "compute-optimal: N_opt ∝ C^" in out


def test_fit_warnings_are_printed_and_in_the_json(law_sweep, capsys):
    # cost_usd grows with flops, so a decreasing power law's exponent runs to its bound, 0.
    args = ["fit", law_sweep.name, "--tracking-uri", law_sweep.uri, "--form", "power", "--x", "flops",
            "--y", "cost_usd", "--bootstrap", "20"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "warning: alpha = 0 sits at a search bound [0.0, 2.5]" in out
    code, out, _ = run_cli(capsys, *args, "--json")
    assert code == 0 and any(w.startswith("alpha") for w in json.loads(out)["warnings"])


def test_frontier_json_lists_the_non_dominated_runs(law_sweep, capsys):
    code, out, _ = run_cli(capsys, "frontier", law_sweep.name, "--tracking-uri", law_sweep.uri, *OBJECTIVES, "--json")
    assert code == 0
    printed = json.loads(out)
    front = orc.pareto_front(orc.load_sweep(law_sweep.name, law_sweep.uri).runs, {"cost_usd": "min", "val_loss": "min"})
    assert [r["run_id"] for r in printed["front"]] == list(front["run_id"])
    assert [r["val_loss"] for r in printed["front"]] == pytest.approx(list(front["val_loss"]))
    assert printed["objectives"] == {"cost_usd": "min", "val_loss": "min"}
    assert printed["n_runs"] == 64 and printed["n_excluded"] == 0 and printed["front_size"] == len(front)


def test_frontier_plot_writes_a_png_and_the_table_names_the_runs(law_sweep, capsys, tmp_path):
    png = tmp_path / "plots" / "front.png"
    code, out, _ = run_cli(capsys, "frontier", law_sweep.name, "--tracking-uri", law_sweep.uri, *OBJECTIVES,
                           "--plot", str(png))
    assert code == 0
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5_000
    assert "runs on the front, 0 excluded" in out and "n_params=1e+06" in out and str(png) in out


def test_an_unknown_sweep_exits_2_names_the_sweeps_there_and_creates_nothing(law_sweep, capsys):
    before = [e.name for e in MlflowClient(law_sweep.uri).search_experiments()]
    for command in (["fit"], ["frontier", *OBJECTIVES]):
        code, _, err = run_cli(capsys, command[0], "no-such-sweep", *command[1:], "--tracking-uri", law_sweep.uri)
        assert code == 2
        assert "sweep: no sweep named 'no-such-sweep'" in err and repr(law_sweep.name) in err
    assert [e.name for e in MlflowClient(law_sweep.uri).search_experiments()] == before


def test_a_missing_store_exits_2_and_is_not_created(tmp_path, capsys):
    db = tmp_path / "mlflow.db"
    code, _, err = run_cli(capsys, "fit", "any", "--tracking-uri", f"sqlite:///{db}")
    assert code == 2 and "tracking_uri: no MLflow store" in err
    assert not db.exists()


def test_a_missing_column_exits_2_naming_the_option(law_sweep, capsys):
    code, _, err = run_cli(capsys, "fit", law_sweep.name, "--tracking-uri", law_sweep.uri, "--loss", "test_loss")
    assert code == 2 and "--loss: sweep 'law-sweep' has no column 'test_loss'" in err
    code, _, err = run_cli(capsys, "frontier", law_sweep.name, "--tracking-uri", law_sweep.uri,
                           "--objective", "energy_j:min")
    assert code == 2 and "--objective energy_j:min" in err and "'energy_j'" in err


@pytest.mark.parametrize("objective", ["val_loss", "val_loss:minimum", ":min"])
def test_an_objective_not_written_column_colon_sense_exits_2(law_sweep, capsys, objective):
    code, _, err = run_cli(capsys, "frontier", law_sweep.name, "--tracking-uri", law_sweep.uri,
                           "--objective", objective)
    assert code == 2 and f"--objective: expected COLUMN:min or COLUMN:max, got {objective!r}" in err


def test_too_few_finished_runs_to_fit_exits_2(tracking_uri, capsys):
    sweep = write_law_sweep(tracking_uri, name="tiny")
    client = MlflowClient(tracking_uri)
    for run_id in sweep.children[4:]:  # leave 4 runs; a chinchilla fit needs 6
        client.delete_run(run_id)
    code, _, err = run_cli(capsys, "fit", "tiny", "--tracking-uri", tracking_uri)
    assert code == 2 and "needs at least 6 usable rows, got 4" in err
