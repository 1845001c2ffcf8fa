"""`kind: adaptive` sections are checked before anything starts, and a bad one names its field and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import ConfigError
from orchestrator.sweep.adaptive import parse_adaptive
from tests.sweep_adaptive.drive import sweep


def test_the_issue_yaml_parses_into_a_frozen_spec():
    spec = parse_adaptive(sweep("frontier", {"runs": 60}, in_flight=8, initial=8,
                                early_stop={"metric": "val_loss", "mode": "min", "min_fraction": 0.25}))
    assert spec.goal == "frontier" and dict(spec.objectives) == {"gpu_hours": "min", "val_loss": "min"}
    assert dict(spec.budget) == {"runs": 60.0} and (spec.in_flight, spec.initial, spec.seed) == (8, 8, 0)
    assert spec.law.n_path == "job.n_params" and spec.law.d_path == "job.tokens" and spec.law.target_flops == 1e22
    assert spec.early_stop.min_fraction == 0.25 and spec.early_stop.cost == "gpu_hours"
    with pytest.raises(AttributeError):
        spec.goal = "law"  # type: ignore[misc]


def test_params_may_be_nested_or_dotted_and_law_columns_match_by_leaf_or_full_path():
    nested = parse_adaptive(sweep("law", {"gpu_hours": 5}))
    dotted = parse_adaptive(sweep("law", {"gpu_hours": 5}, params={"job.n_params": {"loguniform": [1e6, 1e9]},
                                                                 "job.tokens": {"loguniform": [1e9, 1e11]}},
                                  law={"n": "job.n_params", "d": "tokens"}))
    assert nested.params == dotted.params
    assert (dotted.law.n_path, dotted.law.d_path, dotted.law.loss) == ("job.n_params", "job.tokens", "val_loss")


def test_in_flight_defaults_to_the_executor_slots_the_engine_passes():
    section = sweep("frontier", {"runs": 10})
    del section["in_flight"]
    assert parse_adaptive(section, default_in_flight=16).in_flight == 16


@pytest.mark.parametrize(
    "change, field, allowed",
    [
        ({"goal": "pareto"}, "sweep.goal", "frontier, law"),
        ({"objectives": None}, "sweep.objectives", "min | max"),
        ({"objectives": {"val_loss": "lowest"}}, "sweep.objectives.val_loss", "min or max"),
        ({"goal": "law", "law": None}, "sweep.law", "form: chinchilla"),
        ({"goal": "law", "law": {"n": "d_model", "d": "tokens"}}, "sweep.law.n", "swept parameters"),
        ({"goal": "law", "law": {"n": "n_params", "d": "tokens", "form": "power"}}, "sweep.law.form", "chinchilla"),
        ({"goal": "law", "law": {"n": "n_params", "d": "tokens", "target_flops": -1}}, "sweep.law.target_flops",
         "positive"),
        ({"budget": None}, "sweep.budget", "runs, gpu_hours, usd, energy_kwh"),
        ({"budget": {"hours": 3}}, "sweep.budget.hours", "runs, gpu_hours, usd, energy_kwh"),
        ({"budget": {"gpu_hours": 0}}, "sweep.budget.gpu_hours", "positive"),
        ({"budget": {"runs": 2.5}}, "sweep.budget.runs", "whole number"),
        ({"in_flight": 0}, "sweep.in_flight", ">= 1"),
        ({"initial": 2.5}, "sweep.initial", ">= 1"),
        ({"early_stop": {"mode": "min", "min_fraction": 0.25}}, "sweep.early_stop.metric", "metric"),
        ({"early_stop": {"metric": "val_loss", "mode": "up"}}, "sweep.early_stop.mode", "min or max"),
        ({"early_stop": {"metric": "val_loss", "min_fraction": 1.0}}, "sweep.early_stop.min_fraction",
         "between 0 and 1"),
        ({"params": {"job": {"lr": 3e-4}}}, "sweep.params", "vary at least one"),
        ({"params": {"job": {"lr": {"loguniform": [0, 1]}}}}, "sweep.params.job.lr.loguniform", "positive"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_field_and_what_is_allowed(change: dict[str, Any], field: str,
                                                                          allowed: str):
    with pytest.raises(ConfigError) as err:
        parse_adaptive({**sweep("frontier", {"runs": 10}), **change})
    assert err.value.field == field
    assert allowed in str(err.value)


def test_a_law_column_that_is_fixed_rather_than_swept_is_refused():
    params = {"job": {"n_params": 1e7, "tokens": {"loguniform": [1e9, 1e11]}, "lr": {"loguniform": [1e-4, 1e-2]}}}
    with pytest.raises(ConfigError) as err:
        parse_adaptive(sweep("law", {"runs": 10}, params=params))
    assert err.value.field == "sweep.law.n" and "must be swept" in str(err.value)
