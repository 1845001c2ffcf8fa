"""Study 1, the quantization frontier (`+sweep=quant_pareto_quick`): the QAT job's fake quantization, its costs and
config checks in-process, and the quick study end to end through Ray and MLflow with its grouped front logged."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

import orchestrator as orc
from orchestrator.errors import ConfigError
from orchestrator.execution.context import JobContext
from orchestrator.jobs.qat import QuantMLP, costs, quantize_activation, quantize_weight, train

JOB_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "job" / "qat.yaml"
# Stated margins, in accuracy (fraction of the 540 test images), on means over the quick grid's widths and seeds:
# 8-bit QAT is within 1.5 points of full precision, and 2 bits loses at least 2 points more than 8 bits does.
EIGHT_BIT_MARGIN = 0.015
TWO_BIT_EXTRA_LOSS = 0.02


def qat_config(**overrides: Any) -> DictConfig:
    return OmegaConf.merge(OmegaConf.load(JOB_CONFIG), overrides)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_quantized_weights_take_at_most_2_to_the_bits_levels_symmetric_about_zero(bits: int, per_channel: bool):
    weight = torch.randn(16, 40, generator=torch.Generator().manual_seed(bits))
    quantized = quantize_weight(weight, bits, per_channel)
    rows = quantized if per_channel else quantized.reshape(1, -1)
    peak = weight.abs().amax(dim=1) if per_channel else weight.abs().max().expand(1)
    top = 2 ** (bits - 1) - 1
    for row, row_peak in zip(rows, peak):
        assert len(torch.unique(row)) <= 2**bits - 1 < 2**bits
        # Every value is an integer in [-top, top] times the row's scale: 2^b - 1 possible levels, symmetric.
        integers = row / (row_peak / top)
        assert torch.allclose(integers, integers.round(), atol=1e-4) and integers.abs().max() <= top + 1e-4
    # Nothing is clipped: each row's (or the tensor's) largest magnitude is kept exactly.
    peak = peak if per_channel else peak[0]
    assert torch.allclose(quantized.abs().amax(dim=1) if per_channel else quantized.abs().max(), peak)
    assert (quantized - weight).abs().max() <= peak.max() / (2 ** (bits - 1) - 1) / 2 + 1e-6


def test_the_straight_through_estimator_passes_the_gradient_through_the_rounding():
    weight = torch.randn(8, 5, requires_grad=True)
    (quantize_weight(weight, 2, per_channel=True) * torch.arange(5.0)).sum().backward()
    assert torch.allclose(weight.grad, torch.arange(5.0).expand(8, 5))
    x = torch.tensor([-1.0, 0.3, 0.7, 1.9, 3.0], requires_grad=True)
    clip = torch.tensor(2.0, requires_grad=True)
    out = quantize_activation(x, 2, clip)
    assert len(torch.unique(out)) <= 4 and out.min() == 0 and out.max() == 2.0
    out.sum().backward()
    # Inside [0, clip] the gradient is the identity's; below 0 and above clip it is cut. The clipping level learns
    # from the values above it (PACT: 1 for 3.0) and from the rounding error through the scale clip / 3 (as LSQ).
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    levels = torch.tensor([0.3, 0.7, 1.9]) / (2.0 / 3)
    assert clip.grad.item() == pytest.approx(1.0 + ((levels.round() - levels) / 3).sum().item())


def test_full_precision_is_left_untouched_and_costs_count_32_bits():
    weight = torch.randn(4, 3)
    assert quantize_weight(weight, 32, True) is weight
    model = QuantMLP(qat_config(width=16, depth=2, bits=32))
    macs = 64 * 16 + 16 * 16 + 16 * 10
    assert costs(model) == {"macs": macs, "inference_bitops": macs * 32 * 32, "model_size_bits": (macs + 42) * 32,
                            "params": macs + 42}
    four_bit = costs(QuantMLP(qat_config(width=16, depth=2, bits=4)))
    # 4-bit weights and activations; biases, per-channel scales and the two learned clipping levels at 32 bits.
    assert four_bit["inference_bitops"] == macs * 4 * 4
    assert four_bit["model_size_bits"] == macs * 4 + (42 + 42 + 2) * 32


@pytest.mark.parametrize(("overrides", "field", "allowed"), [
    ({"bits": 1}, "bits", "from 2 to 16 (fake-quantized) or 32"),
    ({"act_bits": 64}, "act_bits", "from 2 to 16 (fake-quantized) or 32"),
    ({"granularity": "per_row"}, "granularity", "per_channel, per_tensor"),
    ({"width": 0}, "width", "positive integer"),
    ({"test_fraction": 1.0}, "test_fraction", "(0, 0.9]"),
])
def test_a_bad_job_config_is_a_config_error_naming_the_field_and_what_is_allowed(overrides, field, allowed):
    with pytest.raises(ConfigError) as raised:
        train(qat_config(**overrides), JobContext())
    assert raised.value.field == field and allowed in str(raised.value)


def test_a_run_is_deterministic_given_its_seed_and_logs_its_curves():
    cfg = qat_config(width=8, bits=3, epochs=3, eval_interval=2)
    first, ctx = train(cfg, JobContext()), JobContext()
    second = train(cfg, ctx)
    assert {k: v for k, v in first.items() if not k.endswith("_s")} == \
        {k: v for k, v in second.items() if not k.endswith("_s")}
    assert [s for s, _ in ctx.curve("test_accuracy")] == [0, 2, 3]
    assert [s for s, _ in ctx.curve("train_loss")] == [1, 2, 3]
    assert ctx.curve("test_accuracy")[-1][1] == second["test_accuracy"]


@pytest.fixture(scope="module")
def quick_study(ray_cluster, tmp_path_factory, _mlflow_template) -> dict[str, Any]:
    """One launch of the quick study, shared by the end-to-end assertions."""
    from orchestrator.launch import launch
    from orchestrator.project import compose

    db = tmp_path_factory.mktemp("quant-pareto") / "mlflow.db"
    shutil.copy(_mlflow_template, db)
    uri = f"sqlite:///{db}"
    # Two runs at a time, as on the 2-core machine the quick study is sized for (the session's Ray has 8 slots).
    summary = launch(compose(["tracking.report=false", "+sweep=quant_pareto_quick", f"tracking.uri={uri}",
                              "execution.max_concurrent=2"]))
    return {"uri": uri, "summary": summary, "runs": orc.load_sweep("quant-pareto-quick", uri).runs}


def test_the_quick_study_runs_every_configuration_through_ray_into_mlflow(quick_study):
    summary, runs = quick_study["summary"], quick_study["runs"]
    assert summary.ok and len(runs) == 16 and set(runs["status"]) == {"FINISHED"}
    assert sorted(set(runs["bits"])) == [2, 4, 8, 32] and sorted(set(runs["sweep.seed"])) == [0, 1]
    assert runs["inference_bitops"].min() == (64 * 16 + 16 * 16 + 16 * 10) * 2 * 2


def test_eight_bit_qat_matches_full_precision_while_two_bits_loses_more(quick_study):
    accuracy = quick_study["runs"].groupby("bits")["test_accuracy"].mean()
    assert abs(accuracy[8] - accuracy[32]) <= EIGHT_BIT_MARGIN, accuracy.to_dict()
    assert accuracy[32] - accuracy[2] >= (accuracy[32] - accuracy[8]) + TWO_BIT_EXTRA_LOSS, accuracy.to_dict()
    assert accuracy.min() > 0.8, accuracy.to_dict()  # every bit width learned the task


def test_the_logged_analysis_names_the_bit_widths_on_each_front(quick_study):
    summary, uri = quick_study["summary"], quick_study["uri"]
    client = MlflowClient(tracking_uri=uri)
    metrics = client.get_run(summary.parent_run_id).data.metrics
    for front in ("bitops", "size"):
        line = next(line for line in summary.analysis_summary if line.startswith(f"frontier.{front}: "))
        assert line.startswith(f"frontier.{front}: bits on the front: "), line
        assert "configurations (means over seed of 16 runs) on the front" in line
        on_front = {b: metrics[f"frontier.{front}.on_front.bits_{b}"] for b in (2, 4, 8, 32)}
        assert sum(on_front.values()) == metrics[f"frontier.{front}.size"] >= 2
        # The cheapest configuration (2 bits, width 16) is on every front; full precision costs 16x more bit-operations
        # per MAC than 8 bits, and never reaches the bit-operation front.
        assert on_front[2] >= 1 and line.split(": ")[2].startswith(("2 (", "4 (", "8 ("))
    assert metrics["frontier.bitops.on_front.bits_32"] == 0
    artifacts = {f.path for f in client.list_artifacts(summary.parent_run_id, "analysis")}
    assert {"analysis/frontier.bitops.png", "analysis/frontier.size.png", "analysis/frontier.bitops.points.csv"} \
        <= artifacts
