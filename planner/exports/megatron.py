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
from .megatron_model import model_args, padded_vocab, vocab_divisor

FRAMEWORK = "megatron"


def pipeline_layout(layout: Layout, model: ModelSpec, mtp_layers: int = 0) -> str:
    """``--pipeline-model-parallel-layout``: virtual stages separated by ``|``, the embedding ``E``
    on the first and the MTP modules ``m`` and the loss ``L`` on the last (PipelineParallelLayerLayout
    syntax, planner.specs.pipeline_layout)."""
    return layout_string(virtual_stage_layers(layout, model), mtp_layers)


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
    """Single-quote values with shell metacharacters (the pipeline layout, the MoE layer pattern)."""
    return f"'{value}'" if any(ch in value for ch in "|*,; ()[]+") else value


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
