"""What the framework's own machinery did to one step, by name (``estimate --json``'s ``mechanisms``):
sharded data parallelism as the recipe runs it (gathers per micro-batch or per step, the reshard policy,
gathered weights held, FSDP2 parameter copies), the activation-checkpointing policy and the bytes it keeps,
PyTorch context parallelism's merge kernels, the SMs collectives take from overlapped compute, the
attention kernel generation, the power-limited clock, the optimizer kind, FSDP2's stream pools and how the loss
runs. Read from the same work
(planner.work) and prices (planner.pricing) as the estimate: no formula of its own. Seconds and bytes per GPU.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..pricing import Pricer
from ..pricing.compute import clock_at_power, power_clock_scale
from ..work.context import grad_group_size
from ..work.fsdp import keeps_unsharded, sharded_weights
from ..work.memory import grad_reduce_bytes_per_param
from ..work.ops import Collective, MemoryOp
from ..work.step import StepWork


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ShardedDataParallel(_Item):
    """ZeRO-3 / FSDP as the recipe runs it (planner/work/fsdp.py)."""

    mode: str = Field(description="'none', 'per-micro-batch' (gather, free, gather again) or 'kept-unsharded' "
                      "(gathered once per step and held, gradients reduce-scattered once)")
    reshard_after_forward: str = Field(description="which blocks free their gathered weights after forward")
    gathers_per_microbatch: int = Field(description="all-gather calls per micro-batch on the busiest stage")
    gathers_per_step: int = Field(description="all-gather calls once per step")
    reduce_scatters_per_microbatch: int = Field(description="gradient reduce-scatter calls per micro-batch")
    reduce_scatters_per_step: int = Field(description="gradient reduce-scatter calls once per step")
    gathered_weight_bytes: float = Field(description="gathered (unsharded) weights held at the peak, bytes")
    unsharded_grad_bytes: float = Field(description="gradients held unsharded before their reduce-scatter, bytes")
    param_copy_bytes_per_step: float = Field(description="HBM bytes of copying gathers into the unsharded "
                                             "parameters on the compute stream (FSDP2 copy-out), per step")
    param_copy_s_per_step: float = Field(description="seconds of those copies per step")
    gather_bytes_per_param: float = Field(description="bytes per gathered parameter (1 = fp8 all-gather)")
    all_gather_pool_bytes: float = Field(0.0, description="the all-gather stream's allocator pool kept reserved "
                                         "(FSDP2: the largest pair of gathers in flight), bytes")
    grads_pool_bytes: float = Field(0.0, description="sharded gradients' bytes the reduce-scatter stream's pool keeps "
                                    "reserved while they are freed (FSDP2), bytes")
    gather_unit: str = Field("block", description="'block' (a call per sharded block) or 'tensor' (a call per "
                             "parameter tensor, DeepSpeed; planner/work/zero3_tensors.py)")
    serialized: bool = Field(False, description="the collectives run between the compute, not beside it")
    persistent_gather_s_per_step: float = Field(
        0.0, description="seconds of the once-per-step gather of the persistent (small) tensors, host loop included")
    staging_s_per_step: float = Field(
        0.0, description="seconds per step of the host views and copies around the calls (tensor-list API, "
        "Python loops), within the collectives' time")


class Checkpointing(_Item):
    """The activation-checkpointing policy (planner/work/sac.py for 'op')."""

    policy: str = Field(description="none, selective (attention core), op (per-op save list) or full")
    saved_bytes_per_layer: float = Field(description="activations one layer keeps per micro-batch, bytes")
    recompute_s_per_step: float = Field(description="seconds of replayed forward ops per step")


class CommOverlap(_Item):
    """Compute slowed by the collectives it overlaps (Pricer.comm_compute_slowdown)."""

    collective_sms: int | None = Field(description="SMs a collective's kernels hold (node.collective_sms)")
    sm_count: int | None = Field(description="SMs of the device")
    persistent_gemms: bool = Field(description="the device's GEMMs are persistent kernels: beside a collective they "
                                   "run in two waves (device.persistent_gemms)")
    slowdown: float = Field(description="extra compute seconds per second of the busiest stage's backward overlapped "
                            "with a collective (its single-stream GEMM share in two waves where persistent_gemms, "
                            "the rest on the SMs left)")


class PipelineOutputs(_Item):
    """Stage outputs the pipeline schedule keeps (planner.work.memory.pipeline_output_bytes), bytes per GPU."""

    kept: str = Field("none", description="recipe pipeline_outputs_kept: none, backward (each until its "
                      "micro-batch's backward), step-last / step-all (the last / every stage keeps every micro-batch's "
                      "output to the step's end: torch.distributed.pipelining output_chunks)")
    bytes_per_microbatch_in_flight: float = Field(0.0, description="a stage's sent activation kept while its "
                                                  "micro-batch is in flight (the busiest stage), bytes")
    held_bytes_first_stage: float = Field(0.0, description="outputs the first stage holds to the step's end, bytes")
    held_bytes_last_stage: float = Field(0.0, description="outputs (16-bit logits) the last stage holds to the "
                                         "step's end, bytes")


class Mechanisms(_Item):
    """The framework machinery of one estimated step, by name."""

    sharded_data_parallel: ShardedDataParallel = Field(description="ZeRO-3 / FSDP gathers and copies")
    checkpointing: Checkpointing = Field(description="activation checkpointing")
    cp_merge_s_per_step: float = Field(description="seconds of PyTorch context parallelism's merge kernels per step")
    comm_overlap: CommOverlap = Field(description="NCCL's SM share of overlapped compute")
    attention_kernel: str = Field(description="the attention kernel table priced (the profile default or a named one)")
    power_limit_w: float | None = Field(description="board power limit priced, W (None: the curves' own)")
    tensor_clock_mhz: float | None = Field(description="tensor-core clock the run holds at that limit (or the curves' "
                                          "limit when None), MHz")
    compute_time_factor: float = Field(description="time factor of GEMMs and attention at the clock the run holds "
                                       "against the compute curves' clock (1 = as measured)")
    optimizer: str = Field(description="'fused' or 'foreach' AdamW, or 'per-tensor loop, a device sync each' (Composer DecoupledAdamW)")
    loss: str = Field("fused", description="how the cross-entropy runs: 'loss-parallel-dtensor' (torch "
                      "loss_parallel over vocabulary shards, 16 B per local logit at its peak), 'eager-fp32' (12 B per "
                      "logit) or 'fused' (6 B)")
    loss_cache_bytes: float = Field(0.0, description="the freed 16-bit logits' block the caching allocator keeps "
                                    "reserved at the loss's backward peak beyond the live bytes (the last stage; "
                                    "planner/work/kernels.py loss_cache_bytes), bytes")
    pipeline_outputs: PipelineOutputs = Field(default_factory=PipelineOutputs,
                                              description="stage outputs the pipeline schedule keeps")


def _seconds(ops, pricer: Pricer, name: str) -> float:
    return sum(pricer.compute.memory_time(op) for op in ops if isinstance(op, MemoryOp) and op.name.startswith(name))


def mechanisms(step: StepWork, pricer: Pricer, copy_s_per_microbatch: float, comm_slowdown: float) -> Mechanisms:
    """The Mechanisms of ``step`` priced by ``pricer``; ``copy_s_per_microbatch``: the busiest stage's FSDP copy
    seconds per micro-batch (planner.cost.analytic.fsdp_copy_time); ``comm_slowdown``: its StageTimes'."""
    training, layout, m = step.training, step.layout, step.micro_batches
    recipe = training.recipe_spec
    stage = max(step.stages, key=lambda s: s.layers)
    mode = "none"
    if sharded_weights(layout):
        mode = "kept-unsharded" if keeps_unsharded(training, layout) else "per-micro-batch"

    def calls(colls, kind):
        return sum(c.calls for c in colls if isinstance(c, Collective) and c.kind == kind and c.axis.startswith("dp"))

    grads_held = stage.params * grad_reduce_bytes_per_param(training) if mode == "kept-unsharded" else 0.0
    sdp = ShardedDataParallel(
        mode=mode, reshard_after_forward=recipe.fsdp_reshard_after_forward if mode != "none" else "-",
        gathers_per_microbatch=calls(stage.per_microbatch_comm, "all-gather"),
        gathers_per_step=calls(stage.per_step_comm, "all-gather") if mode == "kept-unsharded" else 0,
        reduce_scatters_per_microbatch=calls(stage.per_microbatch_comm, "reduce-scatter"),
        reduce_scatters_per_step=calls(stage.per_step_comm, "reduce-scatter") if mode == "kept-unsharded" else 0,
        gathered_weight_bytes=stage.fsdp_gathered_bytes,
        unsharded_grad_bytes=grads_held,
        param_copy_bytes_per_step=stage.fsdp_copy_bytes_per_microbatch * m + stage.fsdp_copy_bytes_per_step,
        param_copy_s_per_step=copy_s_per_microbatch * m,
        gather_bytes_per_param=1.0 if training.fp8_all_gather else recipe.param_gather_bytes,
        all_gather_pool_bytes=stage.all_gather_pool_bytes, grads_pool_bytes=stage.grads_pool_bytes,
        gather_unit=recipe.zero3.gather_unit if mode != "none" else "-",
        serialized=pricer.zero3_serialized and mode != "none",
        persistent_gather_s_per_step=sum(pricer.collective_time(c) for c in stage.per_step_comm
                                         if c.name == "params.persistent_allgather"),
        staging_s_per_step=sum(c.calls * pricer.staging_time(c) * (m if c in stage.per_microbatch_comm else 1)
                               for c in stage.per_microbatch_comm + stage.per_step_comm
                               if c.staging_kernels or c.staging_bytes or c.staging_views),
    )
    recompute_s = sum(pricer.block_time(block.recompute).total * n for block, n in stage.blocks if block.recompute)
    ckpt = Checkpointing(policy=training.recompute,
                         saved_bytes_per_layer=(stage.activation_bytes_per_microbatch
                                                - stage.pipeline_output_bytes_per_microbatch) / max(1, stage.layers),
                         recompute_s_per_step=recompute_s * m)
    merge = sum(_seconds(ops, pricer, "attention.cp_merge") * n
                for block, n in stage.blocks for ops in (block.forward, block.backward_input, block.recompute))
    dev = pricer.hardware.device
    overlap = CommOverlap(collective_sms=pricer.hardware.node.collective_sms, sm_count=dev.sm_count,
                          persistent_gemms=dev.persistent_gemms,
                          slowdown=comm_slowdown if grad_group_size(layout) > 1 or layout.tp > 1 else 0.0)
    limit = dev.power_limit_w
    run_limit = limit or dev.compute_curves_power_w
    clock = clock_at_power(dev, run_limit) if run_limit is not None and dev.tensor_clock_by_power else None
    return Mechanisms(
        sharded_data_parallel=sdp, checkpointing=ckpt, cp_merge_s_per_step=merge * m, comm_overlap=overlap,
        attention_kernel=pricer.attention_kernel or f"default ({dev.attention_kernel or 'attention_table'})",
        power_limit_w=limit, tensor_clock_mhz=clock, compute_time_factor=power_clock_scale(dev),
        optimizer=("per-tensor loop, a device sync each" if recipe.optimizer_loop_sync else
                   "foreach" if recipe.optimizer_foreach else "fused"),
        loss=("loss-parallel-dtensor" if layout.tp > 1 and recipe.loss_parallel_dtensor else
              "eager-fp32" if recipe.logits_fp32 and not recipe.cross_entropy_fused else "fused"),
        loss_cache_bytes=step.stages[-1].loss_cache_bytes,
        pipeline_outputs=PipelineOutputs(kept=recipe.pipeline_outputs_kept if layout.pp > 1 else "none",
                                         bytes_per_microbatch_in_flight=stage.pipeline_output_bytes_per_microbatch,
                                         held_bytes_first_stage=step.stages[0].pipeline_output_held_bytes,
                                         held_bytes_last_stage=step.stages[-1].pipeline_output_held_bytes),
    )
