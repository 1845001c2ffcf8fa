"""The HTML report of a sweep: built from a real sweep (Ray executors, MLflow on SQLite), its numbers read back out of
the page and checked against the analysis API, self-contained, failures listed with their causes, and a sweep too
small to analyse explained section by section rather than crashing."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import orchestrator as orc
from orchestrator.cli.main import main
from orchestrator.report import report_bytes

SYN = ("job=synthetic", "+sweep=synthetic_demo")
SWEEP = "synthetic-demo"
SECTIONS = ["summary", "frontier", "fit", "isoflop", "parallel", "importance", "energy", "failures"]


class _Page(HTMLParser):
    """What a reader of the page gets: its data block, the data-value of each keyed cell, every resource reference."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[str, float] = {}
        self.references: list[str] = []
        self.shown: dict[str, str] = {}
        self._in_data, self._data = False, ""
        self.feed(html)
        self.data: dict[str, Any] = json.loads(self._data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self._in_data = a.get("id") == "report-data" and a.get("type") == "application/json"
        if "data-key" in a and "data-value" in a:
            self.values[str(a["data-key"])] = float(str(a["data-value"]))
        if tag == "section":
            self.shown[str(a["id"])] = str(a["data-shown"])
        self.references += [str(v) for k, v in attrs if k in ("src", "href", "srcset", "data", "action") and v]

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self._data += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False


def _launch(uri: str, *overrides: str) -> Any:
    from orchestrator.launch import launch
    from orchestrator.project import compose

    return launch(compose([*SYN, f"tracking.uri={uri}", "~sweep.params", "job.steps=2", *overrides]))


def _store(tmp_path_factory: pytest.TempPathFactory, template: Path, name: str) -> str:
    db = tmp_path_factory.mktemp(name) / "mlflow.db"
    shutil.copy(template, db)
    return f"sqlite:///{db}"


@pytest.fixture(scope="module")
def grid(ray_cluster, tmp_path_factory, _mlflow_template) -> dict[str, Any]:
    """A 5 x 5 (N, D) grid of the synthetic law, one decade apart (so N*D repeats: IsoFLOP curves), then a second
    launch of two runs that fail; and its report as `report_bytes` builds it for the second launch."""
    uri = _store(tmp_path_factory, _mlflow_template, "report-grid")
    first = _launch(uri, "+sweep.params.job.n_params={log:[1e6,1e10],num:5}",
                    "+sweep.params.job.tokens={log:[1e9,1e13],num:5}", "job.noise=0.002")
    assert first.ok and first.count("FINISHED") == 25
    second = _launch(uri, "+sweep.params.job.n_params=[2e6,3e6]", "job.fail=true", "execution.retries=0")
    assert second.count("FAILED") == 2
    html = report_bytes(uri, SWEEP, "val_loss", "min", launch_run_id=second.parent_run_id).decode("utf-8")
    return {"uri": uri, "html": html, "page": _Page(html), "launch": second.parent_run_id}


def test_every_section_is_drawn_for_a_grid_with_failures(grid):
    page = grid["page"]
    assert list(page.data["sections"]) == SECTIONS
    assert page.shown == dict.fromkeys(SECTIONS, "true")
    assert not any(s["error"] for s in page.data["sections"].values())
    assert page.data["sweep"] == SWEEP and page.data["metric"] == "val_loss" and page.data["mode"] == "min"


def test_the_fit_in_the_report_is_the_fit_of_the_api(grid):
    page = grid["page"]
    (shown,) = page.data["fit"]["fits"]
    options = {"bootstrap": shown["bootstrap"]["resamples"], "seed": shown["bootstrap"]["seed"]}
    fit = orc.load_sweep(SWEEP, grid["uri"]).fit("chinchilla", **shown["columns"], **options)
    expected = fit.to_dict()
    assert shown["params"] == pytest.approx(expected["params"], rel=1e-12)
    assert shown["ci"] == {k: pytest.approx(v, rel=1e-12) for k, v in expected["ci"].items()}
    assert shown["stderr"] == pytest.approx(expected["stderr"], rel=1e-12)
    assert shown["n_points"] == 25 and options["bootstrap"] > 0
    assert shown["params"]["alpha"] == pytest.approx(0.34, abs=0.03)
    # The table cells carry the same numbers, keyed <fit>.<parameter>.<column>.
    for name, value in expected["params"].items():
        assert page.values[f"{shown['name']}.{name}.estimate"] == pytest.approx(value, rel=1e-12)
        assert page.values[f"{shown['name']}.{name}.ci_low"] == pytest.approx(expected["ci"][name][0], rel=1e-12)


def test_the_extrapolation_is_the_laws_value_at_the_compute_optimal_size_with_its_interval(grid):
    (shown,) = grid["page"].data["fit"]["fits"]
    fit = orc.load_sweep(SWEEP, grid["uri"]).fit("chinchilla", bootstrap=shown["bootstrap"]["resamples"],
                                                  seed=shown["bootstrap"]["seed"])
    largest = 6 * 1e10 * 1e13
    assert [p["flops"] for p in shown["extrapolation"]] == pytest.approx([10 * largest, 100 * largest])
    for point in shown["extrapolation"]:
        n_opt, d_opt = fit.compute_optimal(point["flops"])
        assert point["n_opt"] == pytest.approx(float(n_opt), rel=1e-9)
        assert point["predicted"] == pytest.approx(float(fit.predict(n=n_opt, d=d_opt)), rel=1e-9)
        assert point["ci_low"] < point["predicted"] < point["ci_high"]


def test_the_front_in_the_report_is_the_front_of_the_api(grid):
    page = grid["page"]
    shown = page.data["frontier"]["fronts"][0]
    assert shown["objectives"] == {"cost_usd": "min", "val_loss": "min"}
    front = orc.load_sweep(SWEEP, grid["uri"]).frontier(shown["objectives"])
    assert [r["run_id"] for r in shown["front"]] == list(front["run_id"])
    assert [r["val_loss"] for r in shown["front"]] == pytest.approx(list(front["val_loss"]), rel=1e-12)
    assert [r["cost_usd"] for r in shown["front"]] == pytest.approx(list(front["cost_usd"]), rel=1e-12)
    for _, row in front.iterrows():
        assert page.values[f"{row['run_key']}.val_loss"] == pytest.approx(row["val_loss"], rel=1e-12)


def test_isoflop_curves_and_importance_are_those_of_the_grid(grid):
    data = grid["page"].data
    iso = orc.load_sweep(SWEEP, grid["uri"]).fit_isoflop(bootstrap=data["isoflop"]["bootstrap"], seed=0)
    assert data["isoflop"]["a"] == pytest.approx(iso.a, rel=1e-12) and data["isoflop"]["n_budgets"] >= 2
    importance = data["importance"]
    assert [r["parameter"] for r in importance["importances"]] == ["sweep.n_params", "sweep.tokens"]
    assert importance["oob_r2"] > 0.5 and importance["n_runs"] == 25


def test_totals_count_every_launch_and_unmeasured_energy_is_unavailable_not_zero(grid):
    summary = grid["page"].data["summary"]
    children = orc.load_sweep(SWEEP, grid["uri"]).all_runs
    assert summary["n_launches"] == 2 and summary["n_child_runs"] == 27 and summary["n_finished_run_keys"] == 25
    assert summary["child_runs_by_status"] == {"FINISHED": 25, "FAILED": 2}
    assert summary["totals"]["cost_usd"] == pytest.approx(children["cost_usd"].sum(), rel=1e-12)
    assert summary["totals"]["gpu_hours"] == pytest.approx(children["gpu_hours"].sum(), rel=1e-12)
    if "energy_j" not in children:  # no NVML on this machine: energy is unavailable, with the runs' reason
        assert summary["totals"]["energy_kwh"] is None and summary["totals"]["co2_g"] is None
        assert "Energy was not measured for 27 of 27 runs" in grid["html"]
    marked = [r for r in summary["launches"] if r["this_launch"]]
    assert [r["parent_run_id"] for r in marked] == [grid["launch"]]


def test_failures_are_listed_with_their_cause_and_error(grid):
    failures = grid["page"].data["failures"]
    assert failures["by_cause"] == {"job_error": 2}
    assert sorted(r["run_name"] for r in failures["runs"]) == ["n_params=2e6", "n_params=3e6"]
    for run in failures["runs"]:
        assert run["status"] == "FAILED" and run["cause"] == "job_error"
        assert run["error"] == "RuntimeError: synthetic job asked to fail (job.fail=true)"
        assert run["finished_in_another_run"] is False
    assert grid["html"].count("traceback of n_params=") == 2


def test_the_page_opens_without_a_network(grid):
    html, page = grid["html"], grid["page"]
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"<link|<script[^>]+src=|@import|url\(", html)
    assert page.references and all(r.startswith(("data:image/png;base64,", "#")) for r in page.references)
    assert sum(r.startswith("data:image/png") for r in page.references) == 6  # front, fit, isoflop, pc, importance, $


def test_the_cli_writes_the_same_report(grid, tmp_path, capsys):
    out = tmp_path / "reports" / "report.html"
    code = main(["report", SWEEP, "-o", str(out), "--tracking-uri", grid["uri"]])
    printed = capsys.readouterr().out
    assert code == 0 and f"8 of 8 sections written to {out}" in printed
    data = _Page(out.read_text(encoding="utf-8")).data
    assert data["fit"] == grid["page"].data["fit"] and data["frontier"] == grid["page"].data["frontier"]
    assert data["launch_run_id"] is None


def test_the_cli_exits_2_on_an_unknown_sweep_or_metric_and_writes_nothing(grid, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "no-such-sweep", "-o", str(out), "--tracking-uri", grid["uri"]]) == 2
    assert "sweep: no sweep named 'no-such-sweep'" in capsys.readouterr().err
    assert main(["report", SWEEP, "-o", str(out), "--tracking-uri", grid["uri"], "--metric", "test_loss"]) == 2
    assert "--metric: sweep 'synthetic-demo' has no column 'test_loss'" in capsys.readouterr().err
    assert not out.exists()


def test_a_sweep_too_small_to_analyse_says_why_section_by_section(ray_cluster, tmp_path_factory, _mlflow_template):
    uri = _store(tmp_path_factory, _mlflow_template, "report-small")
    assert _launch(uri, "+sweep.params.job.n_params=[1e6,1e7,1e8]").ok
    page = _Page(report_bytes(uri, SWEEP, "val_loss", "min").decode("utf-8"))
    sections = page.data["sections"]
    assert not any(s["error"] for s in sections.values())
    assert {k for k, s in sections.items() if s["shown"]} == {"summary", "frontier", "parallel", "energy"}
    assert "scaling fit skipped" in sections["fit"]["reason"]
    assert "IsoFLOP" in sections["isoflop"]["reason"]
    assert "parameter importance needs at least 8 usable rows, got 3" in sections["importance"]["reason"]
    assert sections["failures"]["reason"] == "none: all 3 child runs finished"
    assert page.shown["importance"] == "false"


def test_each_launch_logs_its_report_on_its_parent_run(grid, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=grid["uri"])
    assert "report.html" in {f.path for f in client.list_artifacts(grid["launch"])}
    logged = _Page(Path(client.download_artifacts(grid["launch"], "report.html", str(tmp_path))).read_text())
    assert logged.data["sweep"] == SWEEP
    assert logged.data["fit"]["fits"][0]["params"] == grid["page"].data["fit"]["fits"][0]["params"]
