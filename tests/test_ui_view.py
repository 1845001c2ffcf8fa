"""The sweep's saved view in MLflow's UI (orchestrator/tracking/view.py): the tag it is stored in, and what a user
sees when opening its link on a real `mlflow server` in headless Chromium after a real sweep.

The browser test needs Chromium (Debian's `chromium`, driven by Playwright at its path; Playwright's own browser
download is not used). Where it is missing and this runs as root with apt-get (a fresh CI machine), the test installs
it; it skips, saying why, only where Chromium cannot be installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.tracking import view
from orchestrator.tracking.store import MlflowStore
from orchestrator.tracking.view import (TAG_PREFIX, TAG_VALUE_MAX, SweepView, param_key, read_state, view_id,
                                        view_link, view_tag, write_view)
from tests.mlflow_server import MlflowServer

DEMO = SweepView("7", "synthetic-demo", ("n_params", "tokens"), ("val_loss", "min"), ("cost_usd", "gpu_hours"),
                 ("val_loss", "train_loss"))
# Milliseconds Playwright waits for the UI (it loads its bundle and the runs; slow on a loaded machine).
UI_TIMEOUT_MS = 60_000


def _shown(locator: Any) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_visible(timeout=UI_TIMEOUT_MS)


def _cards(state: dict, kind: str) -> list[dict]:
    return [c for c in state["compareRunCharts"] if c["type"] == kind]


# -- the tag -----------------------------------------------------------------------------------------------------------
def test_a_sweep_keeps_one_view_id_so_writing_it_again_replaces_it():
    key, _ = view_tag(DEMO, created_at_ms=1)
    again, _ = view_tag(SweepView("7", "synthetic-demo", ("lr",), ("acc", "max")), created_at_ms=2)
    other, _ = view_tag(SweepView("7", "other sweep/v2", ("lr",), ("acc", "max")))
    assert key == again == TAG_PREFIX + "orchestrator-synthetic-demo"
    assert other == TAG_PREFIX + "orchestrator-other-sweep-v2"


def test_the_view_is_the_envelope_mlflows_ui_reads():
    _, value = view_tag(DEMO, created_at_ms=1000, updated_at_ms=2000)
    envelope = json.loads(value)
    assert envelope["name"] == "Sweep synthetic-demo"
    assert (envelope["createdAt"], envelope["updatedAt"]) == (1000, 2000)
    assert isinstance(envelope["state"], str) and not envelope["state"].startswith("deflate;")


def test_the_view_shows_the_child_runs_best_first_with_the_swept_params_primary_metric_and_costs():
    state = read_state(view_tag(DEMO)[1])
    assert state["searchFilter"] == "tags.`orchestrator.role` = 'child'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`val_loss`", True)
    assert state["selectedColumns"] == ["metrics.`val_loss`", "metrics.`cost_usd`", "metrics.`gpu_hours`",
                                        "params.`n_params`", "params.`tokens`"]
    assert state["runsHiddenMode"] == "SHOW_ALL"
    higher_is_better = read_state(view_tag(SweepView("7", "s", ("lr",), ("accuracy", "max")))[1])
    assert (higher_is_better["orderByKey"], higher_is_better["orderByAsc"]) == ("metrics.`accuracy`", False)


def test_the_view_charts_parallel_coordinates_cost_against_the_primary_metric_and_the_curves():
    state = read_state(view_tag(DEMO)[1])
    [parallel] = _cards(state, "PARALLEL")
    assert (parallel["selectedParams"], parallel["selectedMetrics"]) == (["n_params", "tokens"], ["val_loss"])
    [scatter] = _cards(state, "SCATTER")
    assert scatter["xaxis"] == {"key": "cost_usd", "type": "METRIC"}
    assert scatter["yaxis"] == {"key": "val_loss", "type": "METRIC"}
    assert [c["metricKey"] for c in _cards(state, "LINE")] == ["val_loss", "train_loss"]
    [section] = state["compareRunSections"]
    assert {c["metricSectionId"] for c in state["compareRunCharts"]} == {section["uuid"]}
    assert len({c["uuid"] for c in state["compareRunCharts"]}) == 4


def test_a_view_without_swept_params_or_costs_has_no_chart_of_them():
    state = read_state(view_tag(SweepView("7", "one", (), ("val_loss", "min"), (), ("val_loss",)))[1])
    assert [c["type"] for c in state["compareRunCharts"]] == ["LINE"]
    assert state["selectedColumns"] == ["metrics.`val_loss`"]


def test_a_view_over_mlflows_tag_limit_is_compressed_and_reads_back_whole():
    many = tuple(f"model.layer_{i}.hidden_size" for i in range(400))
    big = SweepView("7", "wide", many, ("val_loss", "min"), ("cost_usd",), ("val_loss",))
    assert len(json.dumps(view.view_state(big))) > TAG_VALUE_MAX
    _, value = view_tag(big)
    assert len(value) <= TAG_VALUE_MAX
    assert json.loads(value)["state"].startswith("deflate;")
    assert read_state(value)["compareRunCharts"][0]["selectedParams"] == list(many)


def test_a_view_too_large_even_compressed_is_refused():
    random_names = tuple(uuid.uuid4().hex for _ in range(3000))
    with pytest.raises(ValueError, match="over MLflow's 20000"):
        view_tag(SweepView("7", "huge", random_names, ("val_loss", "min")))


def test_swept_config_paths_become_the_param_keys_runs_are_logged_with():
    assert [param_key(p) for p in ("job.lr", "job.model.width", "resources.gpus")] == \
        ["lr", "model.width", "resources.gpus"]


def test_links_open_the_runs_page_on_the_model_training_ui():
    assert view_link("3", "orchestrator-s") == \
        "#/experiments/3/runs?viewStateShareKey=orchestrator-s&workflowType=machine_learning"
    assert view_link("3") == "#/experiments/3/runs?workflowType=machine_learning"


# -- writing -----------------------------------------------------------------------------------------------------------
def test_writing_the_view_again_replaces_it_and_keeps_when_it_was_created(tracking_uri):
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("synthetic-demo")
    demo = SweepView(experiment_id, "synthetic-demo", ("n_params",), ("val_loss", "min"))
    store = MlflowStore(tracking_uri, "synthetic-demo")
    first = write_view(store, demo)
    created = json.loads(client.get_experiment(experiment_id).tags[TAG_PREFIX + "orchestrator-synthetic-demo"])
    second = write_view(store, SweepView(experiment_id, "synthetic-demo", ("n_params", "tokens"), ("val_loss", "min")))
    tags = client.get_experiment(experiment_id).tags
    assert [k for k in tags if k.startswith(TAG_PREFIX)] == [TAG_PREFIX + "orchestrator-synthetic-demo"]
    assert json.loads(tags[TAG_PREFIX + "orchestrator-synthetic-demo"])["createdAt"] == created["createdAt"]
    assert read_state(tags[TAG_PREFIX + "orchestrator-synthetic-demo"])["selectedColumns"][-1] == "params.`tokens`"
    assert first == second and second.saved
    assert second.link == view_link(experiment_id, "orchestrator-synthetic-demo")


def test_another_mlflow_ui_gets_the_plain_link_and_no_view(tracking_uri, monkeypatch):
    monkeypatch.setattr(view, "UI_VERSION", "0.0.1")
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment("synthetic-demo")
    link = write_view(MlflowStore(tracking_uri, "synthetic-demo"),
                      SweepView(experiment_id, "synthetic-demo", ("n_params",), ("val_loss", "min")))
    assert (link.saved, link.link) == (False, view_link(experiment_id))
    assert "written for 0.0.1" in link.why
    assert not any(k.startswith(TAG_PREFIX) for k in client.get_experiment(experiment_id).tags)


# -- in the browser ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium: found, or installed where this is root with apt-get, else the test skips saying why."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("no `chromium` on PATH, and it cannot be installed here (needs apt-get as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.skip(f"no `chromium` on PATH, and `{' '.join(command)}` failed: {done.stderr[-500:]}")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("apt-get installed chromium, but there is no `chromium` on PATH")
    return found


def test_the_saved_view_shows_the_sweeps_child_runs_by_name_the_primary_metric_and_parallel_coordinates(
        ray_cluster, compose, tracking_uri, tmp_path, chromium):
    from playwright.sync_api import expect, sync_playwright

    from orchestrator.launch import launch

    server = MlflowServer(tmp_path)  # serves tracking_uri's database (tmp_path/mlflow.db)
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(server.start)  # ~10 s, while the sweep runs
        try:
            summary = launch(compose("job=synthetic", "+sweep=synthetic_demo", f"tracking.uri={tracking_uri}",
                                     "~sweep.params", "+sweep.params.job.n_params=[1e7,1e9]",
                                     "+sweep.params.job.tokens=[1e9,1e11]", "+sweep.params.job.sleep_s=0.1",
                                     "tracking.report=true"))
            starting.result()
            assert summary.ok and len(summary.results) == 4
            # The launch wrote the view itself (the job names its primary metric) and says where it is.
            assert summary.view_link == view_link(summary.experiment_id, view_id("synthetic-demo"))
            # Through the server, as a launch against it would: its /version says which UI it serves.
            link = write_view(MlflowStore(server.uri, "synthetic-demo"), SweepView(
                summary.experiment_id, "synthetic-demo", ("n_params", "tokens"), ("val_loss", "min"),
                ("cost_usd", "gpu_hours"), ("val_loss", "train_loss")))
            assert link.saved, link.why
            assert link.url == f"{server.uri}/{link.link}"
            names = sorted(summary.names[key] for key in summary.results)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
                try:
                    page = browser.new_page(viewport={"width": 1600, "height": 1000})
                    page.set_default_timeout(UI_TIMEOUT_MS)
                    page.goto(link.url)
                    _shown(page.get_by_text("You're viewing a shared view"))
                    for name in names:
                        _shown(page.get_by_text(name, exact=True).first)
                    _shown(page.get_by_text("4 matching runs"))  # the children, not the launch
                    _shown(page.get_by_role("columnheader", name="val_loss").first)
                    page.locator("label:has(input[type=radio][value=CHART])").click()  # the chart view
                    _shown(page.get_by_text("Parallel Coordinates", exact=True))
                    axes = page.locator(".parcoords text")
                    for axis in ("n_params", "tokens", "val_loss"):
                        expect(axes.filter(has_text=axis).first).to_be_attached(timeout=UI_TIMEOUT_MS)

                    # The launch's run: its description (the note) renders as markdown, with the front as a table.
                    launch_page = (f"{server.uri}/#/experiments/{summary.experiment_id}/runs/"
                                   f"{summary.parent_run_id}")
                    page.goto(f"{launch_page}?workflowType=machine_learning")
                    _shown(page.get_by_role("heading", name="Launch of synthetic-demo").first)
                    _shown(page.get_by_role("cell", name="n_params=1e9 tokens=1e11").first)
                    # Its report.html renders inline among its artifacts.
                    page.goto(f"{launch_page}/artifacts/report.html?workflowType=machine_learning")
                    report = page.frame_locator("iframe").first
                    _shown(report.get_by_text("synthetic-demo").first)
                    _shown(report.get_by_role("heading", name="Frontier").first)
                finally:
                    browser.close()
        finally:
            starting.exception()  # wait for it, whether it started or not
            server.stop()
