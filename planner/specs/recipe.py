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

RECIPE_NAMES = ("megatron-lm", "megatron-core", "deepspeed", "deepspeed-2021", "torchtitan", "torchtitan-2506",
                "torchtitan-0.3", "fsdp1", "fsdp1-amp", "llm-foundry", "llm-foundry-2309", "torch-amp")
RecipeName = Literal["megatron-lm", "megatron-core", "deepspeed", "deepspeed-2021", "torchtitan", "torchtitan-2506",
                     "torchtitan-0.3", "fsdp1", "fsdp1-amp", "llm-foundry", "llm-foundry-2309",
                     "torch-amp"]

#: What torch.compile changes in a recipe's kernels (Inductor fuses each compiled block's pointwise ops and
#: reductions into generated Triton kernels: Ansel et al. 2024, "PyTorch 2", ASPLOS '24, Sec. 4-5): one kernel per
#: norm, per activation with its gate, per RoPE and per softmax, each a single pass over its tensors at the
#: efficiency measured for PyTorch's own one-pass kernel of that class (norm, activation); GEMMs, attention and
#: the loss outside the blocks keep their kernels (torchtitan compiles per TransformerBlock, apply_compile).
COMPILE_FUSES = {"inductor_fused": True, "norm_kernel": "native", "softmax_fused": True}

# fields that are not rules (no source required)
UNSOURCED_FIELDS = ("schema_version", "name", "description", "framework", "aliases", "base", "sources", "notes")


class Zero3Rules(Spec):
    """How the framework issues ZeRO-3's per-micro-batch collectives (planner/work/zero3_tensors.py): per block
    or per parameter tensor, overlapped with compute or not, and the host and copy work around each call. The
    defaults are a block per call, overlapped, no recompute gathers, no staging copies."""

    gather_unit: Literal["block", "tensor"] = Field(
        "block", description="block: one all-gather / reduce-scatter per sharded unit (a transformer block); "
        "tensor: one per parameter tensor (DeepSpeed 2021: _allgather_param and _reduce_scatter_gradient per "
        "parameter)")
    persistence_threshold_numel: float = Field(
        0.0, ge=0, description="with gather_unit 'tensor', parameter tensors with fewer elements stay gathered "
        "through forward and backward (DeepSpeed stage3_param_persistence_threshold) and are gathered once per "
        "step after the optimizer; 0: none")
    serialized: bool = Field(
        False, description="the collectives do not overlap compute: the framework waits for the device before "
        "each gather (DeepSpeed 2021: torch.cuda.synchronize() in _allgather_param)")
    recompute_gathers: bool = Field(
        False, description="with full recompute, the recomputed forward gathers the weights again (the "
        "framework's forward hooks fire in the replay) and frees those whose next use lies further than "
        "max_reuse_distance_numel, so backward gathers them a third time")
    max_reuse_distance_numel: float = Field(
        0.0, ge=0, description="a module's gathered weights are kept from one use to the next when the "
        "parameters used in between number fewer (DeepSpeed stage3_max_reuse_distance); 0: never kept")
    rank_copies: bool = Field(
        False, description="each call goes through torch.distributed's tensor-list API: ProcessGroupNCCL stages "
        "the buffer in a flat tensor and copies each rank's chunk with its own kernel (one per rank per call)")
    persistent_python_unflatten: bool = Field(
        False, description="the once-per-step gather of the persistent tensors is unflattened by a Python loop: "
        "one eager copy per (tensor, rank) (DeepSpeed 2021 _allgather_params)")


class RecipeSpec(Spec):
    """One framework's way of running a step (see the module docstring)."""

    schema_version: Literal[1] = Field(description="recipe schema version")
    name: RecipeName = Field(description="recipe name (what --recipe selects)")
    description: str = Field(description="one line on what this recipe is")
    framework: str = Field(description="software stack and version the rules describe")
    aliases: list[str] = Field(default_factory=list, description="older --recipe values that select this recipe")
    base: str | None = Field(
        None, description="the recipe this one was derived from (another release of the same framework): every rule "
        "not given here is the base's, with the base's source (hwprofiles/recipe_loader.py)")
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
    swiglu_split_gate: bool = Field(
        False, description="eager SwiGLU on separate gate and up tensors (torchtitan w1 / w3, Hugging Face "
        "gate_proj / up_proj): a SiLU kernel and a mul kernel over contiguous tensors, priced at the activation "
        "and add classes; false: on the two halves of one fused fc1 output (the microbenchmarked swiglu class)")
    inductor_fused: bool = Field(
        False, description="blocks compiled by torch.compile: each activation (with its gate) and each RoPE is one "
        "generated kernel, one read of its inputs and one write of its output, priced at the activation class "
        "(set by TrainingSpec.compile, RecipeSpec.compiled)")
    softmax_fused: bool = Field(
        description="unfused attention's score softmax (+ mask, dropout) is one fused kernel (Megatron "
        "scaled_masked_softmax); false: torch softmax and dropout")
    rope_fused: bool = Field(description="rotary embedding applied by one fused kernel; false: eager elementwise ops")
    gqa_repeat_kv: bool = Field(
        False, description="with grouped-query attention, K and V are repeated to every query head before the "
        "attention kernel (a copy each, saved for backward; the gradients summed back): torchtitan 2024 "
        "repeat_kv, Hugging Face repeat_kv; false: the kernel reads the grouped K/V (SDPA enable_gqa, TE)")
    sp_saves_gathered_inputs: bool = Field(
        False, description="with sequence parallelism the column-parallel Linears save their all-gathered input "
        "(tokens x h, not / tp): DTensor's Shard -> Replicate redistribution is an autograd op and the Linear keeps "
        "what it was given; false: the sharded input is kept and gathered again in backward (Megatron SP)")
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
    tp_overlap_streams: int = Field(
        3, gt=0, description="ring-exchange TP overlap: compute streams the chunk GEMMs run on concurrently "
        "(planner/pricing/tp_overlap.py)")
    tp_overlap_fp8: bool = Field(
        True, description="ring-exchange TP overlap also decomposes fp8 GEMMs; false: with fp8 the collectives "
        "beside fp8 GEMMs stay exposed")
    tp_overlap_comm_sms: int = Field(
        16, ge=0, description="ring-exchange TP overlap: SMs the overlapped reduce-scatter's communication "
        "kernels hold while the GEMM beside it runs (0: copy-engine transfers)")
    distributed_optimizer_default: bool = Field(description="optimizer state sharded over dp by default")
    overlap_grad_reduce_default: bool = Field(description="data-parallel gradient reduction overlapped with backward")
    overlap_param_gather_default: bool = Field(description="ZeRO-1/2 parameter all-gather overlapped with forward")
    cp_kind_default: Literal["ring", "allgather"] = Field(
        "ring", description="context-parallel K/V exchange when cp > 1 and none is given (planner/work/context.py)")
    cp_merges: bool = Field(
        False, description="all-gather context parallelism runs one attention call per K/V chunk and merges the "
        "partial outputs in fp32 (PyTorch context_parallel; planner/work/context.py cp_merge_ops); false: one "
        "call over the gathered K/V (Llama 3's all-gather CP)")
    p2p_scatter_gather: bool = Field(
        False, description="with tp > 1 and no sequence parallelism each tensor-parallel rank sends 1/tp of the "
        "activation to the next stage, which all-gathers it over tp (Megatron-LM's scatter/gather "
        "optimization; DeepSpeed's partitioned pipe activations); false: every tp rank sends the whole tensor")
    p2p_overlap_interleaved: bool = Field(
        False, description="the interleaved schedule's pipeline sends run asynchronously beside the next chunk's "
        "compute (Megatron-Core overlap_p2p_comm): a send blocks its stage only for what outlasts the smaller "
        "chunk pass (planner.pricing.Pricer.p2p_blocking_time)")
    # --- attention, checkpointing, fp8, sharded data parallelism as this release runs them
    attention_kernel_table: str | None = Field(
        None, description="the hardware profile's attention kernel table (device.attention_kernel_tables key, e.g. "
        "fa2) this release's attention path dispatches to where the profile has one; None = the profile's default "
        "attention_table")
    sac_saves_fp8_gemms: bool = Field(
        True, description="per-op selective activation checkpointing (recompute 'op') saves the output of every "
        "fp8 GEMM (aten._scaled_mm in the save list); false: fp8 GEMMs are recomputed")
    sac_saves_fp8_abs: bool = Field(
        False, description="per-op selective checkpointing saves aten.abs outputs (the |x| of each fp8 scaling "
        "amax, a tensor the size of the Linear input)")
    fp8_scaling: Literal["transformer-engine", "torchao-tensorwise", "torchao-rowwise"] = Field(
        "transformer-engine", description="how fp8 Linears quantise (planner/work/fp8.py): Transformer Engine's "
        "fused cast-transpose with delayed scaling, or torchao Float8Linear with dynamic tensorwise / rowwise "
        "scales (an amax reduction and a cast per operand per GEMM)")
    fsdp_reshard_after_forward: Literal["all", "all-but-last"] = Field(
        "all", description="ZeRO-3 / FSDP blocks whose gathered weights are freed after their forward and "
        "gathered again for backward: all, or all but the last block (FSDP2 in torchtitan: the last block would be "
        "prefetched again at once)")
    fsdp_pp_keeps_unsharded: bool = Field(
        False, description="with pipeline parallelism the gathered weights stay unsharded across the step's "
        "micro-batches and gradients accumulate unsharded in the reduce dtype, reduce-scattered once after the "
        "last micro-batch (torchtitan: reshard_after_forward=False with PP; torch.distributed.pipelining "
        "syncs gradients on the last backward only)")
    fsdp_param_copies: bool = Field(
        False, description="FSDP2 per-parameter sharding: each all-gather is copied out into the unsharded "
        "parameters (split_with_sizes_copy) and each reduce-scatter input is copied in (chunk_cat, cast to "
        "the reduce dtype); false: flat parameters gathered in place (FSDP1 FlatParameter, DeepSpeed buffers)")
    fsdp_stream_pools: bool = Field(
        False, description="FSDP2 allocates each all-gather output in its all-gather copy-in stream and each "
        "reduce-scatter output (the sharded gradients, views of it) in its reduce-scatter stream; the caching "
        "allocator reuses a block only on the stream that allocated it, so those pools stay reserved beside the "
        "compute stream's: the sharded gradients' bytes at every moment and the largest pair of gathers in flight "
        "(planner.work.fsdp.all_gather_pool_bytes)")
    loss_parallel_dtensor: bool = Field(
        False, description="with tensor parallelism the cross-entropy runs as DTensor loss_parallel over the "
        "vocabulary shards (torch.distributed.tensor.parallel.loss): unfused fp32 ops, 14 B per local logit at "
        "the forward's peak and 16 B at the backward's (planner.work.kernels.loss_peak_bytes)")
    loss_frees_logits: bool = Field(
        False, description="without pipelining the training step frees the 16-bit logits between the loss and "
        "its backward (torchtitan: del pred before loss.backward()); on the eager fp32 loss path their freed block "
        "stays reserved, too small for the loss backward's fp32 tensors (planner.work.kernels.loss_cache_bytes)")
    pipeline_outputs_kept: Literal["none", "backward", "step-last", "step-all"] = Field(
        "none", description="with pipeline parallelism, how long the schedule keeps each micro-batch's stage "
        "output (a non-last stage's activation sent on, the last stage's 16-bit logits): none (freed once sent; "
        "Megatron's deallocated outputs, the last stage's loss), backward (until that micro-batch's backward: "
        "torch.distributed.pipelining's fwd_cache), step-last (the last stage keeps every micro-batch's output "
        "until the step ends: output_chunks, returned by step()), step-all (every stage does); "
        "planner.work.memory.pipeline_output_bytes")
    zero3: Zero3Rules = Field(
        default_factory=Zero3Rules, description="how ZeRO-3's per-micro-batch collectives are issued "
        "(Zero3Rules)")
    compile_default: bool = Field(
        False, description="blocks run under torch.compile by default (Inductor fuses their pointwise ops and "
        "reductions)")
    compile_covers_loss: bool = Field(
        False, description="with --compile the framework compiles its loss function too: Inductor fuses the fp32 "
        "upcast, log_softmax and nll_loss, so the cross-entropy runs as fused kernels (cross_entropy_fused) and "
        "keeps no fp32 logits (planner.work.kernels.loss_peak_bytes)")
    optimizer_foreach: bool = Field(
        False, description="the optimizer step is torch's multi-tensor (foreach) AdamW, a kernel per operation over "
        "the parameter list, instead of a fused single-pass kernel (planner.pricing.compute FOREACH_ADAMW_SLOWDOWN)")
    sp_norm_grad_reads: float = Field(
        0.0, ge=0, description="with DTensor sequence parallelism (tp > 1, sp) the norm parameters are Replicate over "
        "tp and their gradients Partial: every optimizer op that reads a Partial gradient redistributes it with an "
        "all-reduce over tp. Reads per norm tensor per step (0: the framework reduces them otherwise, or not "
        "priced); planner.work.optimizer_tensors.sp_norm_grad_allreduce")
    optimizer_loop_sync: bool = Field(
        False, description="the optimizer steps one parameter tensor at a time in a Python loop and reads each "
        "tensor's step count with .item(), a device sync per tensor (Composer DecoupledAdamW): the same memory "
        "passes as the foreach kernels, plus the host launches of every tensor's kernels, which nothing hides "
        "(planner.pricing.pricer OPTIMIZER_LOOP_LAUNCHES)")
    # --- host
    host_dispatch_us: float = Field(
        ge=0, description="CPU time to dispatch one kernel (Python + dispatcher + launch), us; a step is bounded "
        "below by kernels x this")
    host_view_us: float = Field(
        ge=0, description="CPU time of one Python-issued view op that launches no kernel (narrow, view), us: "
        "priced where a framework builds per-rank views in Python (planner.work.zero3_tensors)")
    recompute_host_calls_per_kernel: float = Field(
        ge=1, description="host calls per recomputed kernel: 1 for reentrant checkpointing (replay under no "
        "saved-tensor hooks); 3 for non-reentrant torch.utils.checkpoint (the replayed op plus the pack hook "
        "its saved tensor ran in the original forward and the unpack hook that triggers the replay)")
    sources: dict[str, str] = Field(description="citation per field")
    notes: list[str] = Field(default_factory=list, description="what is inferred rather than documented")

    def compiled(self) -> RecipeSpec:
        """This recipe with its blocks under torch.compile (``COMPILE_FUSES``), and its loss when the framework
        compiles that too (``compile_covers_loss``)."""
        return self.model_copy(update={**COMPILE_FUSES, **({"cross_entropy_fused": True} if self.compile_covers_loss
                                                           else {})})
