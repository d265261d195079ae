"""Exact parameter counts of a ModelSpec: the one place in paraplan where parameters are counted.

Counts are integers (elements, not bytes). Layout of one decoder layer (pre-norm GPT / Llama):

- attention: Q is ``h x (H*d)``, K and V are ``h x (KV*d)`` each (GQA/MQA-aware), the output
  projection is ``(H*d) x h``; with ``linear_bias`` all four have a bias, with ``qkv_bias`` only
  Q, K and V (Qwen2).
- MLP: gelu/relu has 2 matrices ``h x f`` and ``f x h``; swiglu has 3 (gate, up, down;
  Shazeer 2020, arXiv 2002.05202). Biases with ``linear_bias``. A MoE layer has a router
  ``h x E`` (a per-expert bias with ``moe_router_bias``: gpt-oss, DeepSeek-V3's score-correction
  bias) and E routed + S shared experts, each an MLP of width ``expert_ffn_hidden_size`` (shared:
  ``shared_expert_ffn_hidden_size``), plus Qwen2-MoE's ``h x 1`` shared-expert gate. The first
  ``num_dense_layers`` layers have a dense FFN of width ``ffn_hidden_size`` (DeepSeek-V3).
- MLA attention (DeepSeek-V2, arXiv 2405.04434, Sec. 2.1, Eqs. 9-19): W_DQ ``h x d_c'`` with its
  RMSNorm, W_UQ/W_QR ``d_c' x H(d_nope + d_rope)`` (``h x H(d_nope + d_rope)`` without Q
  compression), W_DKV + W_KR ``h x (d_c + d_rope)`` with an RMSNorm over d_c, W_UK/W_UV
  ``d_c x H(d_nope + d_v)``, W_O ``H d_v x h``.
- norms: two per layer (four with ``sandwich_norm``, Gemma 2), plus Qwen3's per-head Q and K
  RMSNorms (2d); LayerNorm has weight and bias (2h), RMSNorm a weight only (h).

Embeddings: token table ``V x h``; a learned position table ``P x h`` (none for RoPE/ALiBi); an
optional norm after the embedding (BLOOM); a final norm; an output projection ``h x V`` unless tied.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..errors import SpecError
from ..specs import ModelSpec


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LayerParameterCounts(_Result):
    """Parameters of one transformer layer, by module (biases counted in their module)."""

    attention: int = Field(description="Q, K, V and output projections with their biases")
    mlp: int = Field(description="dense FFN, or router + all routed and shared experts for MoE")
    mlp_active: int = Field(description="MLP parameters one token uses (router + top-k + shared experts)")
    norms: int = Field(description="the layer's norms (two pre-norms; four with sandwich norms; + Q/K norms)")
    total: int = Field(description="attention + mlp + norms")
    active: int = Field(description="attention + mlp_active + norms")


class ParameterCounts(_Result):
    """Parameter count of a whole model, split the way memory and FLOPs accounting need it."""

    model: str = Field(description="model name")
    embedding: int = Field(description="token embedding table V*h")
    position_embedding: int = Field(description="learned position table P*h (0 for RoPE / ALiBi)")
    embedding_norm: int = Field(description="norm right after the embedding (BLOOM), else 0")
    num_layers: int = Field(description="transformer layers")
    per_layer: LayerParameterCounts = Field(description="one transformer layer (a MoE layer for MoE models)")
    num_dense_layers: int = Field(0, description="leading dense-FFN layers of a MoE model (DeepSeek)")
    dense_layer: LayerParameterCounts | None = Field(None, description="one of those dense layers, if any")
    layers_total: int = Field(description="(num_layers - num_dense_layers) * per_layer.total + "
                              "num_dense_layers * dense_layer.total")
    final_norm: int = Field(description="norm before the output projection")
    output_projection: int = Field(description="untied output projection h*V (0 when tied)")
    total: int = Field(description="every parameter, counted once")
    non_embedding: int = Field(
        description="total minus token/position embeddings, embedding norm and untied output projection "
        "(the N of Kaplan et al. 2020, arXiv 2001.08361)"
    )
    active: int = Field(description="parameters one token uses (== total for dense models)")
    active_non_embedding: int = Field(description="non_embedding restricted to the experts a token uses")
    active_without_input_embedding: int = Field(
        0, description="active minus the token/position tables and embedding norm (lookups, not matmuls): "
        "the convention of the published active counts of DeepSeek-V3 (36.6B) and gpt-oss")


def norm_parameters(model: ModelSpec) -> int:
    """Parameters of one norm over h: LayerNorm weight + bias (2h), RMSNorm weight (h)."""
    return (2 if model.norm_kind == "layernorm" else 1) * model.hidden_size


def attention_parameters(model: ModelSpec) -> int:
    """Attention projections of one layer with their biases (GQA-aware; MLA per the module docstring)."""
    h, H = model.hidden_size, model.num_heads
    if model.attention_kind == "mla":
        qk = model.qk_nope_head_dim + model.qk_rope_head_dim
        q_lora = model.q_lora_rank
        q = (h * q_lora + q_lora + q_lora * H * qk) if q_lora else h * H * qk
        kv = h * (model.kv_lora_rank + model.qk_rope_head_dim) + model.kv_lora_rank
        kv += model.kv_lora_rank * H * (model.qk_nope_head_dim + model.v_head_dim)
        return q + kv + H * model.v_head_dim * h
    q_width, kv_width = H * model.head_size, model.kv_heads * model.head_size
    weights = h * q_width + 2 * h * kv_width + q_width * h
    biases = 0
    if model.linear_bias:
        biases = q_width + 2 * kv_width + h
    elif model.qkv_bias:
        biases = q_width + 2 * kv_width
    return weights + biases


def mlp_parameters(model: ModelSpec, inner: int) -> int:
    """One FFN of inner width ``inner``: 2 matrices (gelu/relu) or 3 (swiglu), plus biases."""
    h = model.hidden_size
    matrices = 3 if model.gated_ffn else 2
    weights = matrices * h * inner
    biases = ((matrices - 1) * inner + h) if model.linear_bias else 0
    return weights + biases


def expert_ffn_size(model: ModelSpec) -> int:
    """Inner width of one expert (``expert_ffn_hidden_size``, else ``ffn_hidden_size``)."""
    return model.expert_ffn_hidden_size or model.ffn_hidden_size


def shared_expert_ffn_size(model: ModelSpec) -> int:
    """Inner width of one shared expert (``shared_expert_ffn_hidden_size``, else the expert width)."""
    return model.shared_expert_ffn_hidden_size or expert_ffn_size(model)


def layer_parameter_counts(model: ModelSpec, *, dense: bool = False) -> LayerParameterCounts:
    """Parameters of one transformer layer, total and per token (MoE); ``dense`` for one of a MoE
    model's leading dense-FFN layers."""
    attention = attention_parameters(model)
    norms = (4 if model.sandwich_norm else 2) * norm_parameters(model)
    if model.qk_norm:
        norms += 2 * model.head_size
    if model.is_moe and not dense:
        expert = mlp_parameters(model, expert_ffn_size(model))
        router = model.hidden_size * model.num_experts + (model.num_experts if model.moe_router_bias else 0)
        shared = model.num_shared_experts * mlp_parameters(model, shared_expert_ffn_size(model))
        shared += model.hidden_size if (model.shared_expert_gate and model.num_shared_experts) else 0
        mlp = router + model.num_experts * expert + shared
        mlp_active = router + model.moe_top_k * expert + shared
    else:
        mlp = mlp_active = mlp_parameters(model, model.ffn_hidden_size)
    return LayerParameterCounts(
        attention=attention, mlp=mlp, mlp_active=mlp_active, norms=norms,
        total=attention + mlp + norms, active=attention + mlp_active + norms,
    )


def parameter_counts(model: ModelSpec) -> ParameterCounts:
    """Exact integer parameter counts of ``model`` (see the module docstring for the layout)."""
    h, vocab = model.hidden_size, model.vocab_size
    layer = layer_parameter_counts(model)
    embedding = vocab * h
    position = model.max_position_embeddings * h if model.position_kind == "learned" else 0
    embedding_norm = norm_parameters(model) if model.embedding_norm else 0
    final_norm = norm_parameters(model)
    output = 0 if model.tied_embeddings else h * vocab
    k = model.num_dense_layers
    dense = layer_parameter_counts(model, dense=True) if k else None
    layers_total = (model.num_layers - k) * layer.total + (dense.total * k if dense else 0)
    non_embedding = layers_total + final_norm
    active_non_embedding = (model.num_layers - k) * layer.active + (dense.active * k if dense else 0) + final_norm
    outside = embedding + position + embedding_norm + output
    active = active_non_embedding + outside
    return ParameterCounts(
        model=model.name, embedding=embedding, position_embedding=position, embedding_norm=embedding_norm,
        num_layers=model.num_layers, per_layer=layer, num_dense_layers=k, dense_layer=dense,
        layers_total=layers_total, final_norm=final_norm,
        output_projection=output, total=non_embedding + outside, non_embedding=non_embedding,
        active=active, active_non_embedding=active_non_embedding,
        active_without_input_embedding=active - embedding - position - embedding_norm + (embedding if model.tied_embeddings else 0),
    )


def tensor_parallel_replicated_parameters(model: ModelSpec) -> int:
    """Parameters every tensor-parallel rank holds in full in Megatron-LM's layout.

    Megatron shards the Q/K/V, first MLP and (vocab-parallel) embedding matrices with their
    biases, and the output/down projections' weights; it replicates the norms, the biases of the
    row-parallel output and down projections, and the learned position table (Shoeybi et al. 2019,
    arXiv 1909.08053, Sec. 3; the list of TP-replicated patterns in Megatron-DeepSpeed's
    ``GPTModelPipe.universal_checkpoint_info``). Dense models only.
    """
    if model.is_moe:
        raise SpecError("tensor-parallel replication is counted for dense models only", field="num_experts")
    h = model.hidden_size
    row_parallel_biases = 2 * h if model.linear_bias else 0
    per_layer = 2 * norm_parameters(model) + row_parallel_biases
    counts = parameter_counts(model)
    return (model.num_layers * per_layer + counts.final_norm + counts.embedding_norm
            + counts.position_embedding)


def deepspeed_pipeline_total_params(model: ModelSpec, tp: int, pp: int) -> int:
    """The ``TOTAL_PARAMS`` a Megatron-DeepSpeed pipeline run logs for ``model`` at ``tp`` x ``pp``.

    DeepSpeed's ``PipelineEngine`` sums each rank's parameter count over the model-parallel group
    (the tp*pp ranks of one replica; deepspeed/runtime/pipe/engine.py). So every TP-replicated
    tensor is counted ``tp`` times, and with ``pp > 1`` and tied embeddings the whole embedding
    module (word table, position table, embedding norm) is counted twice, because
    ``GPTModelPipe`` places a tied copy of it on the last stage for the logits. This is a logging
    convention, useful for checking an architecture against a published log; the model has
    ``parameter_counts(model).total`` parameters.
    """
    if tp < 1 or pp < 1:
        raise SpecError(f"tp({tp}) and pp({pp}) must be >= 1", field="layout")
    counts = parameter_counts(model)
    total = counts.total + (tp - 1) * tensor_parallel_replicated_parameters(model)
    if pp > 1 and model.tied_embeddings:
        total += counts.embedding + tp * (counts.position_embedding + counts.embedding_norm)
    return total
