"""Plots: written as real, non-empty PNG files, drawing what the fit or front holds."""

from __future__ import annotations

import pandas as pd

from orchestrator.analysis import (
    fit_isoflop,
    fit_scaling_law,
    pareto_front,
    plot_isoflop,
    plot_pareto_front,
    plot_scaling_fit,
    save_png,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5_000


def test_scaling_fit_plot_draws_a_fitted_curve_per_data_size_and_its_extrapolation(
    tmp_path, chinchilla_fit, chinchilla_runs
):
    fig = plot_scaling_fit(chinchilla_fit, chinchilla_runs, max_curves=8)
    ax = fig.axes[0]
    assert len(ax.collections) == 8  # one scatter per data-size group
    assert len(ax.lines) == 16  # per group: fitted curve over the data, dashed extrapolation beyond
    assert sum(line.get_linestyle() == "--" for line in ax.lines) == 8
    _assert_png(save_png(fig, tmp_path / "plots" / "fit.png"))


def test_power_fit_plot_is_written(tmp_path, chinchilla_runs):
    fit = fit_scaling_law(chinchilla_runs, "power", x="flops", y="val_loss", bootstrap=0)
    _assert_png(save_png(plot_scaling_fit(fit, chinchilla_runs), tmp_path / "power.png"))


def test_isoflop_plot_marks_each_budget_minimum(tmp_path, make_isoflop_runs):
    df = make_isoflop_runs()
    fit = fit_isoflop(df)
    fig = plot_isoflop(fit, df)
    left, right = fig.axes
    assert len(left.lines) == len(fit.budgets)  # one parabola per budget
    assert len(left.collections) == 2 * len(fit.budgets)  # the runs and the starred minimum
    _assert_png(save_png(fig, tmp_path / "isoflop.png"))


def test_frontier_plot_greys_dominated_runs_and_draws_the_front(tmp_path):
    df = pd.DataFrame({"wall_s": [1.0, 2.0, 3.0, 2.5, 3.5], "val_loss": [3.0, 2.0, 1.0, 2.5, 3.0]})
    front = pareto_front(df, {"wall_s": "min", "val_loss": "min"})
    fig = plot_pareto_front(front, df)
    dominated, on_front = fig.axes[0].collections
    assert len(dominated.get_offsets()) == 2 and len(on_front.get_offsets()) == 3
    assert len(fig.axes[0].lines) == 1  # the staircase
    _assert_png(save_png(fig, tmp_path / "front.png"))
