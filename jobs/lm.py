"""Train a small decoder-only transformer language model from scratch: the shipped job for scaling-law sweeps.

Reads top to bottom like nanoGPT's `train.py`, in one file:

1. config checks        `check_config` raises `ConfigError` (a `ValueError`) naming the bad field;
2. data                 bytes of English text that ships with Python (no download), split 90/10 train/validation;
3. model                GPT: learned positions, pre-norm blocks of causal self-attention and a GELU MLP, tied head;
4. size and compute     `non_embedding_params(cfg)` gives N from the config alone, so isoflop sweeps can pick sizes;
5. training loop        AdamW, warmup then cosine (or constant) learning rate, optional bf16/fp16 autocast;
6. `train(cfg, ctx)`    the job entry point: logs `train_loss`/`lr` curves and `val_loss` every `eval_interval`
                        steps through `ctx.log`, and returns final metrics with the derived quantities
                        (tokens, 6·N·D flops, tokens/s).

Tokens are bytes (vocabulary of 256), so a loss in nats per token is a loss in nats per byte; `val_bpb` gives it in
bits per byte, comparable across any byte-level model.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from contextlib import nullcontext
from typing import Any, Mapping

import torch
import torch.nn as nn
from omegaconf import DictConfig, OmegaConf
from torch.nn import functional as F

from orchestrator.errors import ConfigError
from orchestrator.execution.context import JobContext

# Byte-level tokenization: every byte value is a token.
VOCAB_SIZE = 256
# Share of the corpus, taken from its end, held out for validation.
VAL_FRACTION = 0.1
PRECISIONS = ("fp32", "bf16", "fp16")
SCHEDULES = ("cosine", "constant")

# -----------------------------------------------------------------------------------------------------------------
# 1. Config checks: fail before building anything, naming the field and what is allowed.


def check_config(cfg: DictConfig) -> None:
    """Raise `ConfigError` (a `ValueError`) for the first invalid field of the job config."""
    check_model_shape(cfg)
    if not isinstance(cfg.get("seed"), int) or isinstance(cfg.seed, bool) or cfg.seed < 0:
        raise ConfigError("seed", f"must be an integer >= 0, got {cfg.get('seed')!r}")
    for name in ("batch_size", "eval_interval", "eval_batches", "log_interval"):
        _require_positive_int(cfg, name)
    if cfg.get("tokens") is None:
        _require_positive_int(cfg, "max_steps")
    elif not _is_number(cfg.tokens) or cfg.tokens <= 0:
        raise ConfigError("tokens", f"must be a positive number of training tokens or null, got {cfg.tokens!r}")
    _require_number(cfg, "lr", low=0.0, low_inclusive=False)
    _require_number(cfg, "weight_decay", low=0.0)
    _require_number(cfg, "min_lr_ratio", low=0.0, high=1.0)
    _require_number(cfg, "dropout", low=0.0, high=1.0, high_inclusive=False)
    if not isinstance(cfg.warmup_steps, int) or isinstance(cfg.warmup_steps, bool) or cfg.warmup_steps < 0:
        raise ConfigError("warmup_steps", f"must be an integer >= 0, got {cfg.warmup_steps!r}")
    if cfg.get("grad_clip") is not None:
        _require_number(cfg, "grad_clip", low=0.0, low_inclusive=False)
    if cfg.schedule not in SCHEDULES:
        raise ConfigError("schedule", f"must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}")
    if cfg.precision not in PRECISIONS:
        raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.get("threads") is not None:
        _require_positive_int(cfg, "threads")
    if cfg.get("eval_windows") is not None:
        _require_positive_int(cfg, "eval_windows")


def check_model_shape(cfg: DictConfig) -> None:
    """Check the fields that fix the model's shape; enough for `non_embedding_params`."""
    for name in ("n_layer", "d_model", "n_head", "context"):
        _require_positive_int(cfg, name)
    if cfg.d_model % cfg.n_head != 0:
        raise ConfigError("d_model", f"must be divisible by n_head={cfg.n_head}, got {cfg.d_model}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_positive_int(cfg: DictConfig, name: str) -> None:
    value = cfg.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"must be a positive integer, got {value!r}")


def _require_number(
    cfg: DictConfig,
    name: str,
    low: float,
    high: float = math.inf,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    value = cfg.get(name)
    above = _is_number(value) and (value >= low if low_inclusive else value > low)
    below = _is_number(value) and (value <= high if high_inclusive else value < high)
    if not (above and below):
        allowed = f"{'[' if low_inclusive else '('}{low}, {high}{']' if high_inclusive else ')'}"
        raise ConfigError(name, f"must be a number in {allowed}, got {value!r}")


# -----------------------------------------------------------------------------------------------------------------
# 2. Data: English documentation text from Python's standard library, present on every machine without a download.


@functools.lru_cache(maxsize=1)
def load_corpus() -> torch.Tensor:
    """The corpus as a 1-D uint8 tensor of bytes, read once per process.

    `pydoc_data.topics` (the text `help()` shows, ≈450 KB on Python 3.11) is joined in sorted key order so the bytes
    are the same on every run. Some distributions strip `pydoc_data`; then the job falls back to the source text of a
    fixed list of pure-Python stdlib modules (English docstrings and comments mixed with code) and warns, since
    losses from the two corpora are not comparable.
    """
    try:
        from pydoc_data.topics import topics

        text = "\n\n".join(topics[key] for key in sorted(topics))
    except ImportError:
        text = _stdlib_source_text()
        warnings.warn("pydoc_data is missing from this Python; training on stdlib source text instead", stacklevel=2)
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8)


def _stdlib_source_text() -> str:
    """Fallback corpus: the source of stdlib modules that every CPython installation ships as .py files."""
    import inspect
    import importlib

    names = ("argparse", "difflib", "inspect", "textwrap", "typing", "dataclasses", "functools", "pathlib")
    return "\n\n".join(inspect.getsource(importlib.import_module(name)) for name in names)


def split_corpus(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic split: the last `VAL_FRACTION` of the bytes is validation, the rest training."""
    n_train = int(len(data) * (1 - VAL_FRACTION))
    return data[:n_train], data[n_train:]


def random_batch(data: torch.Tensor, cfg: DictConfig, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows of `context` bytes and their next-byte targets, drawn from `generator`."""
    starts = torch.randint(len(data) - cfg.context - 1, (cfg.batch_size,), generator=generator)
    return _windows(data, starts, cfg.context)


def eval_batches(data: torch.Tensor, cfg: DictConfig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed evaluation batches: windows evenly spaced over the whole split, the same for every seed and step.

    Every run of a sweep is scored on the same bytes, and the validation curve carries no sampling noise. There are
    `eval_batches` x `batch_size` windows, or `eval_windows` where the config has that optional key, so that runs of
    different batch sizes are scored on the same bytes too (a multiple of every batch size weights windows equally).
    """
    n_windows = cfg.get("eval_windows") or cfg.eval_batches * cfg.batch_size
    starts = torch.linspace(0, len(data) - cfg.context - 1, n_windows).long()
    return [_windows(data, chunk, cfg.context) for chunk in starts.split(cfg.batch_size)]


def _windows(data: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs `data[s : s + context]` and targets shifted by one byte, for each start `s`."""
    rows = data[starts[:, None] + torch.arange(context + 1)].long()
    return rows[:, :-1].contiguous(), rows[:, 1:].contiguous()


# -----------------------------------------------------------------------------------------------------------------
# 3. Model: a GPT-2-style decoder, as small as the config asks.


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position sees only itself and earlier positions."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        # (batch, length, width) -> (batch, head, length, width // head)
        q, k, v = (t.view(batch, length, self.n_head, width // self.n_head).transpose(1, 2) for t in (q, k, v))
        dropout_p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(batch, length, width)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward layer, 4× wider than the residual stream, with GELU."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln_mlp = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))
        return x + self.mlp(self.ln_mlp(x))


class GPT(nn.Module):
    """Token and learned position embeddings, `n_layer` blocks, a final LayerNorm, and a head tied to the embedding."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.context = cfg.context
        self.token_embedding = nn.Embedding(VOCAB_SIZE, cfg.d_model)
        self.position_embedding = nn.Embedding(cfg.context, cfg.d_model)
        self.dropout = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_final = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, VOCAB_SIZE, bias=False)
        self.head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2·n_layer).
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-byte cross-entropy (nats) of `idx` against `targets`, both (batch, length)."""
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.dropout(self.token_embedding(idx) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_final(x))
        return F.cross_entropy(logits.float().view(-1, VOCAB_SIZE), targets.view(-1))

    def count_params(self, non_embedding: bool = True) -> int:
        """Parameters, the tied head counted once; by default without the token and position embeddings."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.token_embedding.weight.numel() + self.position_embedding.weight.numel()
        return total


# -----------------------------------------------------------------------------------------------------------------
# 4. Size and compute, from the config alone.


def non_embedding_params(cfg: DictConfig | Mapping[str, Any]) -> int:
    """N of the Kaplan/Chinchilla convention: every parameter except token and position embeddings.

    Per block: two LayerNorms (2·2d), attention qkv and projection (4d² + 4d), MLP (8d² + 5d) = 12d² + 13d; plus the
    final LayerNorm (2d). The head is tied to the token embedding, so it adds nothing. Equal to
    `GPT(cfg).count_params()`, without building the model.
    """
    cfg = _as_config(cfg)
    check_model_shape(cfg)
    d = cfg.d_model
    return cfg.n_layer * (12 * d * d + 13 * d) + 2 * d


def total_params(cfg: DictConfig) -> int:
    """N plus the token and position embeddings."""
    return non_embedding_params(cfg) + (VOCAB_SIZE + cfg.context) * cfg.d_model


def training_steps(cfg: DictConfig) -> int:
    """Optimizer steps: ceil(tokens / (batch_size · context)) when `tokens` is set, else `max_steps`."""
    if cfg.get("tokens") is None:
        return int(cfg.max_steps)
    return max(1, math.ceil(cfg.tokens / (cfg.batch_size * cfg.context)))


# -----------------------------------------------------------------------------------------------------------------
# 5. Training loop pieces.


def learning_rate(step: int, steps: int, cfg: DictConfig) -> float:
    """Linear warmup over `warmup_steps`, then constant or cosine decay to `min_lr_ratio · lr` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, steps - 1 - cfg.warmup_steps)
    min_lr = cfg.lr * cfg.min_lr_ratio
    return min_lr + 0.5 * (cfg.lr - min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: GPT, cfg: DictConfig, device: str) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only, not on biases or LayerNorm gains (as nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.startswith("cuda"))


def resolve_device(cfg: DictConfig, ctx: JobContext) -> str:
    """`cfg.device` when set, else what the scheduler put in `ctx.device`; CUDA must actually be usable."""
    device = cfg.get("device") or ctx.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device", f"{device!r} requested but CUDA is not available here; use 'cpu' or null")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError("device", f"must be 'cpu', 'cuda', 'cuda:<index>' or null, got {device!r}")
    return device


def autocast_for(precision: str, device: str) -> tuple[Any, torch.amp.GradScaler | None]:
    """The autocast context for `precision` on `device`, and a gradient scaler for fp16.

    fp16 is refused on CPU rather than silently run in another precision: its gradients need loss scaling, which this
    job only does on CUDA. bf16 autocast works on both CPU and recent GPUs.
    """
    device_type = "cuda" if device.startswith("cuda") else "cpu"
    if precision == "fp32":
        return nullcontext(), None
    if precision == "fp16" and device_type == "cpu":
        raise ConfigError("precision", "fp16 needs a CUDA device; use bf16 or fp32 on cpu")
    if precision == "bf16" and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision", "bf16 is not supported by this GPU; use fp16 or fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return torch.autocast(device_type=device_type, dtype=dtype), scaler


@torch.no_grad()
def evaluate(model: GPT, batches: list[tuple[torch.Tensor, torch.Tensor]], autocast: Any) -> float:
    """Mean loss over fixed batches, in eval mode (no dropout)."""
    model.eval()
    with autocast:
        losses = [model(x, y).item() for x, y in batches]
    model.train()
    return sum(losses) / len(losses)


def _to(batch: tuple[torch.Tensor, torch.Tensor], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    return batch[0].to(device), batch[1].to(device)


def _as_config(cfg: DictConfig | Mapping[str, Any]) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


# -----------------------------------------------------------------------------------------------------------------
# 6. The job.


def train(cfg: DictConfig | Mapping[str, Any], ctx: JobContext) -> dict[str, float]:
    """Train one model as `cfg` says, stream curves through `ctx.log`, and return the final metrics.

    Curves (x axis: optimizer steps taken): `train_loss` and `lr` every `log_interval` steps (the loss of that step's
    batch), `val_loss` at step 0, every `eval_interval` steps and at the last step.
    """
    started = time.perf_counter()
    cfg = _as_config(cfg)
    check_config(cfg)
    device = resolve_device(cfg, ctx)
    autocast, scaler = autocast_for(cfg.precision, device)
    previous_threads = torch.get_num_threads()
    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, ctx, device, autocast, scaler, started)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    cfg: DictConfig,
    ctx: JobContext,
    device: str,
    autocast: Any,
    scaler: torch.amp.GradScaler | None,
    started: float,
) -> dict[str, float]:
    train_data, val_data = split_corpus(load_corpus())
    if len(val_data) <= cfg.context + 1:
        raise ConfigError("context", f"must be shorter than the validation split ({len(val_data)} bytes)")
    val_batches = [_to(b, device) for b in eval_batches(val_data, cfg)]
    train_eval_batches = [_to(b, device) for b in eval_batches(train_data, cfg)]

    # The seed fixes the initial weights, dropout masks and the order of training batches.
    torch.manual_seed(cfg.seed)
    batch_generator = torch.Generator().manual_seed(cfg.seed)
    model = GPT(cfg).to(device)
    optimizer = make_optimizer(model, cfg, device)
    steps = training_steps(cfg)
    tokens_per_step = cfg.batch_size * cfg.context

    initial_val_loss = val_loss = evaluate(model, val_batches, autocast)
    ctx.log(step=0, val_loss=initial_val_loss)
    train_s = 0.0
    for step in range(steps):
        tick = time.perf_counter()
        lr = learning_rate(step, steps, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = _to(random_batch(train_data, cfg, batch_generator), device)
        with autocast:
            loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        _backward_and_step(loss, model, optimizer, scaler, cfg)
        train_s += time.perf_counter() - tick

        done = step + 1
        if done % cfg.log_interval == 0 or done == steps:
            ctx.log(step=done, train_loss=loss.item(), lr=lr)
        if done % cfg.eval_interval == 0 or done == steps:
            val_loss = evaluate(model, val_batches, autocast)
            ctx.log(step=done, progress=done / steps, val_loss=val_loss)  # early stopping may end the run here

    tokens = steps * tokens_per_step
    n_params = model.count_params()
    return {
        "train_loss": evaluate(model, train_eval_batches, autocast),
        "val_loss": val_loss,
        "initial_val_loss": initial_val_loss,
        "val_bpb": val_loss / math.log(2),
        "n_params": float(n_params),
        "n_params_total": float(model.count_params(non_embedding=False)),
        "steps": float(steps),
        "tokens": float(tokens),
        # Kaplan's C ≈ 6·N·D with N non-embedding: forward + backward matmuls of the weights, ignoring the
        # attention-score products (2·n_layer·context·d_model per token forward) and the embedding/head.
        "flops": 6.0 * n_params * tokens,
        "tokens_per_s": tokens / train_s,
        "train_s": train_s,
        "wall_s": time.perf_counter() - started,
    }


def _backward_and_step(
    loss: torch.Tensor,
    model: GPT,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    cfg: DictConfig,
) -> None:
    """Backpropagate, clip the gradient norm to `grad_clip` (when set), and take one optimizer step."""
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if cfg.get("grad_clip") is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
