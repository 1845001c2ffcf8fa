"""The shipped language-model job (`jobs/lm.py`) run in-process with the real corpus and real torch on CPU."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from orchestrator.jobs.lm import GPT, non_embedding_params, train
from orchestrator.execution.context import JobContext

JOB_CONFIG = Path(__file__).resolve().parents[1] / "conf" / "job" / "lm.yaml"


def lm_config(**overrides: Any) -> DictConfig:
    """The shipped config (tiny preset) with `overrides` merged on top, as a sweep would.

    One torch thread, as each run of a sweep gets: multi-threaded CPU kernels slow down many-fold when other
    processes share the cores, which would make the timing test flaky.
    """
    return OmegaConf.merge(OmegaConf.load(JOB_CONFIG), {"threads": 1}, overrides)


@pytest.fixture(scope="module")
def tiny_run() -> tuple[dict[str, float], JobContext, float]:
    """One run of the tiny preset, shared by the tests that only read its results."""
    ctx = JobContext()
    started = time.perf_counter()
    metrics = train(lm_config(), ctx)
    return metrics, ctx, time.perf_counter() - started


def test_tiny_preset_learns_validation_loss_falls_well_below_initial(tiny_run) -> None:
    metrics, ctx, _ = tiny_run
    # A byte-level model starts near ln(256) nats per byte and must beat it clearly, not by noise.
    assert metrics["initial_val_loss"] == pytest.approx(math.log(256), abs=0.5)
    assert metrics["val_loss"] < metrics["initial_val_loss"] - 1.0
    assert metrics["train_loss"] < metrics["initial_val_loss"] - 1.0
    curve = ctx.curve("val_loss")
    assert curve[0] == (0, metrics["initial_val_loss"])
    assert curve[-1] == (int(metrics["steps"]), metrics["val_loss"])
    assert curve[-1][1] < curve[0][1]


def test_tiny_preset_finishes_in_a_few_seconds(tiny_run) -> None:
    metrics, _, seconds = tiny_run
    assert seconds < 20.0
    assert 0 < metrics["train_s"] <= metrics["wall_s"] <= seconds


def test_curves_log_train_loss_and_lr_every_log_interval_and_val_loss_every_eval_interval(tiny_run) -> None:
    metrics, ctx, _ = tiny_run
    cfg, steps = lm_config(), int(metrics["steps"])
    assert [s for s, _ in ctx.curve("train_loss")] == list(range(cfg.log_interval, steps + 1, cfg.log_interval))
    assert [s for s, _ in ctx.curve("lr")] == [s for s, _ in ctx.curve("train_loss")]
    assert max(v for _, v in ctx.curve("lr")) == pytest.approx(cfg.lr)
    assert [s for s, _ in ctx.curve("val_loss")] == list(range(0, steps + 1, cfg.eval_interval))


def test_returns_final_metrics_with_derived_compute_quantities(tiny_run) -> None:
    metrics, _, _ = tiny_run
    cfg = lm_config()
    expected = {"train_loss", "val_loss", "initial_val_loss", "val_bpb", "n_params", "n_params_total", "steps",
                "tokens", "flops", "tokens_per_s", "train_s", "wall_s"}  # fmt: skip
    assert expected <= metrics.keys()
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    assert metrics["steps"] == cfg.max_steps
    assert metrics["tokens"] == cfg.max_steps * cfg.batch_size * cfg.context
    assert metrics["flops"] == 6 * metrics["n_params"] * metrics["tokens"]
    assert metrics["tokens_per_s"] == pytest.approx(metrics["tokens"] / metrics["train_s"])
    assert metrics["val_bpb"] == pytest.approx(metrics["val_loss"] / math.log(2))


def test_reported_n_params_is_the_non_embedding_count_of_the_built_model(tiny_run) -> None:
    metrics, _, _ = tiny_run
    cfg = lm_config()
    model = GPT(cfg)
    embeddings = model.token_embedding.weight.numel() + model.position_embedding.weight.numel()
    all_params = sum(p.numel() for p in model.parameters())  # the tied head is counted once
    assert metrics["n_params"] == non_embedding_params(cfg) == all_params - embeddings
    assert metrics["n_params_total"] == all_params


@pytest.mark.parametrize(
    "shape", [{"n_layer": 1, "d_model": 8, "n_head": 1}, {"n_layer": 3, "d_model": 48, "n_head": 4, "context": 32}]
)
def test_non_embedding_params_from_config_matches_built_model(shape: dict[str, int]) -> None:
    cfg = lm_config(**shape)
    model = GPT(cfg)
    assert non_embedding_params(cfg) == model.count_params()
    # Kaplan's approximation N ≈ 12·n_layer·d_model² holds up to the bias and LayerNorm terms.
    n_layer, d = cfg.n_layer, cfg.d_model
    assert non_embedding_params(cfg) == n_layer * (12 * d**2 + 13 * d) + 2 * d


def test_tokens_budget_sets_the_number_of_steps() -> None:
    cfg = lm_config(tokens=5000, max_steps=1000, eval_interval=100)
    metrics = train(cfg, JobContext())
    # ceil(5000 / (16 · 64)) = 5 steps; the budget wins over max_steps.
    assert metrics["steps"] == 5
    assert metrics["tokens"] == 5 * 16 * 64


def test_same_seed_gives_the_same_final_val_loss_and_another_seed_does_not() -> None:
    cfg = lm_config(max_steps=20, eval_interval=10, dropout=0.1)
    first = train(cfg, JobContext())["val_loss"]
    again = train(cfg, JobContext())["val_loss"]
    other = train(OmegaConf.merge(cfg, {"seed": 1}), JobContext())["val_loss"]
    assert first == again
    assert first != other


def test_bf16_autocast_trains_on_cpu() -> None:
    metrics = train(lm_config(precision="bf16", max_steps=20), JobContext())
    assert metrics["val_loss"] < metrics["initial_val_loss"]


class ThreadsSeen(JobContext):
    """A context that records torch's thread count each time the job logs."""

    def __init__(self) -> None:
        super().__init__()
        self.threads_seen: set[int] = set()

    def log(self, step: int | None = None, **metrics: float) -> None:
        self.threads_seen.add(torch.get_num_threads())
        super().log(step=step, **metrics)


def test_threads_field_sets_torch_threads_only_for_the_run() -> None:
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    ctx = ThreadsSeen()
    train(lm_config(threads=wanted, max_steps=2), ctx)
    assert ctx.threads_seen == {wanted}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"d_model": 30, "n_head": 4}, "d_model"),
        ({"n_layer": 0}, "n_layer"),
        ({"seed": -1}, "seed"),
        ({"context": -8}, "context"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"tokens": -1}, "tokens"),
        ({"lr": 0.0}, "lr"),
        ({"dropout": 1.0}, "dropout"),
        ({"schedule": "linear"}, "schedule"),
        ({"precision": "fp8"}, "precision"),
        ({"precision": "fp16", "device": "cpu"}, "precision"),
        ({"device": "tpu"}, "device"),
        ({"eval_windows": 0}, "eval_windows"),
    ],
)
def test_invalid_config_raises_value_error_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    ctx = JobContext()
    with pytest.raises(ValueError, match=rf"^{field}: "):
        train(lm_config(**overrides), ctx)
    assert ctx.curves == []  # refused before training


def test_eval_windows_scores_every_batch_size_on_the_same_validation_bytes() -> None:
    from orchestrator.jobs.lm import eval_batches, load_corpus, split_corpus

    _, val = split_corpus(load_corpus())

    def windows(**overrides: Any) -> torch.Tensor:
        return torch.cat([x for x, _ in eval_batches(val, lm_config(**overrides))])

    assert torch.equal(windows(batch_size=4, eval_windows=64), windows(batch_size=16, eval_windows=64))
    assert len(windows(batch_size=4, eval_windows=64)) == 64
    assert len(windows(batch_size=4)) == 4 * 8  # without it: eval_batches x batch_size, as before


def test_non_embedding_params_refuses_an_invalid_shape() -> None:
    with pytest.raises(ValueError, match=r"^d_model: must be divisible by n_head"):
        non_embedding_params(lm_config(d_model=30, n_head=4))


def test_corpus_falls_back_to_stdlib_source_with_a_warning_when_pydoc_data_is_missing(monkeypatch) -> None:
    from orchestrator.jobs.lm import load_corpus

    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # makes the import raise ImportError
    load_corpus.cache_clear()
    try:
        with pytest.warns(UserWarning, match="pydoc_data is missing"):
            corpus = load_corpus()
        assert corpus.dtype == torch.uint8 and len(corpus) > 100_000
    finally:
        load_corpus.cache_clear()
