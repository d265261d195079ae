"""torchtitan layout rules (torchtitan 0.3.0; line numbers are of that release's sources).

torchtitan builds its models from Python config registries; the export targets the ``llama3``
module (dense) and builds the planned model with its layer builder (``_build_llama3_layers``), so a dense
model must have that architecture: RMSNorm, SwiGLU, RoPE, no biases, head width h / heads (the flavour
table below only picks torchtitan's recipe to start from); a MoE model must be one of the ``qwen3`` module's
Qwen3-MoE flavours (FSDP + expert parallelism; table below, from torchtitan/models/qwen3/__init__.py).
Sharding is FSDP2 (ZeRO-3) or replication (DDP semantics,
``fully_shard`` over a mesh of shard degree 1): there is no ZeRO-1/2.
"""

from __future__ import annotations

from ..specs import Layout, ModelSpec, TrainingSpec
from .common import Rule
from .offload import TORCHTITAN_OFFLOAD

LLAMA3 = "torchtitan/models/llama3/__init__.py"

# flavour -> (dim, n_layers, n_heads, n_kv_heads, vocab_size, ffn hidden (compute_ffn_hidden_dim), tied)
LLAMA3_FLAVOURS: dict[str, tuple[int, int, int, int, int, int, bool]] = {
    "1B": (2048, 16, 32, 8, 128256, 8192, True),        # _1b, lines 148-189
    "3B": (3072, 28, 24, 8, 128256, 8192, True),        # _3b, lines 192-233
    "8B": (4096, 32, 32, 8, 128256, 14336, False),      # _8b, lines 236-274
    "70B": (8192, 80, 64, 8, 128256, 28672, False),     # _70b, lines 277-315
    "405B": (16384, 126, 128, 8, 128256, 53248, False),  # _405b, lines 318-356
}
MAX_SEQ_LEN = 131072  # ComplexRoPE.Config(max_seq_len=131072) of every llama3 flavour
QWEN3 = "torchtitan/models/qwen3/__init__.py"

# Qwen3-MoE flavour -> (dim, n_layers, n_heads, n_kv_heads, head_dim, vocab, moe_hidden_dim, num_experts, top_k),
# from torchtitan/models/qwen3/__init__.py:516-595 (_30b_a3b, _235b_a22b); RoPE max_seq_len 40960
QWEN3_MOE_FLAVOURS: dict[str, tuple[int, ...]] = {
    "30B-A3B": (2048, 48, 32, 4, 128, 151936, 768, 128, 8),
    "235B-A22B": (4096, 94, 64, 4, 128, 151936, 1536, 128, 8),
}
QWEN3_MAX_SEQ_LEN = 40960
SCHEDULE_NAMES = {"gpipe": "GPipe", "1f1b": "1F1B", "interleaved-1f1b": "Interleaved1F1B"}


def torchtitan_stage_layers(layers: int, pp: int, vpp: int = 1) -> list[int]:
    """Layers per pipeline rank as torchtitan splits them when no split points are given
    (torchtitan 9dec370 parallelisms/pipelining_utils.py ``generate_split_points``): ``pp * vpp`` stages
    (looped schedules: ``vpp`` stages per rank, rank r holding stages r, r + pp, ...); the first stage
    gets ``layers // stages``, the middle ones one more while the remainder lasts, the last what is left."""
    stages = pp * vpp
    if stages == 1:
        return [layers]
    base, extra = divmod(layers, stages)
    sizes = [base]
    for _ in range(stages - 2):
        take = base + 1 if extra > 0 else base
        extra -= 1 if extra > 0 else 0
        sizes.append(take)
    sizes.append(layers - sum(sizes))
    return [sum(sizes[r + k * pp] for k in range(vpp)) for r in range(pp)]


def llama3_architecture(model: ModelSpec) -> bool:
    """True when torchtitan's llama3 layer builder builds this model (llama3/__init__.py:69-110)."""
    arch = (model.norm_kind, model.ffn_kind, model.position_kind, model.linear_bias, model.qkv_bias,
            model.embedding_norm, model.is_moe, model.attention_kind, model.qk_norm, model.sandwich_norm,
            model.head_dim in (None, model.hidden_size // model.num_heads))
    return arch == ("rmsnorm", "swiglu", "rope", False, False, False, False, "gqa", False, False, True)


def llama3_flavour(model: ModelSpec) -> str | None:
    """The torchtitan llama3 flavour with exactly this architecture and size, or None."""
    key = (model.hidden_size, model.num_layers, model.num_heads, model.kv_heads, model.vocab_size,
           model.ffn_hidden_size, model.tied_embeddings)
    if not llama3_architecture(model):
        return None
    return next((name for name, dims in LLAMA3_FLAVOURS.items() if dims == key), None)


def qwen3_moe_flavour(model: ModelSpec) -> str | None:
    """The torchtitan qwen3 MoE flavour with exactly this architecture (Q/K norms, SwiGLU experts, no shared
    experts, untied head), or None."""
    if not (model.is_moe and model.qk_norm and model.ffn_kind == "swiglu" and not model.num_shared_experts
            and not model.linear_bias and not model.tied_embeddings and not model.num_dense_layers):
        return None
    key = (model.hidden_size, model.num_layers, model.num_heads, model.kv_heads, model.head_size, model.vocab_size,
           model.expert_ffn_hidden_size, model.num_experts, model.moe_top_k)
    return next((name for name, dims in QWEN3_MOE_FLAVOURS.items() if dims == key), None)


def _model(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if llama3_architecture(model) or qwen3_moe_flavour(model) is not None:
        return None
    if model.is_moe:
        why = (f"is a MoE model that matches no torchtitan qwen3 MoE flavour ({', '.join(QWEN3_MOE_FLAVOURS)}); the "
               "export writes the llama3 and qwen3 modules only")
    elif model.qkv_bias:
        why = "has QKV biases (Qwen2; torchtitan's qwen3 module has q/k norms and no QKV bias)"
    elif model.norm_kind != "rmsnorm" or model.ffn_kind != "swiglu" or model.position_kind != "rope" \
            or model.linear_bias:
        why = (f"has {model.norm_kind}/{model.ffn_kind}/{model.position_kind} positions"
               f"{'/biases' if model.linear_bias else ''} (torchtitan's dense module is llama3: RMSNorm, "
               "SwiGLU, RoPE, no biases)")
    else:
        why = ("has multi-latent attention, Q/K norms, sandwich norms or a head width other than h / heads "
               "(torchtitan's llama3 layers: GQA, head width h / heads)")
    return f"model {model.name} {why}"


def _zero(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    z = layout.effective_zero_stage
    if layout.dp > 1 and z in (1, 2):
        return (f"ZeRO-{z}: torchtitan shards with FSDP2 (parameters, gradients and optimizer state: ZeRO-3) "
                "or replicates; it has no ZeRO-1/2")
    return None


def _precision(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if training.precision == "fp16":
        return "fp16: training.mixed_precision_param is 'bfloat16' or 'float32' only"
    return None


def _schedule(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if layout.pp > 1 and layout.schedule not in SCHEDULE_NAMES:
        return (f"schedule {layout.schedule}: torchtitan's zero-bubble schedules are multi-stage "
                "(InterleavedZeroBubble, ZBVZeroBubble); there is no single-stage ZB-H1")
    return None


def _sequence(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    qwen3 = qwen3_moe_flavour(model) is not None
    limit = QWEN3_MAX_SEQ_LEN if qwen3 else MAX_SEQ_LEN
    if training.seq_length > limit:
        return f"seq_length({training.seq_length}) > the {'qwen3' if qwen3 else 'llama3'} RoPE table ({limit})"
    if layout.ep > 1 and not model.is_moe:
        return f"ep({layout.ep}) > 1 on a dense llama3 model"
    return None


def _experts(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str | None:
    if model.is_moe and layout.ep > 1 and layout.expert_tp != 1:
        return (f"etp({layout.expert_tp}) > 1: torchtitan does not split experts over tensor parallelism; ep borrows "
                "the tp ranks (efsdp = dp_shard * cp * tp / ep), so etp is 1")
    return None


TORCHTITAN_RULES = (
    Rule("model", f"{LLAMA3}:69-110 (_build_llama3_layers)", _model),
    Rule("zero", "torchtitan/models/llama3/parallelize.py:69-89 (apply_fsdp_to_decoder)", _zero),
    Rule("precision", "torchtitan/config/configs.py:85", _precision),
    Rule("schedule", "torch/distributed/pipelining/schedules.py get_schedule_class", _schedule),
    Rule("sequence", f"{LLAMA3}:306-311; {QWEN3}:516-595", _sequence),
    Rule("experts", "torchtitan/config/configs.py:279-287; torchtitan/distributed/parallel_dims.py:279", _experts),
    TORCHTITAN_OFFLOAD,
)
