"""Quantization-aware training of a small MLP on scikit-learn's bundled digits: the shipped job for precision sweeps.

Reads top to bottom, in one file, like `jobs/lm.py`:

1. config checks        `check_config` raises `ConfigError` (a `ValueError`) naming the bad field;
2. data                 `sklearn.datasets.load_digits` (1,797 8×8 images, shipped with scikit-learn, no download),
                        pixels scaled to [0, 1], one stratified train/test split fixed by `split_seed`, so every run of
                        a sweep is scored on the same test images whatever its own `seed`;
3. fake quantization    symmetric integer weights (per output channel or per tensor) and unsigned activations with
                        a learned clipping level (PACT), both rounded in the forward pass and passed straight through
                        in the backward pass (the straight-through estimator, STE);
4. cost                 `inference_bitops` = Σ over layers of MACs × weight bits × activation bits (the cost measure
                        of "Pareto-Optimal Quantized ResNet Is Mostly 4-bit"), and `model_size_bits`;
5. `train(cfg, ctx)`    the job entry point: logs `train_loss` per epoch and `test_accuracy` every `eval_interval`
                        epochs through `ctx.log`, and returns the final metrics.

`bits: 32` is full precision: no fake quantization anywhere, costs counted at 32 bits (float32).
Every layer, the first and last included, takes the input of the layer (the image, or the previous ReLU) quantized to
`act_bits` and its weights to `bits`; biases, scales and clipping levels stay float32 and count 32 bits each in the
model size.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Mapping

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from orchestrator.errors import ConfigError
from orchestrator.execution.context import JobContext

# Bits that mean "not quantized": float32 weights and activations.
FULL_PRECISION_BITS = 32
# Integer fake-quant widths allowed (besides FULL_PRECISION_BITS).
MIN_BITS, MAX_BITS = 2, 16
GRANULARITIES = ("per_channel", "per_tensor")
# Bits of every float32 number stored beside the integer weights: biases, weight scales, clipping levels.
FLOAT_BITS = 32
# digits: 8×8 images with pixel values 0..16, ten classes.
N_FEATURES, N_CLASSES, PIXEL_MAX = 64, 10, 16.0

# -----------------------------------------------------------------------------------------------------------------
# 1. Config checks: fail before building anything, naming the field and what is allowed.


def check_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` (a `ValueError`) for the first invalid field of the job config."""
    for name in ("seed", "split_seed"):
        value = cfg.get(name)
        if not _is_int(value) or value < 0:
            raise ConfigError(name, f"must be an integer >= 0, got {value!r}")
    for name in ("width", "depth", "epochs", "batch_size", "eval_interval", "threads"):
        value = cfg.get(name)
        if not _is_int(value) or value <= 0:
            raise ConfigError(name, f"must be a positive integer, got {value!r}")
    _check_bits(cfg, "bits", cfg.get("bits"))
    if cfg.get("act_bits") is not None:
        _check_bits(cfg, "act_bits", cfg.act_bits)
    if cfg.get("granularity") not in GRANULARITIES:
        raise ConfigError("granularity", f"must be one of {', '.join(GRANULARITIES)}, got {cfg.get('granularity')!r}")
    for name, high in (("lr", math.inf), ("test_fraction", 0.9)):
        value = cfg.get(name)
        if not _is_number(value) or not 0 < value <= high:
            raise ConfigError(name, f"must be a number in (0, {high}], got {value!r}")
    if not _is_number(cfg.get("weight_decay")) or cfg.weight_decay < 0:
        raise ConfigError("weight_decay", f"must be a number >= 0, got {cfg.get('weight_decay')!r}")


def _check_bits(cfg: DictConfig, name: str, value: Any) -> None:
    if not _is_int(value) or not (MIN_BITS <= value <= MAX_BITS or value == FULL_PRECISION_BITS):
        raise ConfigError(name, f"must be an integer from {MIN_BITS} to {MAX_BITS} (fake-quantized) or "
                                f"{FULL_PRECISION_BITS} (full precision, float32), got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def activation_bits(cfg: DictConfig) -> int:
    """`act_bits`, or `bits` when it is null."""
    return int(cfg.bits if cfg.get("act_bits") is None else cfg.act_bits)


# -----------------------------------------------------------------------------------------------------------------
# 2. Data: the digits images that ship inside scikit-learn.


@functools.lru_cache(maxsize=4)
def load_split(split_seed: int, test_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test): pixels in [0, 1], one stratified split fixed by `split_seed`."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / PIXEL_MAX, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    as_x = functools.partial(torch.as_tensor, dtype=torch.float32)
    as_y = functools.partial(torch.as_tensor, dtype=torch.long)
    return as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test)


# -----------------------------------------------------------------------------------------------------------------
# 3. Fake quantization with the straight-through estimator.


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass; the identity's gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


def quantize_weight(weight: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    """Symmetric fake quantization: integers in [-(2^(b-1) - 1), 2^(b-1) - 1] times a scale (2^b - 1 levels).

    The scale maps the largest magnitude (per output row when `per_channel`) onto the largest integer, so nothing is
    clipped and the STE gradient is the identity everywhere.
    """
    if bits >= FULL_PRECISION_BITS:
        return weight
    top = 2 ** (bits - 1) - 1
    peak = weight.detach().abs().amax(dim=1, keepdim=True) if per_channel else weight.detach().abs().max()
    scale = torch.clamp(peak, min=1e-12) / top
    return round_ste(weight / scale) * scale


def quantize_activation(x: torch.Tensor, bits: int, clip: torch.Tensor) -> torch.Tensor:
    """Unsigned fake quantization on [0, clip] with 2^b levels.

    A learned `clip` gets the gradient of the values it clips (PACT) and, through the scale, of the rounding error
    (as LSQ); the values inside [0, clip] get the identity's gradient, the others none.
    """
    if bits >= FULL_PRECISION_BITS:
        return x
    clipped = torch.minimum(torch.clamp(x, min=0.0), clip)
    scale = clip / (2**bits - 1)
    return round_ste(clipped / scale) * scale


class QuantLinear(nn.Linear):
    """A linear layer that sees its input quantized to `act_bits` and its weights quantized to `bits`.

    `clip` is the activation clipping level: fixed at 1 for the image (pixels are already in [0, 1]), learned
    (initialised at `clip_init`) for a ReLU output.
    """

    def __init__(self, n_in: int, n_out: int, bits: int, act_bits: int, per_channel: bool, learn_clip: bool,
                 clip_init: float = 4.0) -> None:
        super().__init__(n_in, n_out)
        self.bits, self.act_bits, self.per_channel = bits, act_bits, per_channel
        clip = torch.tensor(clip_init if learn_clip else 1.0)
        if learn_clip and act_bits < FULL_PRECISION_BITS:
            self.clip = nn.Parameter(clip)
        else:
            self.register_buffer("clip", clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = quantize_activation(x, self.act_bits, self.clip)
        return F.linear(x, quantize_weight(self.weight, self.bits, self.per_channel), self.bias)


class QuantMLP(nn.Module):
    """64 pixels → `depth` hidden ReLU layers of `width` units → 10 logits, every layer a `QuantLinear`."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        sizes = [N_FEATURES] + [cfg.width] * cfg.depth + [N_CLASSES]
        per_channel = cfg.granularity == "per_channel"
        self.layers = nn.ModuleList(
            QuantLinear(n_in, n_out, cfg.bits, activation_bits(cfg), per_channel, learn_clip=i > 0)
            for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x if i == 0 else F.relu(x))
        return x


# -----------------------------------------------------------------------------------------------------------------
# 4. Cost of one inference, from the layer shapes.


def costs(model: QuantMLP) -> dict[str, float]:
    """MACs per image, parameters, `inference_bitops` (Σ MACs × weight bits × activation bits) and `model_size_bits`.

    Model size: integer weights at their bits; biases, weight scales (one per output channel, or one per layer) and
    learned clipping levels at 32 bits. At full precision everything counts 32 bits.
    """
    macs = bitops = size_bits = params = 0
    for layer in model.layers:
        n_out, n_in = layer.weight.shape
        quantized = layer.bits < FULL_PRECISION_BITS
        scales = (n_out if layer.per_channel else 1) if quantized else 0
        clips = int(isinstance(layer.clip, nn.Parameter))
        macs += n_in * n_out
        bitops += n_in * n_out * layer.bits * layer.act_bits
        size_bits += n_in * n_out * layer.bits + (n_out + scales + clips) * FLOAT_BITS
        params += n_in * n_out + n_out
    return {"macs": float(macs), "inference_bitops": float(bitops), "model_size_bits": float(size_bits),
            "params": float(params)}


# -----------------------------------------------------------------------------------------------------------------
# 5. The job.


@torch.no_grad()
def evaluate(model: QuantMLP, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the quantized model on (x, y)."""
    model.eval()
    logits = model(x)
    model.train()
    return F.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def train(cfg: DictConfig | Mapping[str, Any], ctx: JobContext) -> dict[str, float]:
    """Train one quantized MLP as `cfg` says, stream curves through `ctx.log`, and return the final metrics.

    Curves (x axis: epochs done): `train_loss` (mean over the epoch's batches) every epoch; `test_accuracy` and
    `test_loss` at epoch 0, every `eval_interval` epochs and at the last epoch.
    """
    started = time.perf_counter()
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    check_config(cfg)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return {**_train(cfg, ctx), "wall_s": time.perf_counter() - started}
    finally:
        torch.set_num_threads(previous_threads)


def _train(cfg: DictConfig, ctx: JobContext) -> dict[str, float]:
    x_train, y_train, x_test, y_test = load_split(cfg.split_seed, float(cfg.test_fraction))
    # The seed fixes the initial weights and the order of training batches.
    torch.manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    model = QuantMLP(cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    ctx.log(step=0, test_loss=test_loss, test_accuracy=test_accuracy)
    tick = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        losses = []
        for batch in torch.randperm(len(x_train), generator=order).split(cfg.batch_size):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        schedule.step()
        ctx.log(step=epoch, train_loss=sum(losses) / len(losses))
        if epoch % cfg.eval_interval == 0 or epoch == cfg.epochs:
            test_loss, test_accuracy = evaluate(model, x_test, y_test)
            ctx.log(step=epoch, progress=epoch / cfg.epochs, test_loss=test_loss, test_accuracy=test_accuracy)
    train_s = time.perf_counter() - tick
    train_loss, train_accuracy = evaluate(model, x_train, y_train)
    return {"test_accuracy": test_accuracy, "test_loss": test_loss, "train_loss": train_loss,
            "train_accuracy": train_accuracy, **costs(model), "bits": float(cfg.bits),
            "act_bits": float(activation_bits(cfg)), "train_s": train_s}
