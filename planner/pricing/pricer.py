"""The Pricer: seconds of one layout's ops (GEMMs, attention, memory-bound kernels, collectives over their
groups' placements, pipeline sends, the optimizer step) on one hardware profile and GPU count."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..specs import HardwareProfile, Layout, TrainingSpec
from ..work.context import RingAttention
from ..work.ops import (
    Collective,
    MemoryOp,
    Op,
    TokenAllToAll,
    launches,
)
from . import shared_blocks
from .collectives import CollectivePricer
from .compute import (
    FOREACH_ADAMW_SLOWDOWN,
    OPTIMIZER_LOOP_LAUNCHES,
    ComputePricer,
    attention_kernel_for,
    overlap_slowdown,
)
from .compute_part import compute_part, compute_seconds, ring_compute_parts
from .moe_overlap import dispatcher_sms
from .placement import GroupPlacement, axis_placement, axis_strides, pp_boundary_devices

AXES = ("tp", "cp", "pp", "dp", "dp_shard", "dp_replicate", "ep", "etp", "edp")


@dataclass(frozen=True, slots=True)
class BlockTime:
    """Seconds of an op list split into compute, tensor-parallel communication and exposed
    context-parallel communication (ring transfers beyond their block, cp all-gathers); ``host`` is the
    CPU's dispatch time of the list's kernels (recipe host_dispatch_us per kernel). The host floor is
    applied per pass (planner.cost.analytic.price_stage): the CPU runs ahead of the GPU through the
    launch queue, so a short block's dispatch hides behind its neighbours' kernels."""

    compute: float
    tp_comm: float
    host: float = 0.0
    device: float = 0.0
    cp_comm: float = 0.0  # exposed context-parallel communication, not part of tp_comm
    expert_comm: float = 0.0  # the part of tp_comm on the expert axes (ep / etp), which TP-comm overlap
    # does not hide (Megatron-Core --tp-comm-overlap overlaps the TE Linears' TP collectives only)
    syncs: int = 0  # host syncs in the list (planner.pricing.moe_overlap.synced_block)
    gemm: float = 0.0  # the part of compute in single-stream GEMMs (planner.pricing.compute_part.single_stream_gemm)

    @property
    def total(self) -> float:
        """compute + tp_comm + cp_comm, s."""
        return self.compute + self.tp_comm + self.cp_comm


def placements(layout: Layout, hardware: HardwareProfile) -> tuple[dict[str, GroupPlacement], tuple]:
    """(group placement per axis, pp boundary devices) of ``layout`` on ``hardware``: pure functions
    of the two (planner.pricing.placement). Inside a search (planner.pricing.shared_blocks) they are
    kept per (layout, hardware), since every candidate of a structure (micro-batch, recompute,
    offload) shares them; a lone estimate computes them. Callers must not mutate them."""
    store = shared_blocks.current()
    if store is None:
        strides = axis_strides(layout)
        return {a: axis_placement(layout, a, hardware, strides) for a in AXES}, pp_boundary_devices(layout, hardware)
    memo = store["placements"]
    key = (tuple(tuple(v) if isinstance(v, list) else v for v in layout.__dict__.values()), id(hardware))
    hit = memo.get(key)
    if hit is not None and hit[0] is hardware:
        return hit[1], hit[2]
    if len(memo) > 4096:
        memo.clear()
    strides = axis_strides(layout)
    groups = {a: axis_placement(layout, a, hardware, strides) for a in AXES}
    pp = pp_boundary_devices(layout, hardware)
    memo[key] = (hardware, groups, pp)
    return groups, pp


def shared_compute(hardware: HardwareProfile, precision: str, attention_kernel: str | None,
                   store: dict | None) -> ComputePricer:
    """The ComputePricer of (``hardware``, ``precision``, ``attention_kernel``): one per search ``store``
    (planner.pricing.shared_blocks), so its price memos serve every candidate; a new one without a store."""
    if store is None:
        return ComputePricer(hardware.device, precision, attention_kernel)
    return shared_blocks.shared_part(store, hardware, ("compute", precision, attention_kernel),
                                     lambda: ComputePricer(hardware.device, precision, attention_kernel))


class Pricer:
    """Seconds for the ops of one layout on one hardware profile and GPU count."""

    def __init__(self, hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int):
        self.hardware = hardware
        self.training = training
        self.layout = layout
        self.shared_expert_overlap = training.moe_shared_expert_overlap
        self.nodes = max(1, math.ceil(gpus / hardware.node.devices_per_node))
        self._shared = shared_blocks.current() if type(self) is Pricer else None  # planner.pricing.shared_blocks
        self.attention_kernel = attention_kernel_for(hardware.device, training)
        self.compute = shared_compute(hardware, training.precision, self.attention_kernel, self._shared)
        if self._shared is None:
            self.collectives = CollectivePricer(hardware, self.nodes)
        else:
            self.collectives = shared_blocks.shared_part(self._shared, hardware, ("collectives", self.nodes),
                                                         lambda: CollectivePricer(hardware, self.nodes))
        self.host_dispatch_s = training.recipe_spec.host_dispatch_us * 1e-6
        self.host_view_s = training.recipe_spec.host_view_us * 1e-6
        self.recompute_host_calls = training.recipe_spec.recompute_host_calls_per_kernel
        self.groups, (self.pp_senders, self.pp_crosses_node) = placements(layout, hardware)
        self._blocks: dict[int, tuple[tuple[Op, ...], BlockTime]] = {}
        if self._shared is not None:
            self._context = shared_blocks.context_id(
                self._shared, hardware, (training.precision, self.attention_kernel, self.host_dispatch_s, self.recompute_host_calls,
                                         self.shared_expert_overlap, tuple(self.groups[a] for a in AXES)))

    def op_time(self, op: Op) -> float:
        """Seconds of one op on one rank."""
        t = compute_seconds(self.compute, op)
        if t is not None:
            return t
        if isinstance(op, RingAttention):
            return sum(self.ring_attention_time(op))
        return self.collective_time(op)

    def ring_attention_time(self, op: RingAttention) -> tuple[float, float]:
        """(compute, exposed communication) seconds of a ring-attention core: ``steps`` blocks and
        steps-1 corrections on the compute stream; each of the steps-1 sends to the next cp rank runs
        under one block (+ its correction) and is exposed only by what it outlasts it; the tail send
        (backward's last dK/dV hop) is exposed whole. Sends are priced as the cp group's p2p hop (over
        the NIC share when the ring crosses nodes: every rank of a node sends at once)."""
        block, corr, compute = ring_compute_parts(self.compute, op)
        group = self.groups["cp"]
        send = self.collectives.p2p_time(op.transfer_bytes, group)
        tail = self.collectives.p2p_time(op.tail_bytes, group) if op.tail_bytes else 0.0
        return compute, op.transfers * max(0.0, send - block - corr) + tail

    def collective_time(self, op: Collective, group: GroupPlacement | None = None) -> float:
        """Seconds of a collective over its axis group (or over ``group``): ``op.calls`` collectives
        of ``op.bytes / op.calls`` each."""
        group = self.groups[op.axis] if group is None else group
        if isinstance(op, TokenAllToAll):
            return op.calls * max(self.a2a_parts(op, group))
        staging = op.calls * self.staging_time(op) if (op.staging_kernels or op.staging_bytes or op.staging_views) else 0.0
        if op.calls == 1:
            return self.collectives.time(op.kind, op.bytes, group) + staging
        return op.calls * self.collectives.time(op.kind, op.bytes / op.calls, group) + staging

    def staging_time(self, op: Collective) -> float:
        """Seconds of the host and copy work a framework runs around one call of ``op`` (``Collective.staging_*``):
        the copies' bytes at the copy bandwidth plus the device's overhead per kernel on the communication stream,
        and the host's Python work at the recipe's host_view_us per view and host_dispatch_us per kernel it issues.
        Views that build the call's tensor list run before the call, on an idle device (the framework has
        synchronized), so they add; a Python loop that issues the copies itself runs beside them (the longer
        counts)."""
        device = self.compute.memory_time(MemoryOp(op.name, op.staging_bytes / op.calls, op.phase, "copy",
                                                   op.staging_kernels))
        views = op.staging_views * self.host_view_s
        if op.staging_host:
            return max(device, views + op.staging_kernels * self.host_dispatch_s)
        return views + device

    def a2a_parts(self, op: Collective, group: GroupPlacement | None = None) -> tuple[float, float]:
        """(intra-node, off-node) seconds of one call of an all-to-all op (planner.pricing.collectives)."""
        group = self.groups[op.axis] if group is None else group
        if isinstance(op, TokenAllToAll):
            return self.collectives.all_to_all_parts(op.bytes / op.calls, group, op.copies, op.node_dedup, op.max_nodes,
                                                     op.experts, self.training.moe_token_dispatcher, op.combine)
        return self.collectives.all_to_all_parts(op.bytes / op.calls, group)

    def block_time(self, ops: tuple[Op, ...]) -> BlockTime:
        """Compute and TP-communication seconds of an op list (everything serialised)."""
        hit = self._blocks.get(id(ops))
        if hit is not None and hit[0] is ops:
            return hit[1]
        if self._shared is not None:
            blocks = self._shared["blocks"]
            key = (id(ops), self._context)
            hit = blocks.get(key)
            if hit is not None and hit[0] is ops:
                self._blocks[id(ops)] = hit
                return hit[1]
            result = self._block_time(ops)
            if len(blocks) > shared_blocks.MAX_ENTRIES:
                blocks.clear()
            blocks[key] = self._blocks[id(ops)] = (ops, result)
            return result
        result = self._block_time(ops)
        self._blocks[id(ops)] = (ops, result)  # keeps ops alive, so the id stays unique
        return result

    def _block_time(self, ops: tuple[Op, ...]) -> BlockTime:
        """``block_time`` computed: the compute part (``compute_part``, placement-free) and the
        communication ops over their groups, in op order."""
        part = compute_part(self.compute, ops)
        comp, shared = part.compute, part.shared
        calls = self.recompute_host_calls
        if float(calls).is_integer():  # whole calls per kernel: the sum is exact in any order
            kernels = part.kernels + part.recompute_kernels * calls
        else:  # added in op order, as the launches happen
            kernels = 0
            for op in ops:
                kernels += (2 * op.steps - 1 if isinstance(op, RingAttention)
                            else launches(op) * (calls if op.phase == "recompute" else 1))
        comm = cp = a2a = expert = 0.0
        for op in part.comm_ops:
            if isinstance(op, RingAttention):
                cp += self.ring_attention_time(op)[1]
                continue
            t = self.collective_time(op)
            if op.axis == "cp":
                cp += t
            else:
                comm += t
                a2a += t if op.kind == "all-to-all" else 0.0
                expert += t if op.axis in ("ep", "etp") else 0.0
        if self.shared_expert_overlap:  # shared experts run while the tokens are in flight
            hidden = min(a2a, shared)  # (Megatron-Core --moe-shared-expert-overlap)
            comm -= hidden
            expert -= hidden
        host = kernels * self.host_dispatch_s
        return BlockTime(compute=comp, tp_comm=comm, host=host, device=comp, cp_comm=cp, expert_comm=expert,
                         syncs=part.syncs, gemm=part.gemm)

    def p2p_time(self, nbytes: float) -> float:
        """Seconds for one pipeline send of ``nbytes`` across the slowest stage boundary."""
        if self.layout.pp == 1:
            return 0.0
        group = self.groups["pp"]
        return self.collectives.p2p_time(nbytes, group, self.pp_senders or None, self.pp_crosses_node)

    def p2p_gather_time(self, nbytes: float) -> float:
        """Seconds the receiving tp group spends all-gathering a scatter/gather pipeline send whose whole
        tensor is ``nbytes`` (0 when there is none)."""
        if nbytes <= 0 or self.layout.tp == 1:
            return 0.0
        return self.collectives.time("all-gather", nbytes, self.groups["tp"])

    def pipeline_send_time(self, step) -> float:
        """Seconds of one pipeline send of ``step`` (planner.work.step.pipeline_send_bytes): the send over
        the slowest stage boundary plus, under scatter/gather p2p, the receiver's all-gather."""
        return self.p2p_time(step.p2p_bytes) + self.p2p_gather_time(step.p2p_gather_bytes)

    def p2p_blocking_time(self, send_s: float, fwd_compute: float, bwd_compute: float) -> float:
        """Seconds one pipeline send of ``send_s`` seconds (``p2p_time``) holds its stage: all of it, or,
        where the recipe overlaps the interleaved schedule's sends with compute
        (``p2p_overlap_interleaved``; Megatron-Core posts them asynchronously and waits before the chunk
        that needs them), only what outlasts the smaller chunk pass; ``fwd_compute`` / ``bwd_compute``:
        the stage's forward and backward compute of one micro-batch over all its chunks, s."""
        lay = self.layout
        if lay.schedule == "interleaved-1f1b" and self.training.recipe_spec.p2p_overlap_interleaved:
            return max(0.0, send_s - min(fwd_compute, bwd_compute) / lay.vpp)
        return send_s

    @property
    def zero3_serialized(self) -> bool:
        """ZeRO-3 / FSDP gathers and reduce-scatters run between the compute, not beside it: the framework waits
        for the device before each gather (recipe ``zero3.serialized``), or the device has no concurrent streams
        for the prefetch to run on (``device.concurrent_streams`` false: a CPU)."""
        return self.training.recipe_spec.zero3.serialized or not self.hardware.device.concurrent_streams

    def comm_compute_slowdown(self, gemm_share: float = 0.0) -> float:
        """Extra compute seconds per second of compute that runs beside a collective, for compute of which
        ``gemm_share`` is single-stream GEMMs: the collective's kernels hold ``node.collective_sms`` of the
        device's ``sm_count`` SMs and nothing carves SMs out of the GEMMs beside them (FSDP / ZeRO prefetch and
        gradient reduction on their own streams), ``compute.overlap_slowdown``; 0 when the profile gives no
        figure."""
        dev = self.hardware.device
        return overlap_slowdown(gemm_share, self.hardware.node.collective_sms, dev.sm_count, dev.persistent_gemms)

    def expert_comm_slowdown(self, gemm_share: float = 0.0) -> float:
        """Extra compute seconds per second of compute beside the MoE dispatch / combine kernels: the SMs the
        training's dispatcher takes (planner.pricing.moe_overlap.dispatcher_sms: DeepEP's and HybridEP's set
        counts, NCCL's collective channels for the alltoall dispatcher), by ``compute.overlap_slowdown``."""
        dev = self.hardware.device
        return overlap_slowdown(gemm_share, dispatcher_sms(self.training.moe_token_dispatcher,
                                                           self.hardware.node.collective_sms),
                                dev.sm_count, dev.persistent_gemms)

    def optimizer_time(self, params: float, pass_bytes: float = 0.0, tensors: float = 0.0,
                       comm: tuple[Collective, ...] = ()) -> float:
        """Seconds for the optimizer step over ``params`` parameters (``tensors`` parameter tensors) on one GPU,
        with ``pass_bytes`` of memory-bound passes around it (gradient zeroing, master -> parameter copy,
        clipping; priced by ComputePricer.optimizer_stream_time) and the collectives ``comm`` its ops issue
        (DTensor redistributions; nothing overlaps them)."""
        recipe = self.training.recipe_spec
        adam = self.compute.optimizer_time(params)
        if recipe.optimizer_foreach or recipe.optimizer_loop_sync:  # a kernel per operation (and per tensor)
            adam *= FOREACH_ADAMW_SLOWDOWN
        if recipe.optimizer_loop_sync:  # each tensor's .item() drains the queue: its launches are not hidden
            adam += tensors * OPTIMIZER_LOOP_LAUNCHES * self.host_dispatch_s
        return adam + self.compute.optimizer_stream_time(pass_bytes) + sum(self.collective_time(c) for c in comm)


