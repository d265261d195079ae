"""Entities of the simulation: per-stage event durations (seconds, all from ``planner.pricing``
applied to the ops of ``planner.work.step.build_step``), where one pipeline's ranks sit on the
nodes, and which NICs each transfer crosses (their sharing is ``simulate.fabric.NicFabric``).

Nothing here prices an op: durations are ``Pricer.block_time`` / ``collective_time`` /
``p2p_time`` / ``optimizer_time`` sums. The only rule added is how a NIC's bandwidth is split
among concurrent transfers, the rule of ``planner.topology.offnode_bandwidth_per_device_gbps``
(even split among the devices using the NIC) applied to the transfers active at each instant.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from planner.cost.a2a_overlap import a2a_overlap, paired_hidden
from planner.cost.analytic import fsdp_copy_time, price_stage, stage_memory
from planner.cost.bottleneck_booking import hidden_compute
from planner.pricing import Pricer
from planner.pricing.moe_overlap import synced_block
from planner.pricing.placement import axis_strides
from planner.pricing.tp_overlap import ring_exchange_time
from planner.topology import nic_for_device, offnode_bandwidth_per_device_gbps
from planner.work.context import RingAttention
from planner.work.ops import Collective
from planner.work.step import StepWork

NicKey = tuple[int, str, str]  # (node index, NIC name, "out" | "in")


@dataclass(frozen=True, slots=True)
class PhaseTime:
    """Seconds of one phase of one chunk for one micro-batch: compute, tensor-parallel comm and the
    exposed context-parallel exchange (ring sends beyond their block, cp all-gathers); ``offnode``
    is the part of ``tp`` that is expert-parallel all-to-all traffic bound by the NICs (the engine
    runs it as a flow on the fabric, so it contends with the other transfers)."""

    compute: float
    tp: float
    cp: float = 0.0
    offnode: float = 0.0

    @property
    def total(self) -> float:
        """compute + tp + cp, s."""
        return self.compute + self.tp + self.cp


@dataclass(frozen=True, slots=True)
class ChunkTimes:
    """One model chunk of a stage (the whole stage unless interleaved): forward, backward (recompute
    + input-grad + the TP comm of the weight-grad ops, as the analytic model books it), weight-grad,
    and the (block name, layer count) it holds, for trace labels."""

    fwd: PhaseTime
    bwd: PhaseTime
    wgrad: PhaseTime
    blocks: tuple[tuple[str, int], ...]
    layers: int
    cp_fwd: Transfer | None = None  # the chunk's context-parallel sends of one forward, on the NICs
    cp_bwd: Transfer | None = None  # ... of one backward


@dataclass(frozen=True, slots=True)
class Transfer:
    """A communication of known priced duration: ``fixed_s`` (intra-node phases, latency) then
    ``offnode_s`` over the NICs in ``nics`` ((key, devices of this transfer on it)) at
    ``priced_share_gbps`` per device, the share the Pricer assumed."""

    name: str
    fixed_s: float
    offnode_s: float
    nics: tuple[tuple[NicKey, int], ...]
    priced_share_gbps: float

    @property
    def seconds(self) -> float:
        """Priced duration, s."""
        return self.fixed_s + self.offnode_s

    def scaled(self, factor: float) -> Transfer:
        """The same transfer with ``factor`` of its bytes (a bucket)."""
        return dataclasses.replace(self, fixed_s=self.fixed_s * factor, offnode_s=self.offnode_s * factor)


@dataclass(frozen=True)
class StagePlan:
    """Everything the engine needs about one stage (one GPU of it)."""

    index: int
    node: int
    devices: tuple[int, ...]  # node devices running this stage (tp peers, co-located replicas)
    chunks: tuple[ChunkTimes, ...]
    zero3_exposed: float  # analytic exposed ZeRO-3 comm per micro-batch (overlap off), s
    zero3_beside: float  # analytic compute slowdown beside ZeRO-3 traffic per micro-batch (overlap off), s
    zero3_fwd: Transfer | None  # per micro-batch ZeRO-3 gathers before the forward
    zero3_bwd: Transfer | None  # per micro-batch ZeRO-3 gathers + reduce-scatters of the backward
    dp_reduce: tuple[Transfer, ...]  # per-step gradient reductions
    dp_gather: tuple[Transfer, ...]  # per-step ZeRO-1/2 parameter all-gathers (after the optimizer)
    optimizer: float
    a2a_nics: tuple  # NICs (and devices on them) the stage's expert all-to-alls cross, both directions
    a2a_share_gbps: float  # NIC share per device the Pricer assumed for them
    static_bytes: float  # memory held all step (states, buffers, working, reserved), bytes
    activation_bytes_per_microbatch: float
    analytic_peak_bytes: float
    zero3_hidden: tuple[float, float] = (0.0, 0.0)  # analytic compute hidden under ZeRO-3 traffic (fwd, bwd), s
    comm_slowdown: float = 0.0  # extra compute seconds per second run beside a collective (Pricer.comm_compute_slowdown)
    comm_slowdown_fwd: float = 0.0  # ... for its forward passes (StageTimes.comm_slowdown_fwd)
    offload_exposed: float = 0.0  # analytic exposed host-link copies per micro-batch, s
    zero3_serialized: bool = False  # the recipe's ZeRO-3 collectives run between the compute, not beside it


@dataclass(frozen=True)
class SimPlan:
    """One pipeline of the job, priced: stages, sends, NIC bandwidths, what was folded."""

    step: StepWork
    pricer: Pricer
    stages: tuple[StagePlan, ...]
    stage_p2p: tuple[float, ...]  # per stage: what one of its sends holds it (Pricer.p2p_blocking_time), s
    sends: dict[tuple[int, int], Transfer]  # (from stage, to stage) -> the whole transfer (async, overlap on)
    blocking_sends: dict[tuple[int, int], Transfer]  # the same as blocking slots (overlap off)
    nic_gbps: dict[NicKey, float]
    folded: tuple[str, ...]


def _chunk_times(stage, pricer: Pricer, v: int, is_first: bool, is_last: bool, cp_nics=(),
                 cp_share: float = 1.0, copy_s: float = 0.0, micro_batches: int = 1) -> tuple[ChunkTimes, ...]:
    """Split a stage's blocks into ``v`` chunks (layers evenly; embedding on the first chunk of the
    first stage, head on the last chunk of the last stage) and price each phase; ``cp_nics``: the
    NICs the chunk's context-parallel sends cross (none when the cp group stays in a node); ``copy_s``:
    the stage's FSDP copy-out seconds per micro-batch (planner.cost.analytic.fsdp_copy_time), half in
    the forward, half in the backward, spread over the chunks."""
    trn = pricer.training
    ring = trn.tp_comm_overlap and trn.tp_overlap_style == "ring-exchange"

    def phase(blocks, attr):
        comp = tp = cp = host = off = expert = 0.0
        for block, n in blocks:
            ops = getattr(block, attr)
            if ops and n:
                bt = pricer.block_time(ops)
                if ring:  # the same decomposition the analytic model prices (planner.pricing.tp_overlap)
                    c, t = ring_exchange_time(ops, pricer)
                else:
                    c, t = bt.compute, bt.tp_comm
                c, h = synced_block(c, t, bt.cp_comm, bt.host, bt.syncs, pricer.host_dispatch_s)
                comp += c * n
                tp += t * n
                cp += bt.cp_comm * n
                host += h * n
                off += _a2a_offnode(pricer, ops) * n
                expert += bt.expert_comm * n
        # the host floor per pass, as planner.cost.analytic.price_stage: an eager CPU cannot dispatch faster
        return [max(comp, host - tp - cp), tp, host, cp, expert, off]

    def overlap(f, bi, bw, r, layers):
        """The analytic model's combined-1F1B overlap (planner.cost.a2a_overlap) on this chunk's ``layers``;
        the NIC-bound all-to-all time shrinks with the exposed expert communication."""
        if not (trn.moe_a2a_overlap and pricer.layout.ep > 1 and layers):
            return
        before = [p[4] for p in (f, bi, bw, r)]
        a2a_overlap({"f": f, "bi": bi, "bw": bw, "r": r}, paired_hidden(stage.layer, pricer) * layers,
                    pricer.layout, micro_batches)
        for p, b in zip((f, bi, bw, r), before):
            p[5] *= p[4] / b if b > 0 else 1.0

    def cp_sends(blocks, attrs, name):
        secs = sum(cp_send_seconds(pricer, getattr(block, a)) * n for block, n in blocks for a in attrs if n)
        return Transfer(name, 0.0, secs, cp_nics, cp_share) if secs > 0 and cp_nics else None

    base, extra = divmod(stage.layers, v)
    out = []
    for c in range(v):
        n = base + (1 if c < extra else 0)
        blocks = [(stage.layer, n)]
        names = [("layer", n)]
        if c == 0 and is_first:
            blocks.insert(0, (stage.pre, 1))
            names.insert(0, ("embedding", 1))
        if c == v - 1 and is_last:
            blocks.append((stage.post, 1))
            names.append(("head", 1))
        f = phase(blocks, "forward")
        bi = phase(blocks, "backward_input")
        f[0] += copy_s / 2 / v  # the FSDP copy-out runs on the compute stream
        bi[0] += copy_s / 2 / v
        bw = phase(blocks, "backward_weight")
        r = phase(blocks, "recompute")
        overlap(f, bi, bw, r, n)
        out.append(ChunkTimes(
            fwd=PhaseTime(f[0], f[1], f[3], f[5]),
            bwd=PhaseTime(bi[0] + r[0], bi[1] + r[1] + bw[1], bi[3] + r[3] + bw[3], bi[5] + r[5] + bw[5]),
            wgrad=PhaseTime(bw[0], 0.0), blocks=tuple(names), layers=n,
            cp_fwd=cp_sends(blocks, ("forward",), "cp sends fwd"),
            cp_bwd=cp_sends(blocks, ("recompute", "backward_input", "backward_weight"), "cp sends bwd"),
        ))
    return tuple(out)


def cp_send_seconds(pricer: Pricer, ops) -> float:
    """Priced seconds of the context-parallel communication in ``ops`` (ring sends and tails, cp
    collectives): what loads the NICs while the blocks run (``Pricer`` prices every part)."""
    group = pricer.groups["cp"]
    total = 0.0
    for op in ops:
        if isinstance(op, RingAttention):
            total += op.transfers * pricer.collectives.p2p_time(op.transfer_bytes, group)
            if op.tail_bytes:
                total += pricer.collectives.p2p_time(op.tail_bytes, group)
        elif isinstance(op, Collective) and op.axis == "cp":
            total += pricer.collective_time(op)
    return total


def _a2a_offnode(pricer: Pricer, ops) -> float:
    """Seconds of the all-to-alls of ``ops`` whose off-node level sets their price (pricing's
    ``all_to_all_parts``): those run on the fabric; the intra-node-bound ones stay in the compute event."""
    off = 0.0
    for op in ops:
        if isinstance(op, Collective) and op.kind == "all-to-all":
            intra, inter = pricer.a2a_parts(op)
            if inter >= intra:
                off += inter
    return off


def stage_devices(layout, stage: int, devices_per_node: int) -> tuple[int, tuple[int, ...]]:
    """(node index, node devices) of ``stage`` in replica 0: its tp*cp ranks plus the same stage of
    the replicas sharing that node (they run in lock-step by symmetry, so they load the same NICs).
    Rank strides follow ``layout.rank_order`` (planner.pricing.placement.axis_strides)."""
    strides = axis_strides(layout)
    per_stage = layout.tp * layout.cp
    dp_stride, pp_stride = strides["dp"][1], strides["pp"][1]
    first = stage * pp_stride
    node = first // devices_per_node
    devs = set()
    for d in range(layout.dp):
        base = d * dp_stride + first
        if base // devices_per_node > node:
            break
        devs.update(r % devices_per_node for r in range(base, base + per_stage) if r // devices_per_node == node)
    return node, tuple(sorted(devs))


def _nic_use(node_spec, node: int, devices: tuple[int, ...], directions: tuple[str, ...]):
    """((node, nic, dir), devices on it) for the NICs serving ``devices``."""
    per_nic = Counter(nic_for_device(node_spec, d).name for d in devices)
    return tuple(((node, name, dr), k) for name, k in sorted(per_nic.items()) for dr in directions)


def _collective_transfer(pricer: Pricer, op: Collective, nics, share: float) -> Transfer:
    """Priced collective split into its intra-node part and its off-node part (the Pricer's own
    formula evaluated on the group as if it were one node gives the intra-node part)."""
    group = pricer.groups[op.axis]
    total = pricer.collective_time(op)
    if group.nodes <= 1 or not nics:
        return Transfer(op.name, total, 0.0, (), share)
    intra = pricer.collective_time(op, dataclasses.replace(group, nodes=1))
    return Transfer(op.name, intra, max(0.0, total - intra), nics, share)


def build_plan(step: StepWork, pricer: Pricer, hardware) -> SimPlan:
    """Price every event of one pipeline of ``step``."""
    layout = step.layout
    node_spec = hardware.node
    dpn = node_spec.devices_per_node
    all_devs = tuple(range(dpn))
    v = layout.vpp if layout.schedule == "interleaved-1f1b" else 1
    has_nics = bool(node_spec.nics)
    dp_share = offnode_bandwidth_per_device_gbps(node_spec, all_devs) if has_nics else 1.0
    p2p_share = (offnode_bandwidth_per_device_gbps(node_spec, pricer.pp_senders or all_devs)
                 if has_nics else 1.0)
    stages = []
    placement = [stage_devices(layout, s.index, dpn) for s in step.stages]
    # stages made from one template (same layers, embedding / head, states) are priced once; the
    # NICs they load (their fabric position) are looked up per stage
    priced: dict[tuple, tuple] = {}
    stage_p2p = []
    for s, (node, devs) in zip(step.stages, placement):
        work = (s.layers, id(s.pre), id(s.post), s.index == 0, s.index == layout.pp - 1)
        if work not in priced:
            copy_s = fsdp_copy_time(s, step, pricer)
            priced[work] = (price_stage(s, step, pricer), copy_s,
                            _chunk_times(s, pricer, v, s.index == 0, s.index == layout.pp - 1, copy_s=copy_s,
                                         micro_batches=step.micro_batches))
        times, copy_s, chunks = priced[work]
        stage_p2p.append(times.p2p / 2)  # the analytic send: a forward activation and a backward gradient
        both = _nic_use(node_spec, node, devs, ("out", "in")) if has_nics else ()
        coll = [_collective_transfer(pricer, c, both, dp_share) for c in s.per_step_comm]
        z3f = [c for c in s.per_microbatch_comm if c.phase == "fwd"]
        z3b = [c for c in s.per_microbatch_comm if c.phase != "fwd"]

        def merged(ops, name):
            parts = [_collective_transfer(pricer, c, both, dp_share) for c in ops]
            if not parts:
                return None
            return Transfer(name, sum(t.fixed_s for t in parts), sum(t.offnode_s for t in parts),
                            parts[0].nics, dp_share)

        mem = stage_memory(s, hardware)
        bd = mem.breakdown
        bwd_c = times.bwd_input_compute + times.bwd_weight_compute + times.recompute_compute
        serialized = pricer.zero3_serialized
        hidden = (0.0, 0.0) if serialized else (
            hidden_compute(times.fwd_compute, sum(pricer.collective_time(c) for c in z3f), times.comm_slowdown_fwd)
            if z3f else 0.0,
            hidden_compute(bwd_c, sum(pricer.collective_time(c) for c in z3b), times.comm_slowdown) if z3b else 0.0)
        stages.append(StagePlan(
            index=s.index, node=node, devices=devs,
            chunks=chunks if pricer.groups["cp"].nodes == 1 else  # cp sends load this stage's NICs
            _chunk_times(s, pricer, v, s.index == 0, s.index == layout.pp - 1, cp_nics=both, cp_share=dp_share,
                         copy_s=copy_s, micro_batches=step.micro_batches),
            zero3_exposed=times.zero3_exposed, zero3_beside=times.zero3_beside, zero3_fwd=merged(z3f, "zero3.gather.fwd"),
            zero3_bwd=merged(z3b, "zero3.gather+reduce.bwd"),
            dp_reduce=tuple(t for t, c in zip(coll, s.per_step_comm) if c.kind != "all-gather"),
            dp_gather=tuple(t for t, c in zip(coll, s.per_step_comm) if c.kind == "all-gather"),
            optimizer=times.optimizer + times.offload_step, a2a_nics=both, a2a_share_gbps=dp_share,
            static_bytes=bd.total - bd.activations,
            activation_bytes_per_microbatch=s.activation_bytes_per_microbatch,
            analytic_peak_bytes=mem.peak_bytes, zero3_hidden=hidden, comm_slowdown=times.comm_slowdown,
            comm_slowdown_fwd=times.comm_slowdown_fwd,
            offload_exposed=times.offload_exposed, zero3_serialized=serialized,
        ))
    send = pricer.p2p_time(step.p2p_bytes)
    gather = pricer.p2p_gather_time(step.p2p_gather_bytes)  # the receiver's tp all-gather (scatter/gather p2p)
    p2p = send + gather
    sends, blocking = {}, {}
    for a in range(layout.pp):
        for b in ((a + 1) % layout.pp, (a - 1) % layout.pp):
            if a == b:
                continue
            (na, da), (nb, db) = placement[a], placement[b]
            fdn = node_spec.fast_domain_nodes  # nodes of one NVLink domain: a send inside it uses no NIC
            cross = na // fdn != nb // fdn or layout.tp * layout.cp > dpn * fdn
            nics = (_nic_use(node_spec, na, da, ("out",)) + _nic_use(node_spec, nb, db, ("in",))
                    if cross and has_nics else ())
            sends[(a, b)] = Transfer(f"send {a}->{b}", gather + (0.0 if nics else send), send if nics else 0.0,
                                     nics, p2p_share)
            # blocking (overlap off): what the send holds its stage, the analytic price of the recipe's rule
            blocking[(a, b)] = sends[(a, b)].scaled(stage_p2p[a] / p2p) if p2p > 0 else sends[(a, b)]
    nic_gbps = {}
    for node in sorted({n for n, _ in placement} | {n + 1 for n, _ in placement}):
        for nic in node_spec.nics:
            for dr in ("out", "in"):
                nic_gbps[(node, nic.name, dr)] = nic.bandwidth_gbps
    folded = (
        f"{layout.dp} data-parallel replicas run the same schedule: 1 pipeline simulated, "
        f"{layout.dp - 1} folded (their collectives are priced over the dp group)",
        f"{layout.tp * layout.cp} tensor/context-parallel ranks per stage act as one "
        "(their TP collectives are priced inside each compute event; all of them load the NICs)",
        "co-located replicas' identical transfers are counted on the shared NICs"
        if layout.tp * layout.cp * layout.pp < dpn else "each node hosts ranks of one pipeline only",
    )
    return SimPlan(step, pricer, tuple(stages), tuple(stage_p2p), sends, blocking, nic_gbps, folded)
