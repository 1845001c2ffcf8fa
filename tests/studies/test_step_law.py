"""The step_law study in miniature (`+sweep=step_law_quick`): an LR grid at several model and data sizes of the shipped
LM job, through Ray and MLflow, ends with the optimal learning rate fitted as a power law in N and D."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

import orchestrator as orc
from orchestrator.launch import launch
from orchestrator.project import compose


@pytest.fixture(scope="module")
def study(ray_cluster, _mlflow_template, tmp_path_factory) -> Any:
    """One launch of the quick variant, shared by every assertion below (it trains a few dozen tiny models)."""
    db = tmp_path_factory.mktemp("step-law") / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    uri = f"sqlite:///{db}"
    summary = launch(compose(["tracking.report=false", "+sweep=step_law_quick", f"tracking.uri={uri}"]))
    return summary, uri


def test_every_run_of_the_quick_grid_finishes_and_is_tracked(study):
    summary, uri = study
    assert summary.ok
    runs = orc.load_sweep("step-law-quick", uri).runs
    assert len(runs) == 30 and set(runs["status"]) == {"FINISHED"}
    # Each data size D is the same token budget at every batch size: tokens = steps x batch_size x context.
    assert runs.groupby("sweep.tokens")["tokens"].nunique().eq(1).all()


def test_the_launch_logs_the_optimal_lr_law_and_its_figures(study):
    summary, uri = study
    parent = MlflowClient(tracking_uri=uri).get_run(summary.parent_run_id)
    metrics = parent.data.metrics
    assert {"hparams.lr.exponent.n_params", "hparams.lr.exponent.tokens", "hparams.lr.coefficient"} <= set(metrics)
    assert any(line.startswith("hparams.lr: param.lr* = ") for line in summary.analysis_summary)
    artifacts = {f.path for f in MlflowClient(tracking_uri=uri).list_artifacts(summary.parent_run_id, "analysis")}
    assert {"analysis/hparams.lr.png", "analysis/hparams.lr.law.png", "analysis/hparams.lr.csv"} <= artifacts
    # The logged law is the one the public fit gives on the runs read back from MLflow.
    fit = orc.load_sweep("step-law-quick", uri).fit_optimal_hparams("param.lr", bootstrap=0)
    assert metrics["hparams.lr.exponent.n_params"] == pytest.approx(fit.exponents["n_params"], rel=1e-6)


def test_the_optimal_lr_falls_with_model_size_as_predictable_scale_finds(study):
    summary, uri = study
    exponent = MlflowClient(tracking_uri=uri).get_run(summary.parent_run_id).data.metrics[
        "hparams.lr.exponent.n_params"]
    assert exponent < -0.2
    # And it is the configured peak LR that is fitted: lr* of the smallest model lies inside the swept range.
    optima = orc.load_sweep("step-law-quick", uri).fit_optimal_hparams("param.lr", bootstrap=0).optima
    assert optima["opt"].between(6.4e-4, 2.5e-2).all()
