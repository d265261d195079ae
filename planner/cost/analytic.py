"""The analytic estimate: fold the step's work (planner.work) over its prices (planner.pricing)
into step time, throughput, FLOPs utilisation and per-stage memory."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby

from ..pricing import Pricer
from ..pricing.compute import DERIVED_ATTENTION_KERNELS, beside_slowdown, gemm_share
from ..pricing.hostlink import offload_time
from ..pricing.moe_overlap import synced_block
from ..pricing.tp_overlap import ring_exchange_time
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec, check_layout
from ..work.fsdp import keeps_unsharded
from ..work.offload import check_offload
from ..work.ops import MemoryOp
from ..work.step import StageWork, StepWork, build_step
from .a2a_overlap import a2a_overlap, paired_hidden
from .bottleneck_booking import hidden_compute, zero3_hidden_compute
from .breakdown import op_breakdown
from .mechanisms import mechanisms
from .peaks import stage_memories, stage_memories_and_peak, stage_memory  # noqa: F401 - re-exported (simulate)
from .result import Estimate, TimeBreakdown
from .schedule import StagePass, pipeline_time


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Seconds of one stage (one GPU) for one micro-batch, and its once-per-step work."""

    fwd_compute: float
    fwd_tp: float
    bwd_input_compute: float
    bwd_input_tp: float
    bwd_weight_compute: float
    recompute_compute: float
    recompute_tp: float
    p2p: float  # pipeline sends of one micro-batch (forward activation + backward gradient)
    zero3_exposed: float  # ZeRO-3/FSDP gathers and reduce-scatters not hidden under compute
    dp_step_comm: float  # per-step gradient reduction and parameter gathers, s
    optimizer: float  # optimizer step, s
    dp_step_gather: float = 0.0  # the parameter all-gather part of dp_step_comm (ZeRO-1/2), s
    zero3_beside: float = 0.0  # compute slowed by the ZeRO-3 traffic it overlaps (Pricer.comm_compute_slowdown), s
    zero3_hidden_compute: float = 0.0  # compute of passes whose ZeRO-3 communication outlasts it, s
    tp_hidden_compute: float = 0.0  # compute of passes whose overlapped TP communication outlasts it, s
    offload_exposed: float = 0.0  # host-link copies of one micro-batch not hidden by its compute, s
    offload_step: float = 0.0  # per-step offload: gradients out, CPU Adam, parameters back, s
    fwd_cp: float = 0.0  # exposed context-parallel exchange of the forward, s
    bwd_cp: float = 0.0  # ... of the backward (input-grad, weight-grad and recompute), s
    comm_slowdown: float = 0.0  # extra seconds per second of its backward beside a collective (Pricer.comm_compute_slowdown)
    comm_slowdown_fwd: float = 0.0  # ... of its forward

    @property
    def cp_comm(self) -> float:
        """Exposed context-parallel communication of one micro-batch, s."""
        return self.fwd_cp + self.bwd_cp

    @property
    def compute(self) -> float:
        """All compute of one micro-batch (with its slowdown beside ZeRO-3 traffic), s."""
        return (self.fwd_compute + self.bwd_input_compute + self.bwd_weight_compute + self.recompute_compute
                + self.zero3_beside)

    @property
    def tp_comm(self) -> float:
        """All tensor-parallel communication of one micro-batch, s."""
        return self.fwd_tp + self.bwd_input_tp + self.recompute_tp

    def as_pass(self, chunks: int) -> StagePass:
        """The micro-batch pass used by the schedule (sends split fwd/bwd; ``chunks`` virtual stages)."""
        half = self.p2p * chunks / 2
        return StagePass(
            forward=(self.fwd_compute + self.fwd_tp + self.fwd_cp + half
                     + (self.zero3_exposed + self.zero3_beside + self.offload_exposed) / 2),
            backward_input=(self.bwd_input_compute + self.bwd_input_tp + self.recompute_compute
                            + self.recompute_tp + self.bwd_cp + half
                            + (self.zero3_exposed + self.zero3_beside + self.offload_exposed) / 2),
            backward_weight=self.bwd_weight_compute,
        )


def price_stage(stage: StageWork, step: StepWork, pricer: Pricer, p2p: float | None = None) -> StageTimes:
    """Seconds of one stage: block times times repeat counts, plus its communication (``p2p``: one
    pipeline send, ``pricer.pipeline_send_time(step)``, when known)."""
    # per pass: [compute, TP comm (expert-axis comm included), host dispatch, cp comm, expert-axis comm,
    # single-stream GEMM seconds within compute]
    parts = {k: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0] for k in ("f", "bi", "bw", "r")}
    ring = step.training.tp_comm_overlap and step.training.tp_overlap_style == "ring-exchange"
    for block, n in stage.blocks:
        if n == 0:
            continue
        for key, ops in (("f", block.forward), ("bi", block.backward_input),
                         ("bw", block.backward_weight), ("r", block.recompute)):
            if ops:
                bt = pricer.block_time(ops)
                comp, comm = ring_exchange_time(ops, pricer) if ring else (bt.compute, bt.tp_comm)
                comp, host = synced_block(comp, comm, bt.cp_comm, bt.host, bt.syncs, pricer.host_dispatch_s)
                parts[key][0] += comp * n
                parts[key][1] += comm * n
                parts[key][2] += host * n
                parts[key][3] += bt.cp_comm * n
                parts[key][4] += bt.expert_comm * n
                parts[key][5] += bt.gemm * n
    # the single-stream GEMMs' share of the device's compute (before the host floor) sets the slowdown beside traffic
    fwd_dev = parts["f"][0]
    bwd_dev = parts["bi"][0] + parts["bw"][0] + parts["r"][0]
    slow_f = pricer.comm_compute_slowdown(gemm_share(parts["f"][5], fwd_dev))
    slow_b = pricer.comm_compute_slowdown(gemm_share(parts["bi"][5] + parts["bw"][5] + parts["r"][5], bwd_dev))
    for part in parts.values():  # host floor per pass: an eager CPU cannot dispatch faster than this
        part[0] = max(part[0], part[2] - part[1] - part[3])
    copy = fsdp_copy_time(stage, step, pricer)  # FSDP2 copy-out of gathers, on the compute stream
    parts["f"][0] += copy / 2
    parts["bi"][0] += copy / 2
    fwd_c = parts["f"][0]
    bwd_c = parts["bi"][0] + parts["bw"][0] + parts["r"][0]
    tp_hidden = 0.0
    if step.training.tp_comm_overlap and not ring:  # collectives hide under the GEMMs of the same pass
        # (not the expert-axis all-to-alls / etp collectives: they stay exposed)
        tp_hidden = sum(hidden_compute(c, t - e) for c, t, _host, _cp, e, _g in parts.values())  # booked as tp_comm
        for part in parts.values():
            part[1] = max(0.0, part[1] - part[4] - part[0]) + part[4]
    if step.training.moe_a2a_overlap and step.layout.ep > 1 and stage.layers:  # combined 1F1B (cost.a2a_overlap)
        a2a_overlap(parts, paired_hidden(stage.layer, pricer) * stage.layers, step.layout, step.micro_batches)
    zero3 = hidden = beside = 0.0
    if stage.per_microbatch_comm:
        gathers_fwd = sum(pricer.collective_time(c) for c in stage.per_microbatch_comm if c.phase == "fwd")
        bwd_comm = sum(pricer.collective_time(c) for c in stage.per_microbatch_comm if c.phase != "fwd")
        if pricer.zero3_serialized:  # the framework waits for the device before each gather, or no side stream
            zero3 = gathers_fwd + bwd_comm
        else:
            zero3 = max(0.0, gathers_fwd - fwd_c) + max(0.0, bwd_comm - bwd_c)  # prefetched under compute
            hidden = zero3_hidden_compute(fwd_c, gathers_fwd, bwd_c, bwd_comm, slow_f, slow_b)
            # the compute beside the gathers and reduce-scatters runs on the SMs they leave free, its persistent
            # GEMMs in two waves (planner.pricing.compute.overlap_slowdown)
            beside = beside_slowdown(fwd_c, gathers_fwd, slow_f) + beside_slowdown(bwd_c, bwd_comm, slow_b)
    per_step = [pricer.collective_time(c) for c in stage.per_step_comm]
    dp_step = sum(per_step)
    dp_gather = sum(t for c, t in zip(stage.per_step_comm, per_step) if c.kind == "all-gather")
    off = offload_time(stage.offload, fwd_c + bwd_c, pricer.hardware)
    return StageTimes(
        fwd_compute=fwd_c, fwd_tp=parts["f"][1],
        bwd_input_compute=parts["bi"][0], bwd_input_tp=parts["bi"][1] + parts["bw"][1],
        bwd_weight_compute=parts["bw"][0],
        recompute_compute=parts["r"][0], recompute_tp=parts["r"][1],
        p2p=2 * pricer.p2p_blocking_time(pricer.pipeline_send_time(step) if p2p is None else p2p, fwd_c, bwd_c),
        zero3_exposed=zero3, zero3_beside=beside, dp_step_comm=dp_step,
        optimizer=pricer.optimizer_time(stage.optimizer_params, stage.optimizer_pass_bytes,
                                         stage.optimizer_tensors, stage.optimizer_comm), dp_step_gather=dp_gather,
        zero3_hidden_compute=hidden, tp_hidden_compute=tp_hidden,
        offload_exposed=off.microbatch_exposed, offload_step=off.step,
        fwd_cp=parts["f"][3], bwd_cp=parts["bi"][3] + parts["bw"][3] + parts["r"][3],
        comm_slowdown=slow_b, comm_slowdown_fwd=slow_f,
    )


def fsdp_copy_time(stage: StageWork, step: StepWork, pricer: Pricer) -> float:
    """Seconds per micro-batch of copying ZeRO-3 / FSDP gathers into the unsharded parameters on the compute
    stream (planner.work.fsdp ``copy_out_bytes``; once-per-step copies spread over the micro-batches), at the
    copy bandwidth."""
    nbytes = stage.fsdp_copy_bytes_per_microbatch + stage.fsdp_copy_bytes_per_step / step.micro_batches
    return pricer.compute.memory_time(MemoryOp("fsdp.copy_out", nbytes, "fwd", "copy", 0)) if nbytes else 0.0


def price_stages(step: StepWork, pricer: Pricer) -> list[StageTimes]:
    """StageTimes of every stage; stages made from one template (same layer count, same embedding /
    head blocks, hence the same states and communication) are priced once and share one record."""
    cache: dict[int, StageTimes] = {}
    out: list[StageTimes] = []
    p2p = pricer.pipeline_send_time(step)  # one send, the same for every stage
    for template, count in step.runs:
        times = cache.get(id(template))
        if times is None:
            times = cache[id(template)] = price_stage(template, step, pricer, p2p)
        out += [times] * count
    return out


def runs_of(times: list[StageTimes]) -> list[tuple[StageTimes, int]]:
    """(record, consecutive stages sharing it) of ``times``, in stage order."""
    out = []
    for _, group in groupby(times, key=id):
        group = list(group)
        out.append((group[0], len(group)))
    return out


def exposed_dp_comm(runs: list[tuple[StageTimes, int]], step: StepWork) -> float:
    """Per-step data-parallel communication left on the critical path, s; ``runs`` as ``runs_of``.

    With overlap, a stage's gradient reduction hides under the backward of its last
    micro-batch and under the drain of the stages before it (stage i finishes its backward
    sum_{j<i} t_bwd_j before stage 0; under ZB-H1 the last pass is the weight-grad W and stage i
    ends sum_{j<i} (B_j - W_j) before stage 0); the parameter all-gather of ZeRO-1/2 is exposed unless
    ``overlap_param_gather`` hides it under the next step's first forward pass (as does FSDP's one gather per
    step when the weights stay unsharded across the step, planner.work.fsdp). An overlapped reduction slows
    the compute beside it by the stage's ``comm_slowdown`` (Pricer.comm_compute_slowdown) per second. Within a run of equal
    stages the exposed time is monotone in the slack, so only its first and last stages are evaluated
    (the slack is still summed stage by stage).
    """
    overlap = step.training.overlap_dp_comm
    overlap_gather = step.training.overlap_param_gather or keeps_unsharded(step.training, step.layout)
    zb = step.layout.schedule == "zb-h1"
    worst = 0.0
    slack = 0.0
    for t, count in runs:
        # the backward's wall time on the compute stream, its exposed TP collectives and cp exchange
        # included: the reduction's stream runs beside all of it (the simulator's window is the same)
        backward = (t.bwd_input_compute + t.bwd_weight_compute + t.recompute_compute + t.bwd_cp
                    + t.bwd_input_tp + t.recompute_tp)
        slack_step = backward
        if zb:  # stage i's last W ends i(B - W) before stage 0's (Qi et al. 2023, Fig. 3 top)
            backward = t.bwd_weight_compute
            slack_step = t.bwd_input_compute + t.recompute_compute - t.bwd_weight_compute
        gather = t.dp_step_gather
        gather_left = gather - (t.fwd_compute if overlap_gather else 0.0)  # under the next first forward
        gather_left = gather_left if gather_left > 0 else 0.0
        for k in (0, count - 1) if count > 1 else (0,):
            if k:  # the run's last stage: the slack of the stages before it
                for _ in range(count - 2):
                    slack += slack_step
            window = (backward + slack) if overlap else 0.0
            left = t.dp_step_comm - gather - window
            exposed = (left if left > 0 else 0.0) + gather_left
            if overlap:  # the stage's last backward beside the reduction runs on the SMs it leaves free
                exposed += min(t.dp_step_comm - gather, backward) * t.comm_slowdown
            if exposed > worst:
                worst = exposed
            slack += slack_step
    return worst


def fold(step: StepWork, times: list[StageTimes], hardware: HardwareProfile, gpus: int,
         peak_flops: float, engine: str = "analytic") -> Estimate:
    """Combine stage times into the step estimate."""
    layout = step.layout
    chunks = layout.vpp if layout.schedule == "interleaved-1f1b" else 1
    runs = runs_of(times)
    unique: dict[int, StagePass] = {}
    for t, _ in runs:
        if id(t) not in unique:
            unique[id(t)] = t.as_pass(chunks)
    pipe = pipeline_time([(unique[id(t)], k) for t, k in runs], step.micro_batches, layout.schedule, layout.vpp)
    slow = max(runs, key=lambda r: unique[id(r[0])].total)[0]  # the first of the slowest stages
    m = step.micro_batches
    dp_exposed = exposed_dp_comm(runs, step)
    optimizer = max(t.optimizer + t.offload_step for t, _ in runs)  # CPU Adam and its copies when offloaded
    hidden = slow.zero3_hidden_compute  # booked as communication: it ran under longer ZeRO-3 traffic
    tp_hidden = slow.tp_hidden_compute  # likewise under longer overlapped TP collectives
    beside = slow.zero3_beside  # compute slowed by the SMs the ZeRO-3 traffic holds: that traffic's cost
    breakdown = TimeBreakdown(
        compute=m * (slow.compute - hidden - tp_hidden - beside), tp_comm=m * (slow.tp_comm + tp_hidden),
        cp_comm=m * slow.cp_comm, pp_bubble=pipe.bubble,
        pp_comm=m * slow.p2p * chunks, dp_comm_exposed=m * (slow.zero3_exposed + hidden + beside) + dp_exposed,
        optimizer=optimizer, other=m * slow.offload_exposed,
    )
    step_time = breakdown.total
    memory, peak_bytes, fits = stage_memories_and_peak(step, hardware)
    model_flops = step.model_flops_per_step
    hw_flops = step.hardware_flops_per_step
    return Estimate(
        engine=engine, model=step.model.name, hardware=hardware.name, gpus=gpus, layout=layout,
        training=step.training, micro_batches=m, step_time_s=step_time,
        tokens_per_s=step.training.tokens_per_step / step_time,
        model_tflops_per_gpu=model_flops / step_time / gpus / 1e12,
        mfu=model_flops / step_time / gpus / peak_flops,
        hardware_tflops_per_gpu=hw_flops / step_time / gpus / 1e12,
        hfu=hw_flops / step_time / gpus / peak_flops, peak_tflops_per_gpu=peak_flops / 1e12,
        bubble_fraction=pipe.bubble / step_time, fits=fits, memory=memory,
        peak_memory_bytes=peak_bytes, time=breakdown, notes=list(step.notes),
    )


def estimate(model: ModelSpec, hardware: HardwareProfile, training: TrainingSpec, layout: Layout,
             gpus: int | None = None, breakdown: bool = False, step: StepWork | None = None) -> Estimate:
    """Analytic estimate of one training step of ``model`` on ``hardware`` under ``layout``.

    ``gpus`` defaults to the layout's tp * pp * dp * cp; a mismatch raises SpecError. ``breakdown``
    adds the per-kernel-class breakdown (planner.cost.breakdown) as ``Estimate.ops``. ``step``: the
    StepWork ``build_step(model, training, layout)`` already returned (the search's, for a memory survivor), so
    it is not built twice; it must be of exactly this model, training and layout."""
    gpus = layout.gpus if gpus is None else gpus
    check_layout(layout, model, training, gpus)
    check_offload(training, layout)
    if step is None or not (_same(step.layout, layout) and _same(step.training, training) and _same(step.model, model)):
        step = build_step(model, training, layout)
    pricer = Pricer(hardware, training, layout, gpus)
    times = price_stages(step, pricer)
    est = fold(step, times, hardware, gpus, pricer.compute.peak_flops)
    if breakdown:
        ops = op_breakdown(step, pricer)
        notes = recipe_notes(step.training, ops, pricer.attention_kernel)
        i, slow = max(enumerate(step.stages), key=lambda s: s[1].layers)
        mech = mechanisms(step, pricer, fsdp_copy_time(slow, step, pricer), times[i].comm_slowdown)
        est = est.model_copy(update={"ops": ops, "notes": list(est.notes) + notes, "mechanisms": mech})
    return est


def _same(a, b) -> bool:
    return a is b or a == b


def recipe_notes(training: TrainingSpec, ops, attention_kernel: str | None = None) -> list[str]:
    """What the recipe ran, in numbers: the share of device time in memory-bound kernels and the
    largest classes, the host dispatch floor, and the overlaps it turned on."""
    r = training.recipe_spec
    device = sum(c.seconds for c in ops.classes if not c.kind.startswith("comm:"))
    memory = [c for c in ops.classes if c.bytes > 0]
    mem_s = sum(c.seconds for c in memory)
    top = ", ".join(f"{c.kind} {c.seconds * 1e3:.0f} ms" for c in memory[:3])
    kernels = sum(c.kernels for c in ops.classes)
    style = ("eager autocast (fp32 weights cast every forward, fp32 norms)" if r.autocast else
             "fused norms/activations" if r.norm_kernel == "fused" and r.bias_activation_fused else
             "eager PyTorch norms/activations")
    overlaps = [n for n, on in (("TP-comm overlap", training.tp_comm_overlap),
                                ("overlapped grad reduce", training.overlap_dp_comm),
                                ("overlapped param gather", training.overlap_param_gather),
                                ("distributed optimizer", training.distributed_optimizer)) if on]
    out = [f"recipe {r.name} ({style}): {mem_s / device:.0%} of GPU time in memory-bound kernels"
           + (f" ({top})" if top else "") + f"; {ops.layer_bytes_per_token / 1e3:.0f} kB moved per token per layer"]
    out.append(f"recipe {r.name}: {kernels:,} kernels per step, host dispatch {ops.host_seconds:.3g} s at "
               f"{r.host_dispatch_us:g} us/kernel" + (f"; {', '.join(overlaps)}" if overlaps else ""))
    if attention_kernel is not None:
        why = "" if training.attention_kernel is not None else f" (recipe {r.name}'s attention path)"
        derived = DERIVED_ATTENTION_KERNELS.get(attention_kernel)
        how = (f"from its {derived.base} table, forward + backward x {derived.speed:g}: {derived.source}" if derived
               else "device.attention_kernel_tables")
        out.append(f"attention priced with the profile's {attention_kernel} kernel table{why} ({how})")
    return out
