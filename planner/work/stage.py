"""The records of a step's work: one block's op sets, one pipeline stage, the whole step (runs of
stages placed from one template). Built by planner.work.step; no times here (see planner.pricing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..specs import Layout, ModelSpec, TrainingSpec
from .offload import NO_OFFLOAD, OffloadWork
from .ops import Collective, Op


class cached_property:  # noqa: N801 - functools.cached_property without Python 3.11's per-class lock
    """Computed on first read and stored in the instance ``__dict__`` (which later reads hit first)."""

    def __init__(self, fn):
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass(frozen=True)
class OpSet:
    """Ops of one micro-batch through one block (a layer, the embedding or the head)."""

    forward: tuple[Op, ...] = ()
    backward_input: tuple[Op, ...] = ()
    backward_weight: tuple[Op, ...] = ()
    recompute: tuple[Op, ...] = ()

    @cached_property
    def model_flops(self) -> float:
        """Forward + backward model FLOPs."""
        return sum(op.flops for op in self.forward + self.backward_input + self.backward_weight)

    @cached_property
    def recompute_flops(self) -> float:
        """FLOPs of the recomputed forward."""
        return sum(op.flops for op in self.recompute)


EMPTY = OpSet()


@dataclass(frozen=True)
class StageBytes:
    """Parameters and bytes of one pipeline stage (one GPU of it): what its memory peak reads
    (planner.cost.peaks). The search's memory scan builds only these (planner.work.step_bytes);
    a StageWork is one with its op sets added."""

    index: int
    layers: int
    params: float  # parameters held by one GPU of this stage (after TP sharding), routed experts apart
    optimizer_params: float  # parameters this GPU updates
    weights_bytes: float
    grads_bytes: float
    optimizer_bytes: float
    activation_bytes_per_microbatch: float
    in_flight: float
    working_bytes: float  # transient at the start of backward: max(recomputed layer, loss) + gathered ZeRO-3 layers
    buffer_bytes: float  # communication buckets and p2p buffers
    weight_cache_bytes: float = 0.0  # autocast bf16 weight copies held at the end of forward
    weight_saved_bytes: float = 0.0  # of those, the ones autograd still holds at the start of backward
    forward_end_bytes: float = 0.0  # loss temporaries at the end of forward (last stage)
    grads_in_backward: bool = True  # gradients exist while activations are held (persistent buffers or m > 1)
    # HBM bytes of the optimizer step besides the fused Adam kernel: zeroing persistent gradient buffers,
    # the fp32 master -> 16-bit parameter copy, gradient-norm clipping passes (step_bytes.optimizer_pass_bytes)
    optimizer_pass_bytes: float = 0.0
    # parameter tensors the optimizer steps on this GPU (its busiest rank), counted only for recipes whose
    # optimizer loops over tensors with a device sync each (work/optimizer_tensors.py); 0 otherwise
    optimizer_tensors: float = 0.0
    # collectives inside the optimizer step (DTensor redistributions of Partial gradients over tp), exposed
    optimizer_comm: tuple = ()
    optimizer_grad_copy_bytes: float = 0.0  # fp32 copy of 16-bit gradients made at the optimizer step (fp16)
    offload: OffloadWork = NO_OFFLOAD  # host memory and host-link bytes (planner.work.offload)
    expert_params: float = 0.0  # routed-expert parameters this GPU holds (planner.work.moe)
    # HBM bytes of copying ZeRO-3 / FSDP gathers into the unsharded parameters on the compute stream
    # (FSDP2 per-parameter copy-out; planner.work.fsdp): per micro-batch, and once per step
    fsdp_copy_bytes_per_microbatch: float = 0.0
    fsdp_copy_bytes_per_step: float = 0.0
    fsdp_gathered_bytes: float = 0.0  # gathered weights held through forward and backward (planner.work.fsdp)
    # allocator pools of FSDP2's communication streams (planner.work.fsdp): reserved, not live tensors
    all_gather_pool_bytes: float = 0.0  # the all-gather stream's pool, at every moment
    grads_pool_bytes: float = 0.0  # the sharded gradients' bytes the reduce-scatter pool keeps while they are freed
    # the compute stream's cached block beside the loss at the start of backward, beyond working_bytes: the freed
    # logits (planner.work.kernels.loss_cache_bytes), where the loss is the larger transient; reserved, not live
    loss_cache_bytes: float = 0.0
    # stage outputs the pipeline schedule keeps (planner.work.memory.pipeline_output_bytes): per micro-batch in
    # flight (within activation_bytes_per_microbatch) and held to the step's end (within buffer_bytes)
    pipeline_output_bytes_per_microbatch: float = 0.0
    pipeline_output_held_bytes: float = 0.0

    def at(self, index: int, in_flight: float):
        """This stage placed at pipeline position ``index`` holding ``in_flight`` micro-batches (a
        shallow copy of the same class; a StageWork's op sets are shared)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__["index"] = index
        new.__dict__["in_flight"] = in_flight
        new.__dict__.setdefault("_template", self)  # FLOPs are summed once, on the template, when first read
        return new

    @property
    def template(self):
        """The stage this one was placed from by ``at`` (itself when it was built directly): same
        work, states and FLOPs; only the index and the micro-batches in flight differ."""
        return self.__dict__.get("_template", self)


@dataclass(frozen=True, kw_only=True)
class StageWork(StageBytes):
    """Work and memory of one pipeline stage (one GPU of it). Ops are for one micro-batch:
    ``pre`` (embedding, first stage), ``layers`` times ``layer``, then ``post`` (head, last stage)."""

    layer: OpSet
    pre: OpSet
    post: OpSet
    per_microbatch_comm: tuple[Collective, ...]  # ZeRO-3/FSDP gathers and grad reduce-scatters
    per_step_comm: tuple[Collective, ...]  # gradient reduction / ZeRO-1,2 gathers, once per step

    @classmethod
    def of(cls, stage: StageBytes, **ops) -> StageWork:
        """``stage``'s parameters and bytes with the op fields ``ops`` (every one of them) added."""
        new = object.__new__(cls)
        new.__dict__.update(stage.__dict__)
        new.__dict__.update(ops)
        return new

    @property
    def blocks(self) -> tuple[tuple[OpSet, int], ...]:
        """(op set, repeat count) in forward order."""
        return ((self.pre, 1), (self.layer, self.layers), (self.post, 1))

    @cached_property
    def model_flops_per_microbatch(self) -> float:
        """Forward + backward model FLOPs of one micro-batch (no recompute), per GPU."""
        template = self.__dict__.get("_template")
        if template is not None:
            return template.model_flops_per_microbatch
        return sum(block.model_flops * n for block, n in self.blocks)

    @cached_property
    def hardware_flops_per_microbatch(self) -> float:
        """Model FLOPs plus recomputed forward FLOPs, per GPU."""
        template = self.__dict__.get("_template")
        if template is not None:
            return template.hardware_flops_per_microbatch
        return self.model_flops_per_microbatch + sum(b.recompute_flops * n for b, n in self.blocks)


@dataclass(frozen=True)
class StepWork:
    """A whole step: stages (as runs of stages placed from one template), micro-batches, pipeline
    transfer size."""

    model: ModelSpec
    training: TrainingSpec
    layout: Layout
    micro_batches: int
    runs: tuple[tuple[StageWork, int], ...]  # (template, consecutive stages placed from it), in stage order
    in_flight: tuple[float, ...]  # micro-batches whose activations each stage holds at its peak
    p2p_bytes: float  # activation (or its gradient) one rank sends to the next stage per micro-batch
    notes: tuple[str, ...] = field(default=())
    p2p_gather_bytes: float = 0.0  # the whole tensor the receiving tp group all-gathers (scatter/gather p2p)

    @cached_property
    def stages(self) -> tuple[StageWork, ...]:
        """Every stage, its template placed at its index and in-flight count (built on first read:
        the analytic estimate folds over ``runs`` and never needs them)."""
        return placed_stages(self.runs, self.in_flight)

    def per_stage(self, values: list[float]) -> list[float]:
        """``values`` (one per run) repeated over each run's stages, in stage order."""
        out: list[float] = []
        for v, (_, count) in zip(values, self.runs):
            out += [v] * count
        return out

    @cached_property
    def model_flops_per_step(self) -> float:
        """Model FLOPs of the whole step over all GPUs (layout-independent)."""
        per_stage = self.per_stage([t.model_flops_per_microbatch for t, _ in self.runs])
        return sum(per_stage) * self.micro_batches * self.layout.tp * self.layout.dp * self.layout.cp

    @cached_property
    def hardware_flops_per_step(self) -> float:
        """Executed FLOPs incl. recompute over all GPUs."""
        per_stage = self.per_stage([t.hardware_flops_per_microbatch for t, _ in self.runs])
        return sum(per_stage) * self.micro_batches * self.layout.tp * self.layout.dp * self.layout.cp


def placed_stages(runs, in_flight) -> tuple:
    """Every stage of ``runs`` ((template, consecutive stages) in stage order), its template placed at
    its index holding its ``in_flight`` micro-batches (``StageBytes.at``)."""
    out = []
    for template, count in runs:
        i = len(out)
        out += [template.at(j, in_flight[j]) for j in range(i, i + count)]
    return tuple(out)


@dataclass(frozen=True)
class StepBytes:
    """The memory part of a StepWork (planner.work.step_bytes.step_bytes): its stage records without
    op sets, as runs of stages placed from one record, and the micro-batches each stage holds."""

    micro_batches: int
    runs: tuple[tuple[StageBytes, int], ...]  # (record, consecutive stages placed from it), in stage order
    in_flight: tuple[float, ...]  # micro-batches whose activations each stage holds at its peak

    @cached_property
    def stages(self) -> tuple[StageBytes, ...]:
        """Every stage's record, placed at its index and in-flight count."""
        return placed_stages(self.runs, self.in_flight)
