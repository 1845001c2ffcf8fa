"""Sweep definitions expand into fully resolved runs with stable keys; bad definitions fail with a named field."""

from __future__ import annotations

import math

import pytest

from orchestrator.errors import ConfigError
from orchestrator.sweep.expand import plan_sweep
from orchestrator.sweep.keys import run_key

SYN = "job=synthetic"


def values(plan, path):
    return [spec.varied[path] for spec in plan.runs]


def test_grid_is_the_cartesian_product_with_log_ranges_rounded_for_int_fields(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo"))
    assert plan.name == "synthetic-demo"
    assert len(plan.runs) == 12
    n_params = sorted(set(values(plan, "job.n_params")))
    assert n_params == [10**6, 10**7, 10**8, 10**9]
    assert all(isinstance(v, int) for v in n_params)
    assert len({spec.run_key for spec in plan.runs}) == 12


def test_linear_range_with_step_and_float_field_keeps_floats(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "~sweep.params",
                              "+sweep.params.job.alpha={range:[0.3,0.36],step:0.02}"))
    assert values(plan, "job.alpha") == [0.3, 0.32, 0.34, 0.36]


def test_zip_varies_lists_together(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "sweep.kind=zip", "~sweep.params",
                              "+sweep.params.job.n_params=[1000,2000,3000]", "+sweep.params.job.tokens=[10,20,30]"))
    assert [(s.job["n_params"], s.job["tokens"]) for s in plan.runs] == [(1000, 10), (2000, 20), (3000, 30)]


def test_zip_of_unequal_lengths_names_the_lengths(compose):
    with pytest.raises(ConfigError, match=r"sweep.params.*equal lengths.*job.n_params=3.*job.tokens=2"):
        plan_sweep(compose(SYN, "+sweep=synthetic_demo", "sweep.kind=zip", "~sweep.params",
                           "+sweep.params.job.n_params=[1,2,3]", "+sweep.params.job.tokens=[1,2]"))


def test_random_search_is_seeded_and_within_bounds(compose):
    overrides = [SYN, "+sweep=synthetic_demo", "sweep.kind=random", "+sweep.n=20", "+sweep.seed=7", "~sweep.params",
                 "+sweep.params.job.alpha={uniform:[0.2,0.4]}", "+sweep.params.job.n_params={loguniform:[1e6,1e9]}",
                 "+sweep.params.job.noise={choice:[0.0,0.01]}"]
    first, second = plan_sweep(compose(*overrides)), plan_sweep(compose(*overrides))
    assert [s.run_key for s in first.runs] == [s.run_key for s in second.runs]
    assert len(first.runs) == 20
    assert all(0.2 <= a <= 0.4 for a in values(first, "job.alpha"))
    assert all(10**6 <= n <= 10**9 and isinstance(n, int) for n in values(first, "job.n_params"))
    other = plan_sweep(compose(*[o.replace("seed=7", "seed=8") for o in overrides]))
    assert [s.run_key for s in other.runs] != [s.run_key for s in first.runs]


def test_isoflop_derives_tokens_from_budget_and_reports_dropped_cells(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "sweep.kind=isoflop", "~sweep.params",
                              "+sweep.budgets=[1e18,1e19]", "+sweep.models.job.n_params={log:[1e6,1e9],num:4}",
                              "+sweep.bounds.tokens_per_param=[1,null]"))
    for spec in plan.runs:
        budget = spec.varied["sweep.flops_budget"]
        assert spec.job["tokens"] == round(budget / (6 * spec.job["n_params"]))
    # C=1e18, N=1e9 gives D/N = 0.17 < 1: dropped and reported with the reason; the other 7 cells run.
    assert len(plan.runs) == 7
    assert len(plan.dropped) == 1
    assert "tokens_per_param" in plan.dropped[0].reason


def test_seeds_and_repeats_multiply_every_point(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "+sweep.seeds=[0,1,2]"))
    assert len(plan.runs) == 36
    assert sorted(set(values(plan, "job.seed"))) == [0, 1, 2]
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "+sweep.repeats=2", "job.seed=10"))
    assert sorted(set(values(plan, "job.seed"))) == [10, 11]


def test_run_key_ignores_key_order_and_how_numbers_were_written():
    a = {"_target_": "orchestrator.jobs.synthetic.train", "n_params": 100000, "lr": 0.001, "opt": {"b1": 0.9, "b2": 0.95}}
    b = {"opt": {"b2": 0.95, "b1": 0.9}, "lr": 1e-3, "n_params": 1e5, "_target_": "orchestrator.jobs.synthetic.train"}
    assert run_key(a) == run_key(b)
    assert run_key(a) != run_key({**a, "lr": 0.002})


def test_run_key_does_not_depend_on_the_sweep_kind_that_produced_the_config(compose):
    grid = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "~sweep.params", "+sweep.params.job.n_params=[1e6,1e7]"))
    zipped = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "sweep.kind=zip", "~sweep.params",
                                "+sweep.params.job.n_params={log:[1000000,10000000],num:2}"))
    assert {s.run_key for s in grid.runs} == {s.run_key for s in zipped.runs}


def test_runs_are_named_after_their_varying_parameters(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo"))
    assert plan.runs[0].name == "n_params=1e6 tokens=1e9"


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["sweep.kind=spiral"], "sweep.kind: unknown kind 'spiral'; allowed: grid, zip, random, isoflop, adaptive"),
        (["~sweep.params.job.n_params", "+sweep.params.job.n_params=[]"], "sweep.params.job.n_params: empty list"),
        (["~sweep.params.job.n_params", "+sweep.params.job.n_params={range:[10,1],num:3}"], "sweep.params.job.n_params.range: min 10 is greater than max 1"),
        (["sweep.params.job.n_params={log:[0,100],num:3}"], "sweep.params.job.n_params.log: log-spaced bounds must be positive"),
        (["sweep.params.job.n_params={log:[1,abc],num:3}"], "sweep.params.job.n_params.log: expected a number, got 'abc'"),
        (["sweep.params.job.n_params={log:[1,10],num:0}"], "sweep.params.job.n_params.num: expected a whole number >= 1"),
        (["job._target_=jobs.nope.train"], "job._target_: cannot import 'jobs.nope.train'"),
        (["+sweep.params.cluster.num_gpus=[1,2]"], "may vary paths under job., resources."),
        (["+sweep.parms.job.lr=[1]"], "sweep.parms: unknown key for a grid sweep; allowed: analysis, early_stop, kind, name"),
        (["+sweep.analysis.fits=[{form:cubic}]"], "analysis.fits[0].form"),
        (["resources.gpus=1.5"], "resources.gpus: more than one GPU must be a whole number"),
        (["resources.gpus=lots"], "resources.gpus: expected a number, got 'lots'"),
        (["~sweep.params.job.tokens", "+sweep.params.job.tokens=[1e9,abc]"], "sweep.params.job.tokens: expected a number, got 'abc'"),
    ],
)
def test_bad_sweep_definitions_name_the_field_and_what_is_allowed(compose, overrides, field):
    with pytest.raises(ConfigError) as error:
        plan_sweep(compose(SYN, "+sweep=synthetic_demo", *overrides))
    assert field in str(error.value)


def test_log_spaced_values_are_canonical(compose):
    plan = plan_sweep(compose(SYN, "+sweep=synthetic_demo", "~sweep.params",
                              "+sweep.params.job.alpha={log:[0.1,1000],num:5}"))
    assert values(plan, "job.alpha") == [0.1, 1.0, 10.0, 100.0, 1000.0]
    assert all(math.isfinite(v) for v in values(plan, "job.alpha"))
