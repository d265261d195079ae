"""``paraplan model list`` and ``paraplan model show NAME|PATH``: the zoo, parameter counts, FLOPs per token."""

from __future__ import annotations

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from hwprofiles.loader import list_models, load_model

from ..errors import SpecError
from ..specs import ModelSpec
from ..work.conventions import training_flops_per_token
from ..work.params import ParameterCounts, parameter_counts
from .app import JSON_OPTION, app, console, print_json

model_app = typer.Typer(help="Model zoo and Hugging Face config.json import.", no_args_is_help=True)
app.add_typer(model_app, name="model")


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)  # built on first use (start-up)


class ModelSummary(_Result):
    """One row of ``paraplan model list``."""

    name: str = Field(description="zoo name")
    params_b: float = Field(description="total parameters, billions")
    active_params_b: float = Field(description="parameters one token uses, billions (MoE < total)")
    layers: int = Field(description="transformer layers")
    hidden: int = Field(description="hidden size")
    heads: int = Field(description="attention heads")
    kv_heads: int = Field(description="key/value heads")
    ffn_kind: str = Field(description="gelu, swiglu or relu")
    experts: int = Field(description="routed experts (0 = dense)")
    vocab: int = Field(description="vocabulary size")


class FlopsPerToken(_Result):
    """Training FLOPs per token (PaLM-style, Chowdhery et al. 2022 App. B)."""

    seq_length: int = Field(description="sequence length s of the attention term")
    model_flops: float = Field(description="6N + 12·L·h·s FLOPs per token, no recomputation")
    full_recompute_flops: float = Field(description="model_flops × 8/6: one extra forward pass")


class ModelReport(_Result):
    """``paraplan model show``: the architecture, its parameter counts and training FLOPs per token."""

    model: ModelSpec = Field(description="the model spec")
    parameters: ParameterCounts = Field(description="exact parameter counts")
    flops_per_token: FlopsPerToken = Field(description="training FLOPs per token")


def model_summary(model: ModelSpec) -> ModelSummary:
    """The ``model list`` row of ``model``."""
    counts = parameter_counts(model)
    return ModelSummary(
        name=model.name, params_b=counts.total / 1e9, active_params_b=counts.active / 1e9,
        layers=model.num_layers, hidden=model.hidden_size, heads=model.num_heads, kv_heads=model.kv_heads,
        ffn_kind=model.ffn_kind, experts=model.num_experts, vocab=model.vocab_size,
    )


def model_report(model: ModelSpec, seq_length: int) -> ModelReport:
    """Everything ``model show`` displays."""
    flops = FlopsPerToken(
        seq_length=seq_length, model_flops=training_flops_per_token(model, seq_length),
        full_recompute_flops=training_flops_per_token(model, seq_length, full_recompute=True),
    )
    return ModelReport(model=model, parameters=parameter_counts(model), flops_per_token=flops)


def _count(n: int) -> str:
    """``175,429,877,760 (175.43 B)``."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n:,} ({n / scale:.2f} {unit})"
    return f"{n:,}"


@model_app.command("list")
def list_cmd(json_out: bool = JSON_OPTION) -> None:
    """List the built-in models with their size and shape."""
    rows = [model_summary(load_model(name)) for name in list_models()]
    if json_out:
        print_json(rows)
        return
    table = Table(title="model zoo")
    for col in ("name", "params (B)", "layers", "hidden", "heads/kv", "ffn", "vocab"):
        table.add_column(col, justify="left" if col in ("name", "ffn") else "right")
    for r in rows:
        params = f"{r.params_b:,.2f}" + (f" ({r.active_params_b:,.2f} active)" if r.experts else "")
        ffn = r.ffn_kind + (f" {r.experts}x MoE" if r.experts else "")
        table.add_row(r.name, params, str(r.layers), str(r.hidden), f"{r.heads}/{r.kv_heads}", ffn, f"{r.vocab:,}")
    console.print(table)


@model_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="zoo name, model YAML path, or Hugging Face config.json path"),
    seq: int = typer.Option(2048, "--seq", help="sequence length for the FLOPs-per-token attention term"),
    json_out: bool = JSON_OPTION,
) -> None:
    """Architecture, parameter counts (embedding / per layer / total) and training FLOPs per token."""
    if seq < 1:
        raise SpecError(f"must be a positive number of tokens, got {seq}", field="--seq")
    report = model_report(load_model(name), seq)
    if json_out:
        print_json(report)
        return
    m, c, f = report.model, report.parameters, report.flops_per_token

    arch = Table(title=f"{m.name}: architecture", show_header=False)
    arch.add_column("field")
    arch.add_column("value")
    heads = f"{m.num_heads} (kv {m.kv_heads}, head dim {m.head_size})"
    if m.attention_kind == "mla":
        heads = f"{m.num_heads} (MLA, q/k head dim {m.qk_nope_head_dim + m.qk_rope_head_dim}, v {m.v_head_dim})"
    arch_rows = [
        ("layers", str(m.num_layers)), ("hidden", str(m.hidden_size)), ("heads", heads),
        ("ffn", f"{m.ffn_kind}, {m.ffn_hidden_size}"), ("norm", m.norm_kind),
        ("positions", m.position_kind + (f" ({m.max_position_embeddings})" if m.position_kind == "learned" else "")),
        ("vocab", f"{m.vocab_size:,}"), ("embeddings", "tied" if m.tied_embeddings else "untied"),
        ("biases", "all linears" if m.linear_bias else ("qkv only" if m.qkv_bias else "none")),
    ]
    if m.attention_kind == "mla":
        arch_rows.append(("attention", f"MLA: q rank {m.q_lora_rank}, kv rank {m.kv_lora_rank}, qk {m.qk_nope_head_dim}"
                                       f"+{m.qk_rope_head_dim} rope, v {m.v_head_dim}"))
    if m.is_moe:
        shared = f"{m.num_shared_experts} shared" + (f" (width {m.shared_expert_ffn_hidden_size})"
                                                     if m.shared_expert_ffn_hidden_size else "")
        arch_rows.append(("experts", f"{m.num_experts} routed (top-{m.moe_top_k}), {shared}, "
                                     f"width {m.expert_ffn_hidden_size or m.ffn_hidden_size}"))
        groups = (f", {m.moe_router_group_topk} of {m.moe_router_num_groups} groups per token"
                  if m.moe_router_group_topk else "")
        arch_rows.append(("router", f"{m.moe_router_score}" + (" + bias" if m.moe_router_bias else "") + groups))
        if m.num_dense_layers:
            arch_rows.append(("dense layers", f"first {m.num_dense_layers} (ffn {m.ffn_hidden_size})"))
    for row in arch_rows:
        arch.add_row(*row)
    console.print(arch)

    params = Table(title="parameters")
    params.add_column("part")
    params.add_column("count", justify="right")
    layer = c.per_layer
    param_rows = [
        ("embedding", c.embedding), ("position embedding", c.position_embedding),
        ("embedding norm", c.embedding_norm), ("per layer: attention", layer.attention),
        ("per layer: mlp" + (" (all experts)" if m.is_moe else ""), layer.mlp), ("per layer: norms", layer.norms),
        ("per layer: total", layer.total),
        *([("dense layer: total", c.dense_layer.total)] if c.dense_layer else []),
        (f"layers (x{c.num_layers})", c.layers_total),
        ("final norm", c.final_norm), ("output projection" + (" (tied)" if m.tied_embeddings else ""),
                                       c.output_projection),
        ("non-embedding", c.non_embedding), ("total", c.total),
    ]
    if m.is_moe:
        param_rows.append(("active per token", c.active))
        param_rows.append(("active per token, without input embedding", c.active_without_input_embedding))
    for part, n in param_rows:
        params.add_row(part, _count(n), style="bold" if part == "total" else None)
    console.print(params)
    console.print(
        f"training FLOPs per token at seq {f.seq_length}: {f.model_flops:.4g} (model FLOPs, 6N + 12·L·h·s), "
        f"{f.full_recompute_flops:.4g} with full recompute", highlight=False,
    )
