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
The search (planner.search.bounded) uses it to skip pricing candidates that cannot rank; for those
it cannot skip, ``price_stages_bound`` prices the stages and bounds the step by what they imply
before the Estimate (``fold``: stage memory records, pydantic results) is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pricing import Pricer, compute_part, shared_blocks, shared_compute
from ..pricing.compute import attention_kernel_for
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec, check_layout
from ..work.offload import check_offload
from ..work.step import StepWork, build_step
from .analytic import StageTimes, exposed_dp_comm, fold, price_stages, runs_of
from .result import Estimate
from .schedule import pipeline_time

#: relative slack for floating-point summation order (the bound sums in another order than the fold)
SLACK = 1e-9


def step_time_lower_bound(step: StepWork, hardware: HardwareProfile) -> float:
    """Seconds that ``estimate(...).step_time_s`` of ``step`` on ``hardware`` cannot undercut (see
    the module docstring); 0 when no bound is known."""
    training = step.training
    if training.tp_comm_overlap and training.tp_overlap_style == "ring-exchange":
        return 0.0
    store = shared_blocks.current()
    compute = shared_compute(hardware, training.precision, attention_kernel_for(hardware.device, training), store)
    memo = store.setdefault("template_compute", {}) if store is not None else {}  # templates recur (work.step)
    if len(memo) > shared_blocks.MAX_ENTRIES:
        memo.clear()
    cs, opts = [], []
    seen: dict[int, tuple] = {}
    for t, count in step.runs:
        hit = seen.get(id(t))
        if hit is None:
            hit = seen[id(t)] = memo.get((id(t), id(compute)))
        if hit is None or hit[0] is not t:
            c = 0.0
            for block, n in t.blocks:
                if n == 0:
                    continue
                for ops in (block.forward, block.backward_input, block.backward_weight, block.recompute):
                    if ops:
                        c += compute_part(compute, ops).compute * n  # kept per op list inside a search
            opt = compute.optimizer_time(t.optimizer_params) + compute.optimizer_stream_time(t.optimizer_pass_bytes)
            hit = memo[(id(t), id(compute))] = seen[id(t)] = (t, c, opt)
        cs += [hit[1]] * count
        opts.append(hit[2])
    top = max(cs)
    layout = step.layout
    if layout.schedule == "zb-h1":
        bubble = 0.0
    else:
        bubble = max(0.0, sum(cs) - top) / (layout.vpp if layout.schedule == "interleaved-1f1b" else 1)
    return (step.micro_batches * top + bubble + max(opts)) * (1.0 - SLACK)


@dataclass
class StagePriced:
    """The first half of ``planner.cost.analytic.estimate`` (checks, Pricer, ``price_stages``) and the
    step time it implies, ``bound_s``: ``fold`` books ``m * T_s + bubble + dp_exposed + optimizer``
    (its fields sum to it), which is ``pipeline_time``'s steady + bubble plus the exposed data-parallel
    communication and the optimizer, the same numbers summed in another order (times ``1 - SLACK``)."""

    step: StepWork
    pricer: Pricer
    times: list[StageTimes]
    gpus: int
    bound_s: float

    def estimate(self, hardware: HardwareProfile) -> Estimate:
        """The Estimate ``estimate(model, hardware, training, layout, gpus, step=step)`` returns."""
        return fold(self.step, self.times, hardware, self.gpus, self.pricer.compute.peak_flops)


def price_stages_bound(model: ModelSpec, hardware: HardwareProfile, training: TrainingSpec, layout: Layout,
                       gpus: int, step: StepWork | None = None) -> StagePriced:
    """``StagePriced`` of a candidate: what ``estimate`` does before ``fold``, in its order (``step``:
    the StepWork of exactly this model, training and layout, or None to build it)."""
    check_layout(layout, model, training, gpus)
    check_offload(training, layout)
    if step is None:
        step = build_step(model, training, layout)
    pricer = Pricer(hardware, training, layout, gpus)
    times = price_stages(step, pricer)
    chunks = layout.vpp if layout.schedule == "interleaved-1f1b" else 1
    runs = runs_of(times)
    pipe = pipeline_time([(t.as_pass(chunks), k) for t, k in runs], step.micro_batches, layout.schedule, layout.vpp)
    total = (pipe.steady + pipe.bubble + exposed_dp_comm(runs, step)
             + max(t.optimizer + t.offload_step for t, _ in runs))
    return StagePriced(step, pricer, times, gpus, total * (1.0 - SLACK))
