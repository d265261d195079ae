"""A small GPT-style decoder built from a ``planner.specs.ModelSpec``: the model the validator runs.

The planner and the validator describe the same model: every width, head count, FFN kind, norm kind,
position encoding and bias switch comes from the spec. Initialisation is deterministic from a seed, so
every rank (and the single-process reference) builds bit-identical weights before parallelising.

Layers sit in an ``nn.ModuleDict`` keyed by their index (as in torchtitan), so a pipeline stage can
delete the layers it does not own and keep the reference's parameter names.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from planner.errors import SpecError
from planner.specs import ModelSpec

from .feed_forward import FeedForward
from .moe import MoEFeedForward


def check_supported(model: ModelSpec) -> None:
    """Raise SpecError if the validator cannot build ``model`` (MLA, ALiBi)."""
    if model.attention_kind != "gqa":
        raise SpecError("the validator runs MHA/GQA attention only, not MLA", field="model.attention_kind")
    if model.position_kind == "alibi":
        raise SpecError("the validator supports position_kind learned or rope, not alibi", field="model.position_kind")


def _norm(model: ModelSpec) -> nn.Module:
    if model.norm_kind == "rmsnorm":
        return nn.RMSNorm(model.hidden_size, eps=1e-5)
    return nn.LayerNorm(model.hidden_size, eps=1e-5, bias=model.linear_bias)


def rope_tables(head_dim: int, seq: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary cos/sin tables, each (seq, head_dim/2) — Su et al. 2021, RoFormer (arXiv 2104.09864), eq. 34."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq, dtype=torch.float32), inv)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs of ``x`` (batch, heads, seq, head_dim) by the RoPE angles."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = cos[: x.shape[-2]], sin[: x.shape[-2]]
    out = torch.stack((x1 * c - x2 * s, x1 * s + x2 * c), dim=-1)
    return out.flatten(-2)


def _causal_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class Attention(nn.Module):
    """Causal self-attention with separate q/k/v projections (so tensor parallel shards them by head)."""

    def __init__(self, model: ModelSpec, seq: int):
        super().__init__()
        h, hd = model.hidden_size, model.head_size
        qkv_bias = model.linear_bias or model.qkv_bias
        self.head_dim = hd
        self.wq = nn.Linear(h, model.num_heads * hd, bias=qkv_bias)
        self.wk = nn.Linear(h, model.kv_heads * hd, bias=qkv_bias)
        self.wv = nn.Linear(h, model.kv_heads * hd, bias=qkv_bias)
        self.wo = nn.Linear(model.num_heads * hd, h, bias=model.linear_bias)
        self.group = model.num_heads // model.kv_heads
        self.recompute_core = False  # selective recompute: redo the attention core in backward
        self.rope = model.position_kind == "rope"
        if self.rope:
            cos, sin = rope_tables(hd, seq)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        # -1 heads: under tensor parallel each rank sees its local share of the heads.
        q = self.wq(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(b, s, -1, self.head_dim).transpose(1, 2)
        if self.rope:
            q, k = apply_rope(q, self.rope_cos, self.rope_sin), apply_rope(k, self.rope_cos, self.rope_sin)
        if self.group > 1:
            k, v = k.repeat_interleave(self.group, dim=1), v.repeat_interleave(self.group, dim=1)
        if self.recompute_core:
            y = checkpoint(_causal_sdpa, q, k, v, use_reentrant=False)
        else:
            y = _causal_sdpa(q, k, v)
        return self.wo(y.transpose(1, 2).reshape(b, s, -1))


class Block(nn.Module):
    """Pre-norm transformer layer: x + attn(norm(x)); x + ffn(norm(x))."""

    def __init__(self, model: ModelSpec, seq: int, dense: bool = False):
        super().__init__()
        self.attention_norm = _norm(model)
        self.attention = Attention(model, seq)
        self.ffn_norm = _norm(model)
        if model.is_moe and not dense:
            self.feed_forward = MoEFeedForward(model)
        else:
            self.feed_forward = FeedForward(model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.ffn_norm(x))


class GPT(nn.Module):
    """Decoder-only transformer. ``forward(tokens)`` returns logits (batch, seq, vocab).

    On a pipeline stage, ``tok_embeddings`` / ``norm`` / ``output`` are ``None`` where the stage does not
    own them, and ``forward`` then takes (and returns) hidden states instead.
    """

    def __init__(self, model: ModelSpec, seq: int):
        super().__init__()
        check_supported(model)
        self.spec = model
        self.tok_embeddings = nn.Embedding(model.vocab_size, model.hidden_size)
        self.pos_embeddings = (
            nn.Embedding(seq, model.hidden_size) if model.position_kind == "learned" else None
        )
        self.embedding_norm = _norm(model) if model.embedding_norm else None
        self.layers = nn.ModuleDict({str(i): Block(model, seq, i < model.num_dense_layers)
                                     for i in range(model.num_layers)})
        self.norm = _norm(model)
        self.output = nn.Linear(model.hidden_size, model.vocab_size, bias=False)
        if model.tied_embeddings:
            self.output.weight = self.tok_embeddings.weight
        self.recompute_layers = False  # full recompute: keep only each layer's input, redo it in backward

    def set_recompute(self, mode: str) -> None:
        """Activation recompute (Korthikanti et al. 2022, arXiv 2205.05198): none, selective, full.

        selective recomputes the attention core (scores, softmax, weighted sum) in backward; full keeps
        only each layer's input. Both use ``torch.utils.checkpoint`` (non-reentrant).
        """
        if mode not in ("none", "selective", "full"):
            raise SpecError(f"unknown recompute '{mode}'; allowed: none, selective, full", field="recompute")
        self.recompute_layers = mode == "full"
        for layer in self.layers.values():
            layer.attention.recompute_core = mode == "selective"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tok_embeddings is not None:
            h = self.tok_embeddings(x)
            if self.pos_embeddings is not None:
                h = h + self.pos_embeddings(torch.arange(x.shape[1], device=x.device)[None])
            if self.embedding_norm is not None:
                h = self.embedding_norm(h)
        else:
            h = x
        for layer in self.layers.values():
            h = checkpoint(layer, h, use_reentrant=False) if self.recompute_layers else layer(h)
        if self.norm is not None:
            h = self.norm(h)
        if self.output is not None:
            h = self.output(h)
        return h


def init_weights(module: nn.Module, seed: int, num_layers: int) -> None:
    """GPT-2 initialisation from ``seed``: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)).

    Radford et al. 2019 (GPT-2), section 2.3. Parameters are filled in name order, so the result depends
    only on the seed and the architecture.
    """
    gen = torch.Generator().manual_seed(seed)
    resid_std = 0.02 / math.sqrt(2 * num_layers)
    seen: set[int] = set()
    with torch.no_grad():
        for name, p in module.named_parameters():
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.ndim == 1:
                fill = torch.ones_like(p) if name.endswith("norm.weight") else torch.zeros_like(p)
            else:
                std = resid_std if name.endswith(("wo.weight", "w2.weight")) else 0.02
                fill = torch.randn(p.shape, generator=gen, dtype=p.dtype) * std
            p.copy_(fill)


def build_model(model: ModelSpec, seq: int, seed: int) -> GPT:
    """The full model on CPU in fp32, deterministically initialised from ``seed``."""
    net = GPT(model, seq)
    init_weights(net, seed, model.num_layers)
    return net


def make_batch(vocab: int, batch: int, seq: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token batch (inputs, targets), each (batch, seq) int64, deterministic from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, vocab, (batch, seq + 1), generator=gen)
    return tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over every token of the (micro-)batch."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(0, 1))


def optimizer_class(kind: str) -> type[torch.optim.Optimizer]:
    """torch's optimizer for a job's ``optimizer`` field: Adam or SGD."""
    return torch.optim.Adam if kind == "adam" else torch.optim.SGD


def make_job_optimizer(params, job) -> torch.optim.Optimizer:
    """The job's optimizer over ``params`` at its learning rate, the implementation its recipe prices
    (validate.job.JobSpec.optimizer_options)."""
    return optimizer_class(job.optimizer)(params, lr=job.lr, **job.optimizer_options())
