"""Result models of an estimate: time breakdown, per-stage memory, throughput. Seconds and bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..specs import Layout, TrainingSpec
from .mechanisms import Mechanisms
from .moe_comm import ExpertCommBreakdown


class Result(BaseModel):
    """Frozen result model (extra keys refused)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


_new = object.__new__
_slots = BaseModel.__dict__  # the instance slots every pydantic model has, set through their descriptors
_set_dict = _slots["__dict__"].__set__
_set_fields_set = _slots["__pydantic_fields_set__"].__set__
_set_extra = _slots["__pydantic_extra__"].__set__
_set_private = _slots["__pydantic_private__"].__set__
_MAKERS: dict[type, object] = {}


def trusted(cls, **fields):
    """Build a result model from already-checked internal numbers without re-validation
    (the hot path of the search builds one StageMemory per pipeline stage). Every field must be given."""
    return trusted_from(cls, fields)


def trusted_from(cls, fields: dict):
    """``trusted`` from a dict of every field, in declaration order; the dict becomes the model's own."""
    return trusted_maker(cls)(fields)


def trusted_maker(cls):
    """The function ``fields -> trusted_from(cls, fields)``, made once per class (for loops over stages)."""
    make = _MAKERS.get(cls)
    if make is None:
        names = set(cls.__pydantic_fields__)  # shared, never mutated: the models are frozen (copies copy it)

        def make(fields: dict):
            obj = _new(cls)
            _set_dict(obj, fields)
            _set_fields_set(obj, names)
            _set_extra(obj, None)
            _set_private(obj, None)
            return obj

        make = _MAKERS[cls] = make
    return make


class TimeBreakdown(Result):
    """Where one step's wall time goes, seconds; the fields sum to the step time."""

    compute: float = Field(description="GEMMs, attention, element-wise, embedding/loss on the critical path, s")
    tp_comm: float = Field(description="exposed tensor-parallel collectives, s")
    cp_comm: float = Field(0.0, description="exposed context-parallel K/V exchange (ring sends beyond their "
                           "block, all-gathers / reduce-scatters over cp), s")
    pp_bubble: float = Field(description="pipeline fill/drain idle time, s")
    pp_comm: float = Field(description="exposed pipeline point-to-point transfers, s")
    dp_comm_exposed: float = Field(description="data-parallel / ZeRO communication not hidden by compute, s")
    optimizer: float = Field(description="optimizer step, s")
    other: float = Field(description="everything else (kernel overheads, fixed per-step costs), s")

    @property
    def total(self) -> float:
        """Sum of the parts, s."""
        return (
            self.compute + self.tp_comm + self.cp_comm + self.pp_bubble + self.pp_comm + self.dp_comm_exposed
            + self.optimizer + self.other
        )


class MemoryBreakdown(Result):
    """Bytes held at the peak of one pipeline stage (per GPU)."""

    params: float = Field(description="model weights held, bytes")
    grads: float = Field(description="gradients held, bytes")
    optimizer: float = Field(description="optimizer state (master weights, moments), bytes")
    activations: float = Field(description="activations kept for backward at the peak, bytes")
    buffers: float = Field(description="communication buffers, logits, workspace, bytes")
    reserved: float = Field(description="runtime context and allocator overhead, bytes (not allocated tensors)")
    weight_copies: float = Field(0.0, description="16-bit weight copies autocast keeps (eager recipes), bytes")
    peak_at: str = Field(
        "backward", description="when the peak occurs: 'forward-end', 'backward' (its start, loss temporaries "
        "or the first recomputed layer) or 'optimizer-step'; the parts are the tensors that coexist then")

    @property
    def allocated(self) -> float:
        """Bytes of live tensors at the peak (what torch.cuda.max_memory_allocated measures)."""
        return self.params + self.grads + self.optimizer + self.activations + self.buffers + self.weight_copies

    @property
    def total(self) -> float:
        """Sum of the parts, bytes."""
        return self.allocated + self.reserved


class StageMemory(Result):
    """Peak memory of one pipeline stage (one GPU of it)."""

    stage: int = Field(description="pipeline stage index")
    layers: int = Field(description="transformer layers the stage holds")
    in_flight_microbatches: int = Field(description="micro-batches whose activations are held at the peak")
    peak_bytes: float = Field(description="peak bytes per GPU")
    breakdown: MemoryBreakdown = Field(description="what the peak consists of")
    capacity_bytes: float = Field(description="device HBM capacity, bytes")
    fits: bool = Field(description="peak_bytes <= usable capacity")
    overflow_bytes: float = Field(description="bytes over capacity (0 when it fits)")

    @property
    def allocated_bytes(self) -> float:
        """Peak bytes of live tensors, peak_bytes - breakdown.reserved (what
        torch.cuda.max_memory_allocated measures; the reserve is the runtime and allocator's)."""
        return self.peak_bytes - self.breakdown.reserved


class KernelClassCost(Result):
    """One kernel class over one step on one GPU."""

    kind: str = Field(description="gemm, attention, a memory kernel class (norm_fwd, cast, ...) or comm:<collective>")
    kernels: int = Field(description="kernel launches (collective calls) per step")
    bytes: float = Field(description="bytes moved through HBM per step (memory-bound kernels; 0 for GEMMs), bytes")
    flops: float = Field(description="executed FLOPs per step")
    seconds: float = Field(description="device seconds per step, serialised (before any overlap), s")


class OpBreakdown(Result):
    """Where one GPU's step goes, by kernel class (the stage with the largest compute)."""

    stage: int = Field(description="pipeline stage described")
    classes: list[KernelClassCost] = Field(description="per kernel class, largest seconds first")
    layer_bytes_per_token: float = Field(
        description="bytes moved by the memory-bound kernels of one transformer layer (forward + backward + "
        "recompute) per token of the micro-batch, bytes")
    host_seconds: float = Field(description="CPU dispatch time of every kernel of the step, s")


class Estimate(Result):
    """Prediction of one training step of one layout."""

    engine: str = Field("analytic", description="analytic or simulate")
    model: str = Field(description="model name")
    hardware: str = Field(description="hardware profile name")
    gpus: int = Field(description="ranks")
    layout: Layout = Field(description="parallel layout")
    training: TrainingSpec = Field(description="training recipe")
    micro_batches: int = Field(description="micro-batches per pipeline per step (gradient accumulation)")
    step_time_s: float = Field(description="one optimizer step, s")
    tokens_per_s: float = Field(description="tokens per second, whole cluster")
    model_tflops_per_gpu: float = Field(description="model FLOPs (no recompute) per second per GPU, TFLOP/s")
    mfu: float = Field(description="model FLOPs utilisation, fraction of the dtype's dense peak")
    hardware_tflops_per_gpu: float = Field(description="executed FLOPs incl. recompute per GPU, TFLOP/s")
    hfu: float = Field(description="hardware FLOPs utilisation, fraction of peak")
    peak_tflops_per_gpu: float = Field(description="dense peak used for mfu/hfu, TFLOP/s")
    bubble_fraction: float = Field(description="pp_bubble / step time")
    fits: bool = Field(description="every stage fits in device memory")
    memory: list[StageMemory] = Field(description="per pipeline stage peak memory")
    peak_memory_bytes: float = Field(description="largest stage peak, bytes per GPU")
    time: TimeBreakdown = Field(description="step time breakdown, s")
    notes: list[str] = Field(default_factory=list, description="assumptions and warnings")
    ops: OpBreakdown | None = Field(None, description="per-kernel-class bytes, FLOPs and seconds of the busiest "
                                    "stage (single estimates; not computed inside the search)")
    mechanisms: Mechanisms | None = Field(
        None, description="the framework machinery of the step by name: ZeRO-3 / FSDP gathers, reshard policy and "
        "parameter copies, checkpointing policy and saved bytes, context-parallel merges, NCCL's SM share, "
        "attention kernel, power-limited clock, optimizer (single estimates; planner.cost.mechanisms)")
    moe: ExpertCommBreakdown | None = Field(
        None, description="MoE layer ops, expert communication and state groups (estimate of a MoE model; "
        "planner.cost.moe_comm)")
    pipeline_split: str | None = Field(
        None, description="the pipeline split in Megatron's --pipeline-model-parallel-layout terms (estimate, pp > 1)")

    @property
    def worst_stage(self) -> StageMemory:
        """The stage with the largest peak."""
        return max(self.memory, key=lambda s: s.peak_bytes)
