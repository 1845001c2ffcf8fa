"""Run keys are how a relaunch knows what already ran: the planner refactor must not change them, and runs that
differ only in the resources they hold must stay apart."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from orchestrator.sweep.expand import plan_sweep

# Keys the engine gave these sweeps before planners existed (commit 327834d); a change here reruns users' sweeps.
GOLDEN = [
    (["+sweep=lm_demo"],
     ["dabea4c7bb642529", "feed40432a828dd4", "bfb6e6e589b98549", "58f9661c63981663", "634da43ce5aa0c34",
      "2a613c15488ffb6a"]),
    (["+sweep=lm_demo", "sweep.kind=zip", "~sweep.params", "+sweep.params.job.lr=[1e-3,3e-3]",
      "+sweep.params.job.d_model=[16,32]"],
     ["109d15f58dbec5a3", "12eef97154e4f695"]),
    (["+sweep=lm_demo", "sweep.kind=isoflop", "~sweep.params", "+sweep.budgets=[1e12,1e13]",
      "+sweep.models.job.n_params=[1e5,1e6]", "+sweep.n_params_path=job.n_params", "+job.n_params=1"],
     ["c44e7a8a00f55975", "4b48e0f621bdbe14", "9186b759fd60235f", "a0654d226952d1ee"]),
    (["+sweep=lm_demo", "sweep.kind=random", "+sweep.n=3", "~sweep.params",
      "+sweep.params.job.lr={loguniform:[1e-4,1e-2]}", "+sweep.seeds=[0,1]"],
     ["a42568b110d2679b", "ce479222464f715b", "376ea9919476c339", "38d86f84f53342a0", "53388abd45948a1e",
      "613138b2c4095902"]),
]


@pytest.mark.parametrize(("overrides", "keys"), GOLDEN, ids=["grid", "zip", "isoflop", "random-seeds"])
def test_static_kinds_keep_their_run_keys(compose: Callable[..., Any], overrides: list[str], keys: list[str]) -> None:
    assert [r.run_key for r in plan_sweep(compose(*overrides)).runs] == keys


def test_runs_that_differ_only_in_resources_are_separate_runs(compose: Callable[..., Any]) -> None:
    plan = plan_sweep(compose("job=synthetic", "+sweep=synthetic_demo", "cluster.num_gpus=8", "~sweep.params",
                              "+sweep.params.resources.gpus=[0.5,1,2]"))
    assert [r.resources.gpus for r in plan.runs] == [0.5, 1.0, 2.0]
    assert len({r.run_key for r in plan.runs}) == 3 and not plan.dropped
    assert [r.name for r in plan.runs] == ["gpus=0.5", "gpus=1", "gpus=2"]


def test_resource_values_join_the_key_only_when_swept(compose: Callable[..., Any]) -> None:
    """The same job at gpus=1 has one key when gpus are swept and today's key when they are not: a sweep that never
    varied resources keeps its history, and a swept one cannot mistake a 1-GPU run for a 2-GPU one."""
    fixed = plan_sweep(compose("+sweep=lm_demo", "resources.gpus=1")).runs
    swept = plan_sweep(compose("+sweep=lm_demo", "+sweep.params.resources.gpus=[1,2]")).runs
    assert [r.run_key for r in fixed] == GOLDEN[0][1]
    assert not {r.run_key for r in swept} & set(GOLDEN[0][1])
    assert len({r.run_key for r in swept}) == 12
