"""What the combined 1F1B schedule (Megatron-Core ``--overlap-moe-expert-parallel-comm``) hides of a MoE
layer's all-to-alls: the layer's ops cut into the parts its schedule plan runs on the compute and the
communication stream, priced by ``planner.pricing``, and folded by
``planner.pricing.moe_overlap.paired_layer_time``. Seconds; no formula of its own."""

from __future__ import annotations

from ..pricing import Pricer
from ..pricing.compute import gemm_share
from ..pricing.moe_overlap import overlap_fraction, paired_layer_time
from ..specs import Layout
from ..work.ops import Collective
from ..work.stage import OpSet

#: the cut of each layer op set, by the identity of its forward tuple (the op set is kept alive with it)
_SEGMENTS: dict[int, tuple] = {}


def _cut(fwd: tuple, bwd: tuple, wgrad: tuple, recompute: tuple) -> tuple[tuple, ...]:
    """The ten parts of one MoE layer (``paired_layer_time``'s arguments, weight gradients and recompute joined
    to their backward part): the forward cut at the dispatch and combine all-to-alls (the ops after the combine,
    un-permutation and residual, run before the next layer's attention on the compute stream, so they join the
    pre-dispatch part), the backward likewise; the expert (``experts.*``, ``shared.*``) weight gradients go with
    the expert backward (``mlp_bwd_dw``), the others with the pre-dispatch backward."""
    def split(ops: tuple, dispatch: str, combine: str) -> tuple[tuple, tuple, tuple, tuple]:
        names = [op.name for op in ops]
        i, j = names.index(dispatch), names.index(combine)
        lo, hi = min(i, j), max(i, j)
        comm_lo = tuple(op for op in ops[lo:lo + 1])
        comm_hi = tuple(op for op in ops[hi:hi + 1])
        middle = ops[lo + 1:hi]
        inner = tuple(op for op in middle if not (isinstance(op, Collective) and op.axis == "etp"))
        etp = tuple(op for op in middle if isinstance(op, Collective) and op.axis == "etp")
        outer = ops[:lo] + ops[hi + 1:]
        return outer, comm_lo + etp, inner, comm_hi

    p_f, d_f, m_f, c_f = split(fwd, "moe.dispatch", "moe.combine")
    p_b, c_b, m_b, d_b = split(bwd, "moe.dispatch.bwd", "moe.combine.bwd")
    expert_w = tuple(op for op in wgrad if op.name.split(".")[0] in ("experts", "shared"))
    other_w = tuple(op for op in wgrad if op.name.split(".")[0] not in ("experts", "shared"))
    return p_f, d_f, m_f, c_f, p_b + other_w + recompute, d_b, m_b + expert_w, c_b


def paired_hidden(layer: OpSet, pricer: Pricer) -> float:
    """Seconds one MoE layer's forward / backward pair saves under the combined 1F1B plan over running its parts
    one after another (0 for a layer without a dispatch all-to-all)."""
    names = {op.name for op in layer.forward}
    if "moe.dispatch" not in names or "moe.combine" not in names:
        return 0.0
    hit = _SEGMENTS.get(id(layer.forward))
    if hit is None or hit[0] is not layer:
        if len(_SEGMENTS) > 256:
            _SEGMENTS.clear()
        hit = _SEGMENTS[id(layer.forward)] = (layer, _cut(layer.forward, layer.backward_input, layer.backward_weight,
                                                          layer.recompute))
    blocks = [pricer.block_time(seg) if seg else None for seg in hit[1]]
    times = [b.total if b else 0.0 for b in blocks]
    slow = [pricer.expert_comm_slowdown(gemm_share(b.gemm, b.compute)) if b else 0.0
            for b in (blocks[0], blocks[2], blocks[4], blocks[6])]  # p_f, m_f, p_b, m_b
    return sum(times) - paired_layer_time(*times, slowdowns=tuple(slow))


def a2a_overlap(parts: dict[str, list[float]], hidden: float, lay: Layout, micro_batches: int) -> None:
    """Take ``hidden`` seconds (one micro-batch's ``paired_hidden`` times its MoE layers: the time saved, the
    compute slowed by the SMs the hidden kernels take already netted) off the expert communication of ``parts``
    (per pass [compute, comm, host, cp, expert comm, ...], as planner.cost.analytic.price_stage and the
    simulator keep them), on the share of passes the schedule pairs (``overlap_fraction``), split between the
    forward and backward passes by their expert communication."""
    frac = overlap_fraction(micro_batches, lay.pp, lay.vpp if lay.schedule == "interleaved-1f1b" else 1)
    f, bi, r = parts["f"], parts["bi"], parts["r"]
    total = f[4] + bi[4] + r[4]
    hidden = min(hidden * frac, total)
    if total <= 0 or hidden <= 0:
        return
    for part in (f, bi, r):
        take = hidden * part[4] / total
        part[1] -= take
        part[4] -= take


__all__ = ["a2a_overlap", "paired_hidden"]
