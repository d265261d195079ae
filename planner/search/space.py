"""The layout space the planner searches, and the user's constraints on it.

Enumeration only: which degrees, splits, schedules, sharding and micro-batch sizes are worth
pricing. No FLOP, byte or time formula lives here (those are planner.work and planner.pricing).

The default space (documented choices, each overridable by a constraint flag):

- tp: divisors of num_heads that also divide ffn_hidden_size and the GPU count, kept within a
  fast domain (tp <= devices of one NVLink/xGMI domain, dividing it: a node, or 72 GPUs on GB200
  NVL72) unless ``allow_cross_node_tp``.
- rank order (which dims share the fast domain after tp): tp-cp-pp-dp (default) and, when pp > 1,
  dp > 1 and the domain holds more than one tp group, also tp-cp-dp-pp for the leading plans
  (``other_orders``; unless ``rank_order`` pins one).
- pp: divisors of gpus / tp up to num_layers. When pp does not divide the layers, the split is
  Megatron-expressible: middle stages hold ceil(L/pp) layers and the first and last stages share
  the rest (``--decoder-first/last-pipeline-num-layers``); splits that cannot be written so are
  counted as invalid.
- schedule: pp = 1 -> none; otherwise 1F1B, ZB-H1 and interleaved 1F1B with vpp in 2..8
  dividing the layers per (middle) stage, at least one layer per chunk on the shorter first/last
  stages of an uneven split. GPipe only when asked (``schedule``).
- framework: with ``framework`` set, planner.frameworks drops what that framework refuses.
- sharding: pp > 1 -> ZeRO 0 or 1 (``--zero`` forces a stage), or 0 and FSDP for torchtitan, which
  runs FSDP2 with pipelining; pp = 1 -> ZeRO 0..3 (FSDP when the recipe is fsdp/torchtitan),
  plus hybrid sharding over the node-local data-parallel ranks for stage 3.
- sequence parallel on whenever tp > 1 (unless ``sequence_parallel`` says otherwise).
- cp: 1, and for sequences of at least CP_MIN_SEQ tokens the divisors of gpus / tp that cut the
  sequence into 2*cp equal chunks (seq % (2*cp) == 0) of at least CP_MIN_CHUNK tokens each
  (planner/work/context.py); the K/V exchange is the recipe's (``Layout.cp_kind`` unset).
- micro-batch: powers of two up to 16 dividing the per-replica batch; recompute none, selective (op for
  torchtitan, whose SelectiveAC is the per-op save list), full.
- offload (planner.search.offload_search): only for a candidate that does not fit without it, the
  lightest level the recipe can express that fits HBM and host memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pydantic import Field

from ..errors import SpecError
from ..frameworks import framework_of_recipe
from ..frameworks.common import stage_split
from ..specs import SCHEDULES, HardwareProfile, Layout, ModelSpec, Spec, TrainingSpec
from .divisors import divisors, divisors_upto
from .expert_space import expert_degrees

Objective = Literal["throughput", "memory", "cost"]
OBJECTIVES = ("throughput", "memory", "cost")
RECOMPUTES = ("none", "selective", "op", "full")
#: recompute choices the search tries per framework, lightest first: torchtitan's SelectiveAC is the per-op
#: save list (planner.frameworks.torchtitan rule "recompute"); Megatron's selective is the attention core
FRAMEWORK_RECOMPUTES = {"torchtitan": ("none", "op", "full")}
DEFAULT_RECOMPUTES = ("none", "selective", "full")
MICRO_BATCHES = (1, 2, 4, 8, 16)
MAX_VPP = 8
CP_MIN_SEQ = 8192  # context parallelism is offered from 8k tokens (NeMo's long-context recipes start at 16k)
CP_MIN_CHUNK = 512  # tokens per load-balancing chunk: smaller chunks leave the attention blocks too small


class SearchConstraints(Spec):
    """What the user pins or bounds; ``None`` means search freely."""

    max_tp: int | None = Field(None, gt=0, description="largest tensor-parallel degree")
    pp: int | None = Field(None, gt=0, description="pipeline-parallel degree to use")
    cp: int | None = Field(None, gt=0, description="context-parallel degree to use")
    zero: int | None = Field(None, ge=0, le=3, description="ZeRO stage to use (3 = FSDP with recipe fsdp)")
    micro_batch: int | None = Field(None, gt=0, description="micro-batch size, sequences")
    recompute: Literal["none", "selective", "op", "full"] | None = Field(None, description="activation recompute")
    schedule: Literal["gpipe", "1f1b", "interleaved-1f1b", "zb-h1"] | None = Field(
        None, description="pipeline schedule to use")
    sequence_parallel: bool | None = Field(None, description="force sequence parallelism on/off when tp > 1")
    memory_headroom: float = Field(0.0, ge=0, lt=1, description="fraction of HBM kept free")
    allow_cross_node_tp: bool = Field(False, description="allow tp groups that span nodes")
    objective: Objective = Field("throughput", description="throughput, memory or cost")
    offload: str | None = Field(
        None, description="None/'auto' = offload only where a layout does not fit without it; 'none' = never; "
        "or one level: off:opt, off:opt+grad, off:opt+grad+param, off:opt+grad+param+act")
    rank_order: Literal["tp-cp-pp-dp", "tp-cp-dp-pp"] | None = Field(
        None, description="rank order to use (None = search both where they place groups differently)")
    search_tp_overlap: bool = Field(
        True, description="also price Megatron-Core TP-comm overlap (ring-exchange) for the leading plans")
    framework: Literal["megatron", "deepspeed", "torchtitan"] | None = Field(
        None, description="only layouts this framework launches (planner.frameworks rules); None = any")
    framework_model_rules: bool = Field(
        True, description="also apply the framework's model rules (export target or --framework given; "
        "planner.frameworks.MODEL_RULES)")
    ep: int | None = Field(None, gt=0, description="expert-parallel degree to use (MoE)")
    etp: int | None = Field(None, gt=0, description="expert tensor-parallel degree to use (MoE)")


@dataclass(frozen=True)
class Candidate:
    """One layout and the training recipe it runs with, on ``gpus`` ranks."""

    layout: Layout
    training: TrainingSpec
    gpus: int

    @cached_property
    def key(self) -> tuple:
        """Deterministic tie-break key (smaller first; computed once: the search reads it often)."""
        lay, trn = self.layout, self.training
        return (self.gpus, lay.tp, lay.cp, lay.pp, lay.vpp, SCHEDULES.index(lay.schedule), lay.effective_zero_stage,
                lay.dp_shard or 0, not lay.sequence_parallel, trn.micro_batch_size,
                RECOMPUTES.index(trn.recompute), tuple(lay.stage_layers or ()), lay.rank_order,
                trn.offload.describe(), trn.tp_comm_overlap, trn.tp_overlap_style, lay.ep, lay.expert_tp)


@dataclass
class Counts:
    """Candidates cut at each level, by reason (a degree cut at the top counts once). ``framework``:
    the target framework's rules that cut candidates (part of ``constraint``), rule name ->
    [count, the rule's source, the first reason it gave]."""

    invalid: int = 0
    constraint: int = 0
    memory: int = 0
    dominated: int = 0
    framework: dict[str, list] = field(default_factory=dict)

    def add_framework(self, name: str, source: str, reason: str) -> None:
        """Count one candidate cut by the framework rule ``name``."""
        self.constraint += 1
        self.framework.setdefault(name, [0, source, reason])[0] += 1


def tp_degrees(model: ModelSpec, hardware: HardwareProfile, gpus: int, *, cross_node: bool = True) -> list[int]:
    """Tensor-parallel degrees the model and GPU count admit (within a node unless ``cross_node``)."""
    node = hardware.node.fast_domain_devices
    out = []
    for t in divisors(model.num_heads):
        if gpus % t or model.ffn_hidden_size % t:
            continue
        if model.kv_heads % t and t % model.kv_heads:
            continue
        if not cross_node and (t > node or node % t):
            continue
        out.append(t)
    return out


def validate_constraints(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec,
                         c: SearchConstraints) -> None:
    """SpecError (one line, allowed values) when a constraint can never be met."""
    if gpus <= 0:
        raise SpecError(f"gpus({gpus}) must be > 0", field="--gpus")
    if c.max_tp is not None:
        valid = tp_degrees(model, hardware, gpus, cross_node=True)
        if c.max_tp not in valid:
            raise SpecError(
                f"{c.max_tp} is not a tensor-parallel degree of {model.name} on {gpus} GPUs (it must divide "
                f"num_heads({model.num_heads}), ffn_hidden_size and gpus); allowed: "
                f"{', '.join(map(str, valid))}", field="--max-tp")
    if c.pp is not None and (gpus % c.pp or c.pp > model.num_layers):
        allowed = divisors_upto(gpus, model.num_layers)
        raise SpecError(f"pp({c.pp}) must divide gpus({gpus}) and be <= num_layers({model.num_layers}); "
                        f"allowed: {', '.join(map(str, allowed))}", field="--pp")
    _check_batch_covers_replicas(model, hardware, gpus, training, c)
    if c.micro_batch is not None and training.global_batch_size % c.micro_batch:
        raise SpecError(f"global_batch({training.global_batch_size}) % micro_batch({c.micro_batch}) != 0",
                        field="--micro-batch")
    if c.schedule == "interleaved-1f1b" and c.pp == 1:
        raise SpecError("schedule interleaved-1f1b needs pp > 1", field="--schedule")


def _check_batch_covers_replicas(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec,
                                 c: SearchConstraints) -> None:
    """SpecError at once when every layout would need more data-parallel replicas than the global
    batch has sequences: dp = gpus / (tp * pp) for the largest tp * pp the space admits."""
    node = hardware.node.devices_per_node
    best = (0, 1, 1)
    for tp in tp_degrees(model, hardware, gpus, cross_node=True):
        if (c.max_tp is not None and tp > c.max_tp) or (not c.allow_cross_node_tp and (tp > node or node % tp)):
            continue
        pps = (c.pp,) if c.pp is not None and (gpus // tp) % c.pp == 0 else divisors_upto(gpus // tp, model.num_layers)
        if pps and tp * max(pps) > best[0]:
            best = (tp * max(pps), tp, max(pps))
    per, tp, pp = best
    if per and gpus // per > training.global_batch_size:
        raise SpecError(
            f"gpus({gpus}) / (tp({tp}) * pp({pp})) = dp({gpus // per}) > global_batch({training.global_batch_size}): "
            f"even the largest tp * pp leaves fewer sequences than data-parallel replicas; use at most "
            f"{training.global_batch_size * per} GPUs or a larger --global-batch", field="--gpus")


@dataclass(frozen=True, slots=True)
class Structure:
    """A layout without its micro-batch size and recompute choice."""

    layout: Layout
    gpus: int


def structures(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec,
               c: SearchConstraints, counts: Counts) -> list[Structure]:
    """Every layout structure of the space, in deterministic order; cut ones are tallied in ``counts``."""
    node = hardware.node.devices_per_node
    L = model.num_layers
    out: list[Structure] = []
    for tp, cp in _tp_cp(model, hardware, gpus, training, c, counts):
        for pp in divisors_upto(gpus // (tp * cp), L):
            if c.pp is not None and pp != c.pp:
                counts.constraint += 1
                continue
            dp = gpus // (tp * cp * pp)
            if training.global_batch_size % dp:
                counts.invalid += 1
                continue
            split = stage_split(L, pp)
            if split == "invalid":
                counts.invalid += 1
                continue
            for sched, vpp in _schedules(L, pp, split, c, counts):
                for zero, fsdp, dp_shard in _shardings(pp, dp, tp, node, training, c, counts, cp):
                    sps = [False] if tp == 1 else ([c.sequence_parallel] if c.sequence_parallel is not None
                                                   else [True])
                    for sp, (ep, etp) in itertools.product(sps, expert_degrees(model, tp, cp, dp, c.ep, c.etp)):
                        out.append(Structure(Layout(tp=tp, pp=pp, dp=dp, cp=cp, vpp=vpp, zero_stage=zero, fsdp=fsdp,
                                                    dp_shard=dp_shard, sequence_parallel=sp, schedule=sched,
                                                    stage_layers=split, ep=ep, etp=etp), gpus))
    return out


def pinned_order(cand: Candidate, c: SearchConstraints) -> Candidate:
    """``cand`` in the rank order the user pinned (memory does not depend on it, so the memory
    check of the default order stands)."""
    if c.rank_order is None or c.rank_order == cand.layout.rank_order:
        return cand
    return Candidate(cand.layout.model_copy(update={"rank_order": c.rank_order}), cand.training, cand.gpus)


def tp_overlap_variants(cand: Candidate, c: SearchConstraints) -> list[Candidate]:
    """``cand`` with Megatron-Core TP-comm overlap (ring-exchange, planner.pricing.tp_overlap) when
    the recipe can run it (a Megatron recipe: megatron-lm, the 'megatron' alias, or megatron-core; tp > 1
    with sequence parallelism) and the user did not fix it."""
    lay, trn = cand.layout, cand.training
    if not c.search_tp_overlap or framework_of_recipe(trn.recipe) != "megatron" or lay.tp == 1 or not lay.sequence_parallel \
            or trn.tp_comm_overlap:
        return []
    return [Candidate(lay, trn.replace(tp_comm_overlap=True, tp_overlap_style="ring-exchange"), cand.gpus)]


def other_orders(cand: Candidate, hardware: HardwareProfile, c: SearchConstraints) -> list[Candidate]:
    """``cand`` in the other rank orders worth pricing (none when the user pinned one). The search
    prices them for its leading plans only: the order moves communication between network tiers
    and changes neither FLOPs nor memory."""
    if c.rank_order is not None:
        return []
    lay = cand.layout
    orders = _rank_orders(lay.tp, lay.pp, lay.dp, hardware.node.fast_domain_devices, c)
    return [Candidate(lay.model_copy(update={"rank_order": o}), cand.training, cand.gpus)
            for o in orders if o != lay.rank_order]


def _rank_orders(tp: int, pp: int, dp: int, domain: int, c: SearchConstraints) -> tuple[str, ...]:
    """Rank orders worth pricing: the default, plus dp-before-pp when both exist and the fast domain
    holds more than one tp group (otherwise both orders place every group alike)."""
    if c.rank_order is not None:
        return (c.rank_order,)
    if pp > 1 and dp > 1 and domain > tp:
        return ("tp-cp-pp-dp", "tp-cp-dp-pp")
    return ("tp-cp-pp-dp",)


def cp_degrees(training: TrainingSpec, gpus_per_tp: int) -> list[int]:
    """Context-parallel degrees offered: 1, plus (sequences >= CP_MIN_SEQ, fused attention) the divisors
    of ``gpus_per_tp`` giving 2*cp chunks of >= CP_MIN_CHUNK tokens that divide the sequence."""
    seq = training.seq_length
    if seq < CP_MIN_SEQ or not training.flash_attention:
        return [1]
    return [1] + [k for k in divisors(gpus_per_tp)[1:] if seq % (2 * k) == 0 and seq // (2 * k) >= CP_MIN_CHUNK]


def _tp_cp(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec, c: SearchConstraints,
           counts: Counts):
    """(tp, cp) pairs of the space, tp within a node unless allowed otherwise."""
    domain = hardware.node.fast_domain_devices  # tp may fill the fast domain
    for tp in tp_degrees(model, hardware, gpus, cross_node=True):
        if (c.max_tp is not None and tp > c.max_tp) or (not c.allow_cross_node_tp and (tp > domain or domain % tp)):
            counts.constraint += 1
            continue
        cps = cp_degrees(training, gpus // tp)
        if c.cp is not None:
            counts.constraint += sum(1 for k in cps if k != c.cp)
            cps = [c.cp] if gpus % (tp * c.cp) == 0 else []
        for cp in cps:
            yield tp, cp


def _schedules(L: int, pp: int, split, c: SearchConstraints, counts: Counts):
    if pp == 1:
        return [("1f1b", 1)]
    opts = [("1f1b", 1), ("zb-h1", 1)]
    # interleaving: vpp divides the (middle) stages' layers; with an uneven split the first and last
    # stages hold fewer layers but at least one per chunk (Llama 3.1 405B: 7, 8 x 14, 7 with vpp 4)
    per_stage = L // pp if split is None else max(split)
    shortest = per_stage if split is None else min(split)
    opts += [("interleaved-1f1b", v) for v in range(2, min(MAX_VPP, shortest) + 1) if per_stage % v == 0]
    if c.schedule == "gpipe":
        opts = [("gpipe", 1)]
    elif c.schedule is not None:
        keep = [o for o in opts if o[0] == c.schedule]
        counts.constraint += len(opts) - len(keep)
        opts = keep
    return opts


def _shardings(pp: int, dp: int, tp: int, node: int, training: TrainingSpec, c: SearchConstraints,
               counts: Counts, cp: int = 1):
    """(zero_stage, fsdp, dp_shard) options (states shard over dp x cp; hybrid sharding only with cp = 1)."""
    if dp * cp == 1:
        stages = [0]
    elif pp > 1:
        stages = [0, 1] if c.zero is None else [c.zero]
    else:
        stages = [0, 1, 2, 3] if c.zero is None else [c.zero]
    if c.zero is not None and dp * cp == 1 and c.zero != 0:
        stages = [c.zero]  # sharding over one rank: same memory, kept so the constraint is honoured
    out = []
    if pp > 1 and dp > 1 and c.zero is None and c.framework == "torchtitan":
        stages = [0, 3]  # torchtitan: FSDP2 with pipelining, no ZeRO-1/2
    for z in stages:
        if z == 3 and pp > 1 and c.framework != "torchtitan" and c.zero != 3:
            counts.invalid += 1
            continue
        fsdp = z == 3 and training.recipe_spec.fsdp_sharding
        zs = 0 if fsdp else z
        out.append((zs, fsdp, None))
        local = node // tp if node % tp == 0 else 0
        if z == 3 and cp == 1 and 1 < local < dp and dp % local == 0:
            out.append((zs, fsdp, local))
    return out


def micro_batch_sizes(training: TrainingSpec, dp: int, c: SearchConstraints) -> list[int]:
    """Micro-batch sizes that divide the per-replica batch."""
    per_replica = training.global_batch_size // dp
    sizes = [c.micro_batch] if c.micro_batch is not None else list(MICRO_BATCHES)
    return [b for b in sizes if per_replica % b == 0]


def recompute_options(c: SearchConstraints, training: TrainingSpec) -> tuple[str, ...]:
    """Recompute choices, lightest first: the pinned one, else those of ``training``'s recipe's framework."""
    if c.recompute is not None:
        return (c.recompute,)
    return FRAMEWORK_RECOMPUTES.get(framework_of_recipe(training.recipe) or "", DEFAULT_RECOMPUTES)
