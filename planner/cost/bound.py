"""A lower bound on the analytic step time (planner.cost.analytic) from compute seconds alone.

``fold`` books a step as ``m * T_s + bubble + dp_exposed + optimizer``: T_s the slowest stage's
micro-batch pass (compute, TP / expert / cp communication, sends, exposed ZeRO-3 and offload copies,
each >= 0; hidden compute is only moved between fields), the bubble ``max(0, fill_drain)`` and the
optimizer ``max_i(optimizer_i + offload_i)``. With C_i the compute seconds of stage i's ops (the
sum ``price_stage`` starts from, before the host floor raises it), T_i >= C_i, so

    step >= m * max C + bubble_lb + max_i optimizer_i,

bubble_lb = (sum C - max C) / v for 1F1B / GPipe (v = 1) and interleaved 1F1B (v = vpp): fill and
drain are the stages other than the slowest, sum_{i != s} T_i >= sum C - max C; 0 for ZB-H1.
Ring-exchange TP overlap reprices the GEMMs (planner.pricing.tp_overlap): no bound (0) there.
The search (planner.search.bounded) uses it to skip pricing candidates that cannot rank.
"""

from __future__ import annotations

from ..pricing import ComputePricer, compute_seconds, ring_compute_parts, shared_blocks
from ..specs import HardwareProfile
from ..work.context import RingAttention
from ..work.step import StepWork

#: relative slack for floating-point summation order (the bound sums in another order than the fold)
SLACK = 1e-9


def _pricer(hardware: HardwareProfile, precision: str) -> ComputePricer:
    store = shared_blocks.current()
    if store is None:
        return ComputePricer(hardware.device, precision)
    return shared_blocks.shared_part(store, hardware, ("compute", precision),
                                     lambda: ComputePricer(hardware.device, precision))


def ops_compute_seconds(compute: ComputePricer, ops: tuple) -> float:
    """Compute-stream seconds of an op list: its compute ops and ring-attention blocks, no communication."""
    total = 0.0
    for op in ops:
        t = compute_seconds(compute, op)
        if t is None:
            t = ring_compute_parts(compute, op)[2] if isinstance(op, RingAttention) else 0.0
        total += t
    return total


def step_time_lower_bound(step: StepWork, hardware: HardwareProfile) -> float:
    """Seconds that ``estimate(...).step_time_s`` of ``step`` on ``hardware`` cannot undercut (see
    the module docstring); 0 when no bound is known."""
    training = step.training
    if training.tp_comm_overlap and training.tp_overlap_style == "ring-exchange":
        return 0.0
    compute = _pricer(hardware, training.precision)
    store = shared_blocks.current()
    memo = store.setdefault("compute_ops", {}) if store is not None else {}
    if len(memo) > shared_blocks.MAX_ENTRIES:
        memo.clear()
    per_template: dict[int, tuple[float, float]] = {}
    cs, opts = [], []
    for s in step.stages:
        hit = per_template.get(id(s.template))
        if hit is None:
            c = 0.0
            for block, n in s.blocks:
                if n == 0:
                    continue
                for ops in (block.forward, block.backward_input, block.backward_weight, block.recompute):
                    if not ops:
                        continue
                    key = (id(ops), id(compute))
                    got = memo.get(key)
                    if got is None or got[0] is not ops:
                        got = memo[key] = (ops, ops_compute_seconds(compute, ops))  # keeps ops alive
                    c += got[1] * n
            hit = per_template[id(s.template)] = (c, compute.optimizer_time(s.optimizer_params))
        cs.append(hit[0])
        opts.append(hit[1])
    top = max(cs)
    layout = step.layout
    if layout.schedule == "zb-h1":
        bubble = 0.0
    else:
        bubble = max(0.0, sum(cs) - top) / (layout.vpp if layout.schedule == "interleaved-1f1b" else 1)
    return (step.micro_batches * top + bubble + max(opts)) * (1.0 - SLACK)
