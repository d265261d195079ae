"""Megatron-LM arguments for a plan (megatron-core 0.19.2, ``pretrain_gpt.py``).

Every flag is a ``parse_args`` option of megatron/training/arguments.py in that release; the
framework test group (tests/frameworks) runs Megatron's own ``parse_args`` + ``validate_args`` on
these exports. Layout rules Megatron enforces are in planner.frameworks.megatron; this module only
renders (no formulas: degrees and sizes are copied from the plan).
"""

from __future__ import annotations

from ..frameworks import VERSIONS, check_launchable
from ..frameworks.common import virtual_stage_layers
from ..specs import Layout, ModelSpec, TrainingSpec
from ..specs.pipeline_layout import layout_string

FRAMEWORK = "megatron"


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


def pipeline_layout(layout: Layout, model: ModelSpec, mtp_layers: int = 0) -> str:
    """``--pipeline-model-parallel-layout``: virtual stages separated by ``|``, the embedding ``E``
    on the first and the MTP modules ``m`` and the loss ``L`` on the last (PipelineParallelLayerLayout
    syntax, planner.specs.pipeline_layout)."""
    return layout_string(virtual_stage_layers(layout, model), mtp_layers)


def moe_dispatch_args(training: TrainingSpec) -> list[str]:
    """How the MoE layers dispatch and overlap (TransformerConfig fields, megatron/core/transformer/
    transformer_config.py): the alltoall dispatcher or the flex one with DeepEP, padding to capacity, the
    shared-expert and combined-1F1B all-to-all overlaps (--delay-wgrad-compute, an optional addition to the
    latter, is not written: Megatron refuses it beside an overlapped gradient reduction without Transformer
    Engine >= 2.8, megatron/training/arguments.py:1822-1827)."""
    a = (["--moe-token-dispatcher-type", "flex", "--moe-flex-dispatcher-backend", "deepep"]
         if training.moe_token_dispatcher == "deepep" else ["--moe-token-dispatcher-type", "alltoall"])
    if training.moe_capacity_factor is not None:
        a += ["--moe-expert-capacity-factor", f"{training.moe_capacity_factor:g}", "--moe-pad-expert-input-to-capacity"]
    if training.moe_shared_expert_overlap:
        a.append("--moe-shared-expert-overlap")
    if training.moe_a2a_overlap:
        a.append("--overlap-moe-expert-parallel-comm")
    return a


def model_args(model: ModelSpec, training: TrainingSpec, tp: int) -> list[str]:
    """Architecture: shape, attention kind, norm, FFN, positions, biases, embeddings, vocabulary."""
    a = ["--num-layers", str(model.num_layers), "--hidden-size", str(model.hidden_size),
         "--ffn-hidden-size", str(model.ffn_hidden_size), "--num-attention-heads", str(model.num_heads)]
    if model.head_dim is not None and model.head_dim != model.hidden_size // model.num_heads:
        a += ["--kv-channels", str(model.head_dim)]
    if model.kv_heads != model.num_heads:
        a += ["--group-query-attention", "--num-query-groups", str(model.kv_heads)]
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
    if model.is_moe:
        a += ["--num-experts", str(model.num_experts), "--moe-router-topk", str(model.moe_top_k),
              "--moe-ffn-hidden-size", str(model.expert_ffn_hidden_size or model.ffn_hidden_size),
              "--moe-grouped-gemm"] + moe_dispatch_args(training)
        if model.num_shared_experts:
            a += ["--moe-shared-expert-intermediate-size",
                  str(model.num_shared_experts * (model.expert_ffn_hidden_size or model.ffn_hidden_size))]
    if training.mtp_layers:
        a += ["--mtp-num-layers", str(training.mtp_layers)]
    a += ["--vocab-size", str(model.vocab_size),
          "--make-vocab-size-divisible-by", str(vocab_divisor(model.vocab_size, tp))]
    return a


def parallel_args(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[str]:
    """Degrees, pipeline split, sharding and overlaps."""
    a = ["--tensor-model-parallel-size", str(layout.tp), "--pipeline-model-parallel-size", str(layout.pp)]
    even = model.num_layers % (layout.pp * layout.vpp) == 0 and layout.stage_layers is None
    if layout.pp > 1 and (not even or training.mtp_layers):
        a += ["--pipeline-model-parallel-layout", layout.pipeline_layout or pipeline_layout(layout, model,
                                                                                          training.mtp_layers)]
    elif layout.vpp > 1:
        a += ["--num-layers-per-virtual-pipeline-stage", str(model.num_layers // (layout.pp * layout.vpp))]
    if layout.sequence_parallel:
        a.append("--sequence-parallel")
    if layout.cp > 1:
        a += ["--context-parallel-size", str(layout.cp), "--cp-comm-type", "p2p"]
    if layout.ep > 1 or model.is_moe:
        a += ["--expert-model-parallel-size", str(layout.ep), "--expert-tensor-parallel-size", str(layout.expert_tp)]
    z = layout.effective_zero_stage
    if z >= 2:  # Megatron-FSDP: gradients (ZeRO-2) or also parameters (ZeRO-3) sharded over dp
        a += ["--use-megatron-fsdp", "--data-parallel-sharding-strategy",
              "optim_grads" if z == 2 else "optim_grads_params", "--ckpt-format", "fsdp_dtensor"]
    elif z == 1 or training.distributed_optimizer or training.offload.optimizer:
        a.append("--use-distributed-optimizer")  # with offload: needed by the precision-aware optimizer
    if training.offload.optimizer:  # HybridDeviceOptimizer: fp32 master weights + Adam moments, CPU Adam
        a += ["--optimizer-cpu-offload", "--optimizer-offload-fraction", "1.0", "--use-precision-aware-optimizer"]
    if layout.dp > 1 and training.overlap_dp_comm:
        a.append("--overlap-grad-reduce")
    if layout.dp > 1 and training.overlap_param_gather and z in (1, 3):
        a.append("--overlap-param-gather")
    if layout.tp > 1 and training.tp_comm_overlap and layout.sequence_parallel:
        a.append("--tp-comm-overlap")
    return a


def attention_backend(training: TrainingSpec) -> str:
    """Megatron-Core ``--attention-backend`` (megatron/core/transformer/enums.py AttnBackend) that runs the
    attention kernel the plan was priced with: ``flash`` (flash-attn) for the profile's ``fa2`` table,
    ``auto`` for its default table (Transformer Engine then prefers cuDNN fused attention on Hopper and
    flash-attn on Ampere, NeMo docs "Attention Optimizations"), ``unfused`` without flash attention."""
    if not training.flash_attention:
        return "unfused"
    return "flash" if training.attention_kernel == "fa2" else "auto"


def training_args(training: TrainingSpec) -> list[str]:
    """Batch, recompute, attention kernel, dropout, gradient-accumulation fusion, precision."""
    a = ["--micro-batch-size", str(training.micro_batch_size),
         "--global-batch-size", str(training.global_batch_size)]
    if training.recompute == "full":
        a += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif training.recompute == "selective":
        a += ["--recompute-granularity", "selective"]
    a += ["--attention-backend", attention_backend(training)]
    if not training.dropout:
        a += ["--attention-dropout", "0", "--hidden-dropout", "0"]
    if not training.grad_accumulation_fusion:  # priced with a separate gradient add per micro-batch
        a.append("--no-gradient-accumulation-fusion")
    a += {"bf16": ["--bf16"], "fp16": ["--fp16"],
          "fp8": ["--bf16", "--fp8-format", "hybrid", "--fp8-recipe", "delayed"]}[training.precision]
    return a


def megatron_args(model: ModelSpec, training: TrainingSpec, layout: Layout) -> list[str]:
    """Megatron-LM command-line arguments of the plan (SpecError when Megatron refuses the layout)."""
    check_launchable(FRAMEWORK, model, training, layout, field="--export megatron")
    return model_args(model, training, layout.tp) + parallel_args(model, training, layout) + training_args(training)


def megatron_env(layout: Layout) -> dict[str, str]:
    """Environment Megatron needs: CUDA_DEVICE_MAX_CONNECTIONS=1 with tp or cp > 1 on Hopper and
    older (arguments.py:1412-1439), and unset with Megatron-FSDP (arguments.py:1143-1144)."""
    if layout.effective_zero_stage >= 2:
        return {}
    if layout.tp > 1 or layout.cp > 1:
        return {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
    return {}


def pairs(args: list[str]) -> list[str]:
    """Flags with their values, one per line."""
    out, i = [], 0
    while i < len(args):
        if i + 1 < len(args) and not args[i + 1].startswith("--"):
            out.append(f"{args[i]} {quote(args[i + 1])}")
            i += 2
        else:
            out.append(args[i])
            i += 1
    return out


def quote(value: str) -> str:
    """Single-quote values with shell metacharacters (the pipeline layout has ``|`` and ``*``)."""
    return f"'{value}'" if any(ch in value for ch in "|*,; ") else value


def megatron_text(model: ModelSpec, training: TrainingSpec, layout: Layout, header: str) -> str:
    """``MEGATRON_ARGS`` (a bash array) as a sourceable shell file, with the environment it needs."""
    args = megatron_args(model, training, layout)
    lines = [f"# {header}", f"# target: pretrain_gpt.py of {VERSIONS[FRAMEWORK]}"]
    padded = padded_vocab(model.vocab_size, layout.tp)
    if padded != model.vocab_size:
        lines.append(f"# note: Megatron pads the vocabulary {model.vocab_size} -> {padded} (divisible by "
                     f"{vocab_divisor(model.vocab_size, layout.tp)} * tp); the plan priced {model.vocab_size}")
    lines += [f"export {k}={v}" for k, v in megatron_env(layout).items()]
    lines += shell_array("MEGATRON_ARGS", args)
    return "\n".join(lines) + "\n"


def shell_array(name: str, args: list[str]) -> list[str]:
    """A bash array assignment, one flag (with its value) per line; expand as "${NAME[@]}"."""
    return [f"{name}=("] + [f"  {p}" for p in pairs(args)] + [")"]
