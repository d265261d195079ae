"""Framework recipe: *how* a training step is executed — which kernels run (fused or eager, in what
dtype), which casts happen, which model states exist, what overlaps, and the framework's defaults.

Recipes are data (``hwprofiles/recipes/<name>.yaml``, loaded by ``hwprofiles.recipe_loader``); every
rule and number there carries a ``source``. ``planner.work`` reads a recipe to decide which ops exist;
``planner.pricing`` prices them. Bytes are per parameter; times in microseconds (``_us``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Spec

RECIPE_NAMES = ("megatron-lm", "megatron-core", "deepspeed", "torchtitan", "fsdp1", "torch-amp")
RecipeName = Literal["megatron-lm", "megatron-core", "deepspeed", "torchtitan", "fsdp1", "torch-amp"]

# fields that are not rules (no source required)
UNSOURCED_FIELDS = ("schema_version", "name", "description", "framework", "aliases", "sources", "notes")


class RecipeSpec(Spec):
    """One framework's way of running a step (see the module docstring)."""

    schema_version: Literal[1] = Field(description="recipe schema version")
    name: RecipeName = Field(description="recipe name (what --recipe selects)")
    description: str = Field(description="one line on what this recipe is")
    framework: str = Field(description="software stack and version the rules describe")
    aliases: list[str] = Field(default_factory=list, description="older --recipe values that select this recipe")
    # --- model states (bytes per parameter, before ZeRO/FSDP sharding)
    weight_bytes: float = Field(gt=0, description="bytes per parameter of the persistent weights")
    grad_bytes: float = Field(gt=0, description="bytes per parameter of the gradients")
    master_bytes: float = Field(ge=0, description="fp32 master copy held by the optimizer, bytes/param (0: weights are fp32)")
    grad_reduce_bytes: float = Field(gt=0, description="bytes per parameter in the data-parallel gradient reduction")
    fp16_grad_bytes: float | None = Field(
        None, gt=0, description="with fp16 precision, bytes per parameter of the gradient buffers and of their "
        "data-parallel reduction (None: grad_bytes and grad_reduce_bytes whatever the precision)")
    param_gather_bytes: float = Field(gt=0, description="bytes per parameter when ZeRO/FSDP gathers parameters")
    grads_persist: bool = Field(
        description="gradient buffers exist through forward and backward (Megatron main_grad, DeepSpeed "
        "buffers); false: zero_grad(set_to_none) frees them and backward creates them layer by layer")
    fsdp_sharding: bool = Field(description="ZeRO-3 is run as PyTorch FSDP (FSDP2 / FSDP1) rather than DeepSpeed")
    grad_clip_grad_passes: float = Field(
        ge=0, description="times gradient-norm clipping streams the optimizer's gradients per step by default: 0 "
        "none; 1 the norm only (Megatron scales only when clipping); 3 the norm, then an unconditional multiply "
        "(torch.nn.utils.clip_grad_norm_)")
    # --- kernels
    autocast: bool = Field(
        description="eager torch.autocast: fp32 parameters cast to 16-bit on every forward and recompute, the "
        "residual stream and norms in fp32, each Linear input cast to 16-bit")
    norm_kernel: Literal["fused", "native", "handwritten"] = Field(
        description="fused: one apex / Transformer Engine kernel (class fused); native: PyTorch's own "
        "layer_norm / rms_norm kernel (fp32 under autocast; measured norm classes); handwritten: RMSNorm as "
        "x.float(), pow, mean, rsqrt, mul, type_as, mul (Llama reference / HF LlamaRMSNorm), LayerNorm native")
    bias_activation_fused: bool = Field(
        description="bias + GeLU / SwiGLU run as one fused kernel (Megatron bias_gelu / TE); false: separate "
        "activation kernels (SiLU and mul for SwiGLU)")
    softmax_fused: bool = Field(
        description="unfused attention's score softmax (+ mask, dropout) is one fused kernel (Megatron "
        "scaled_masked_softmax); false: torch softmax and dropout")
    rope_fused: bool = Field(description="rotary embedding applied by one fused kernel; false: eager elementwise ops")
    qkv_split_copies: bool = Field(
        description="eager q/k/v split and head transposes materialise copies (output .contiguous(), "
        "backward torch.cat of dq/dk/dv)")
    bias_grad_separate: bool = Field(
        description="bias gradients are separate reduction kernels (eager addmm backward); false: fused into "
        "the weight-gradient GEMM epilogue")
    grad_accumulation_fused: bool = Field(
        description="gradients of later micro-batches accumulate inside the weight-gradient GEMM (Megatron "
        "gradient_accumulation_fusion into main_grad); false: autograd adds each micro-batch's gradient into "
        ".grad, one read-read-write kernel per parameter tensor")
    logits_fp32: bool = Field(description="logits are upcast to fp32 before the loss (softmax and its grad in fp32)")
    cross_entropy_fused: bool = Field(description="one fused cross-entropy kernel over the logits")
    # --- defaults the framework applies when the user says nothing
    dropout_default: bool = Field(description="dropout layers present by default")
    sequence_parallel_default: bool = Field(description="sequence parallelism on by default when tp > 1")
    tp_comm_overlap_default: bool = Field(description="tensor-parallel collectives overlapped with GEMMs by default")
    tp_overlap_style_default: Literal["pass", "ring-exchange"] = Field(
        "pass", description="how tp_comm_overlap hides TP collectives by default (planner/pricing/tp_overlap.py): "
        "'pass' = under the whole pass's compute; 'ring-exchange' = each AG/RS under its own GEMM split in tp chunks")
    distributed_optimizer_default: bool = Field(description="optimizer state sharded over dp by default")
    overlap_grad_reduce_default: bool = Field(description="data-parallel gradient reduction overlapped with backward")
    overlap_param_gather_default: bool = Field(description="ZeRO-1/2 parameter all-gather overlapped with forward")
    cp_kind_default: Literal["ring", "allgather"] = Field(
        "ring", description="context-parallel K/V exchange when cp > 1 and none is given (planner/work/context.py)")
    p2p_scatter_gather: bool = Field(
        False, description="with tp > 1 and no sequence parallelism each tensor-parallel rank sends 1/tp of the "
        "activation to the next stage, which all-gathers it over tp (Megatron-LM's scatter/gather "
        "optimization; DeepSpeed's partitioned pipe activations); false: every tp rank sends the whole tensor")
    p2p_overlap_interleaved: bool = Field(
        False, description="the interleaved schedule's pipeline sends run asynchronously beside the next chunk's "
        "compute (Megatron-Core overlap_p2p_comm): a send blocks its stage only for what outlasts the smaller "
        "chunk pass (planner.pricing.Pricer.p2p_blocking_time)")
    # --- host
    host_dispatch_us: float = Field(
        ge=0, description="CPU time to dispatch one kernel (Python + dispatcher + launch), us; a step is bounded "
        "below by kernels x this")
    recompute_host_calls_per_kernel: float = Field(
        ge=1, description="host calls per recomputed kernel: 1 for reentrant checkpointing (replay under no "
        "saved-tensor hooks); 3 for non-reentrant torch.utils.checkpoint (the replayed op plus the pack hook "
        "its saved tensor ran in the original forward and the unpack hook that triggers the replay)")
    sources: dict[str, str] = Field(description="citation per field")
    notes: list[str] = Field(default_factory=list, description="what is inferred rather than documented")
