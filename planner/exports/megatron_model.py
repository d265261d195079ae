"""The model half of a Megatron-LM export (megatron-core 0.19.2 ``pretrain_gpt.py`` flags), generated
from the ModelSpec: every architecture field that changes what Megatron builds has its flag here.

- attention: GQA (``--group-query-attention --num-query-groups``, ``--kv-channels`` for a head width
  other than h / heads, ``--add-qkv-bias``) or multi-latent attention (``--multi-latent-attention``
  with the q/kv LoRA ranks and the no-RoPE / RoPE / value head widths; DeepSeek-V2, arXiv 2405.04434,
  Sec. 2.1), per-head Q/K RMSNorm (``--qk-layernorm``, Qwen3);
- positions, norm, FFN kind, biases, tied embeddings, vocabulary;
- mixture of experts: expert count, top-k, expert width, the dense / MoE layer pattern
  (``--moe-layer-freq``, DeepSeek-V3's 3 dense layers), the router's score function, DeepSeek's
  score-correction bias (``--moe-router-enable-expert-bias``) and group-limited routing, shared experts
  and their gate.

The flags are the ``parse_args`` options of megatron/training/arguments.py (``_add_moe_args``,
``_add_mla_args`` and the TransformerConfig fields turned into options by ``ArgumentGroupFactory``,
arguments.py:2290); the framework test group builds Megatron-Core's GPTModel from them on meta tensors
and compares its parameter count with the plan's (tests/frameworks/fw_megatron_model.py).
"""

from __future__ import annotations

from ..specs import ModelSpec, TrainingSpec


def vocab_divisor(vocab: int, tp: int) -> int:
    """``--make-vocab-size-divisible-by``: the largest power of two <= 128 (Megatron's default) with
    divisor * tp dividing ``vocab``, so that Megatron's padding keeps the planned (padded) vocabulary;
    128 when no power of two does (vocab % tp != 0: Megatron pads, as in real runs; see padded_vocab)."""
    d = 128
    while d > 1 and vocab % (d * tp):
        d //= 2
    return d if vocab % (d * tp) == 0 else 128


def padded_vocab(vocab: int, tp: int) -> int:
    """The vocabulary Megatron builds: ceil(vocab / (divisor * tp)) * divisor * tp
    (megatron/core/tokenizers/utils/build_tokenizer.py:124-137)."""
    m = vocab_divisor(vocab, tp) * tp
    return -(-vocab // m) * m


def attention_args(model: ModelSpec) -> list[str]:
    """Heads, GQA or MLA, head widths, QK norm."""
    a = ["--num-attention-heads", str(model.num_heads)]
    if model.attention_kind == "mla":
        a.append("--multi-latent-attention")
        if model.q_lora_rank is not None:
            a += ["--q-lora-rank", str(model.q_lora_rank)]
        a += ["--kv-lora-rank", str(model.kv_lora_rank), "--qk-head-dim", str(model.qk_nope_head_dim),
              "--qk-pos-emb-head-dim", str(model.qk_rope_head_dim), "--v-head-dim", str(model.v_head_dim)]
    else:
        if model.head_dim is not None and model.head_dim != model.hidden_size // model.num_heads:
            a += ["--kv-channels", str(model.head_dim)]
        if model.kv_heads != model.num_heads:
            a += ["--group-query-attention", "--num-query-groups", str(model.kv_heads)]
    if model.qk_norm:
        a.append("--qk-layernorm")
    return a


def moe_layer_pattern(model: ModelSpec) -> str:
    """``--moe-layer-freq`` as Megatron's Python list expression: 0 = dense FFN, 1 = MoE layer."""
    k = model.num_dense_layers
    return f"([0]*{k}+[1]*{model.num_layers - k})"


def moe_dispatch_args(training: TrainingSpec) -> list[str]:
    """How the MoE layers dispatch and overlap (TransformerConfig fields, megatron/core/transformer/
    transformer_config.py): the alltoall dispatcher or the flex one with DeepEP, padding to capacity, the
    shared-expert and combined-1F1B all-to-all overlaps (--delay-wgrad-compute, an optional addition to the
    latter, is not written: Megatron refuses it beside an overlapped gradient reduction without Transformer
    Engine >= 2.8, megatron/training/arguments.py:1822-1827)."""
    a = (["--moe-token-dispatcher-type", "flex", "--moe-flex-dispatcher-backend", training.moe_token_dispatcher]
         if training.moe_token_dispatcher != "alltoall" else ["--moe-token-dispatcher-type", "alltoall"])
    if training.moe_capacity_factor is not None:
        a += ["--moe-expert-capacity-factor", f"{training.moe_capacity_factor:g}", "--moe-pad-expert-input-to-capacity"]
    if training.moe_shared_expert_overlap:
        a.append("--moe-shared-expert-overlap")
    if training.moe_a2a_overlap:
        a.append("--overlap-moe-expert-parallel-comm")
    return a


def moe_args(model: ModelSpec, training: TrainingSpec) -> list[str]:
    """Experts, router, shared experts and the dense / MoE layer pattern (empty for a dense model)."""
    if not model.is_moe:
        return []
    expert = model.expert_ffn_hidden_size or model.ffn_hidden_size
    a = ["--num-experts", str(model.num_experts), "--moe-router-topk", str(model.moe_top_k),
         "--moe-ffn-hidden-size", str(expert), "--moe-grouped-gemm"] + moe_dispatch_args(training)
    if model.num_dense_layers:
        a += ["--moe-layer-freq", moe_layer_pattern(model)]
    if model.num_shared_experts:
        shared = model.shared_expert_ffn_hidden_size or expert
        a += ["--moe-shared-expert-intermediate-size", str(model.num_shared_experts * shared)]
        if model.shared_expert_gate:
            a.append("--moe-shared-expert-gate")
    if model.moe_router_score == "sigmoid":
        a += ["--moe-router-score-function", "sigmoid"]
        if model.moe_router_bias and not model.linear_bias:
            # DeepSeek-V3's score-correction bias (aux-loss-free balancing); with --add-bias-linear the
            # router's own linear bias carries it instead (gpt-oss)
            a.append("--moe-router-enable-expert-bias")
    if model.moe_router_num_groups > 1:
        a += ["--moe-router-num-groups", str(model.moe_router_num_groups),
              "--moe-router-group-topk", str(model.moe_router_group_topk or model.moe_router_num_groups)]
    return a


def model_args(model: ModelSpec, training: TrainingSpec, tp: int) -> list[str]:
    """Architecture: shape, attention, norm, FFN, positions, biases, embeddings, experts, vocabulary."""
    a = ["--num-layers", str(model.num_layers), "--hidden-size", str(model.hidden_size),
         "--ffn-hidden-size", str(model.ffn_hidden_size)]
    a += attention_args(model)
    a += ["--seq-length", str(training.seq_length),
          "--max-position-embeddings", str(max(model.max_position_embeddings, training.seq_length))]
    if model.position_kind == "rope":
        a += ["--position-embedding-type", "rope", "--rotary-base", str(int(model.rope_theta or 10000))]
    if model.norm_kind == "rmsnorm":
        a += ["--normalization", "RMSNorm"]
    if model.ffn_kind == "swiglu":
        a.append("--swiglu")
    if not model.tied_embeddings:
        a.append("--untie-embeddings-and-output-weights")
    if not model.linear_bias:
        a.append("--disable-bias-linear")
        if model.qkv_bias:
            a.append("--add-qkv-bias")
    a += moe_args(model, training)
    if training.mtp_layers:  # DeepSeek-V3 multi-token prediction modules (arXiv 2412.19437 Sec. 2.2)
        a += ["--mtp-num-layers", str(training.mtp_layers)]
    a += ["--vocab-size", str(model.vocab_size),
          "--make-vocab-size-divisible-by", str(vocab_divisor(model.vocab_size, tp))]
    return a
