"""Per-stage peak memory: which moment of the step holds the most bytes, what those bytes are, and
whether they fit the device. Bytes per GPU."""

from __future__ import annotations

from ..specs import HardwareProfile
from ..work.step import StageWork, StepWork
from .result import MemoryBreakdown, StageMemory, trusted, trusted_from, trusted_maker

GIB = 2**30


def peak_breakdown(s: StageWork, reserved: float) -> MemoryBreakdown:
    """The tensors that coexist at one GPU's peak: the largest of three moments.

    forward end: weights + optimizer state (+ gradients when they persist) + every bf16 weight copy
    autocast caches + activations in flight + the loss's forward temporaries; start of backward: the
    same with only the copies autograd saved and the backward transients (loss temporaries or the
    first recomputed layer; planner/work/memory.py); optimizer step: weights + gradients + optimizer
    state (16 B/param for fp32 AdamW) + buffers. ``reserved`` (runtime + allocator) is its own item."""
    return breakdown_at(s, peak_moment(s), reserved)


def peak_moment(s: StageWork) -> str:
    """Which of the three moments of ``peak_breakdown`` holds the most bytes."""
    return moments_of(s, [s.activation_bytes_per_microbatch * s.in_flight])[0]


def moments_of(s: StageWork, activations: list[float]) -> list[str]:
    """``peak_moment`` of ``s`` holding each of ``activations`` (bytes of activations in flight)."""
    grads_b = s.grads_bytes if s.grads_in_backward else 0.0
    head, buffers = s.weights_bytes + s.optimizer_bytes + grads_b, s.buffer_bytes  # static = head + act + buffers
    saved, working, cache, loss = s.weight_saved_bytes, s.working_bytes, s.weight_cache_bytes, s.forward_end_bytes
    step = s.weights_bytes + s.grads_bytes + s.optimizer_grad_copy_bytes + s.optimizer_bytes + s.buffer_bytes
    out = []
    for act in activations:
        static = head + act + buffers + s.grads_pool_bytes  # freed gradients still reserved in their stream's pool
        backward = static + saved + working + s.loss_cache_bytes  # the freed logits' block, reserved at the loss
        forward_end = static + cache + loss
        out.append("optimizer-step" if step > backward and step >= forward_end else
                   "forward-end" if forward_end > backward else "backward")
    return out


def breakdown_at(s: StageWork, moment: str, reserved: float) -> MemoryBreakdown:
    """The tensors held at ``moment`` (one of ``peak_moment``'s), bytes."""
    return trusted_from(MemoryBreakdown, _breakdown_fields(s, moment, reserved, s.activation_bytes_per_microbatch
                                                           * s.in_flight))


def _breakdown_fields(s: StageWork, moment: str, reserved: float, act: float) -> dict:
    """The fields of ``breakdown_at`` with ``act`` bytes of activations in flight, in declaration order.
    ``reserved`` gains the stage's communication-stream pools (FSDP2; planner.work.fsdp): the all-gather pool,
    and the reduce-scatter pool's freed gradients except at the optimizer step, where they are live; at the
    start of backward also the freed logits' block the loss cannot reuse (planner.work.kernels.loss_cache_bytes)."""
    grads_b = s.grads_bytes if s.grads_in_backward else 0.0
    reserved += s.all_gather_pool_bytes + (0.0 if moment == "optimizer-step" else s.grads_pool_bytes)
    if moment == "optimizer-step":
        return dict(params=s.weights_bytes, grads=s.grads_bytes + s.optimizer_grad_copy_bytes,
                    optimizer=s.optimizer_bytes, activations=0.0, buffers=s.buffer_bytes, reserved=reserved, weight_copies=0.0,
                    peak_at="optimizer-step")
    if moment == "forward-end":
        return dict(params=s.weights_bytes, grads=grads_b, optimizer=s.optimizer_bytes,
                    activations=act, buffers=s.buffer_bytes + s.forward_end_bytes, reserved=reserved,
                    weight_copies=s.weight_cache_bytes, peak_at="forward-end")
    return dict(params=s.weights_bytes, grads=grads_b, optimizer=s.optimizer_bytes,
                activations=act, buffers=s.buffer_bytes + s.working_bytes, reserved=reserved + s.loss_cache_bytes,
                weight_copies=s.weight_saved_bytes, peak_at="backward")


def reserved_bytes(hardware: HardwareProfile) -> float:
    """The device's runtime + allocator reserve, one item of every stage's peak, bytes."""
    return hardware.device.reserved_memory_gib * GIB


def stage_memory(stage: StageWork, hardware: HardwareProfile) -> StageMemory:
    """Peak bytes of one GPU of ``stage`` and whether it fits the device."""
    return stage_memories_of([stage], hardware)[0]


def stage_memories_of(stages, hardware: HardwareProfile) -> list[StageMemory]:
    """Per-stage peak memory (``peak_breakdown`` + the device's reserve) and whether each fits."""
    reserved = reserved_bytes(hardware)
    cap = hardware.device.hbm_capacity_gib * GIB
    out = []
    for s in stages:
        bd = peak_breakdown(s, reserved)
        peak = bd.total
        out.append(trusted(StageMemory, stage=s.index, layers=s.layers, in_flight_microbatches=round(s.in_flight),
                           peak_bytes=peak, breakdown=bd, capacity_bytes=cap, fits=peak <= cap,
                           overflow_bytes=peak - cap if peak > cap else 0.0))
    return out


def stage_memories(step: StepWork, hardware: HardwareProfile) -> list[StageMemory]:
    """Per-stage peak memory of ``step`` (the records of ``stage_memories_of(step.stages)``)."""
    return stage_memories_and_peak(step, hardware)[0]


def stage_memories_and_peak(step: StepWork, hardware: HardwareProfile) -> tuple[list[StageMemory], float, bool]:
    """(``stage_memories``, the largest stage peak in bytes, whether every stage fits), built run by run: a template's bytes are
    read once, and per stage only the activations in flight (so the moment and the peak) change.
    Stages holding the same activations, or none (the optimizer-step moment), share one breakdown."""
    reserved = reserved_bytes(hardware)
    cap = hardware.device.hbm_capacity_gib * GIB
    held = step.in_flight
    out: list[StageMemory] = []
    largest = -1.0
    make, make_stage = trusted_maker(MemoryBreakdown), trusted_maker(StageMemory)
    for t, count in step.runs:
        first = len(out)
        hs = held[first:first + count]
        apm, layers = t.activation_bytes_per_microbatch, t.layers
        acts = [apm * h for h in hs]
        moments = moments_of(t, acts)
        # per moment: (fields without activations, params + grads + optimizer, buffers, weight copies, the
        # record when the moment holds no activations: the optimizer step's, shared by the run's stages)
        protos = {}
        for moment in set(moments):
            fields = _breakdown_fields(t, moment, reserved, 0.0)
            base, buffers, copies = fields["params"] + fields["grads"] + fields["optimizer"], fields["buffers"], fields["weight_copies"]
            kept = fields["reserved"]  # the device's reserve and the stage's stream pools
            shared = (make(fields), base + 0.0 + buffers + copies + kept) if moment == "optimizer-step" else None
            protos[moment] = (fields, base, buffers, copies, kept, shared)
        stages = range(first, first + count)
        if len(protos) == 1 and shared is None:  # one moment, with activations: a record per stage
            peaks = [base + act + buffers + copies + kept for act in acts]  # MemoryBreakdown.total's order
            out += [make_stage({"stage": i, "layers": layers, "in_flight_microbatches": round(h), "peak_bytes": peak,
                                "breakdown": make({**fields, "activations": act}), "capacity_bytes": cap,
                                "fits": peak <= cap, "overflow_bytes": peak - cap if peak > cap else 0.0})
                    for i, h, act, peak in zip(stages, hs, acts, peaks)]
        else:
            bds, peaks = _shared_breakdowns(acts, moments, protos, make)
            out += [make_stage({"stage": i, "layers": layers, "in_flight_microbatches": round(h), "peak_bytes": peak,
                                "breakdown": bd, "capacity_bytes": cap, "fits": peak <= cap,
                                "overflow_bytes": peak - cap if peak > cap else 0.0})
                    for i, h, bd, peak in zip(stages, hs, bds, peaks)]
        largest = max(largest, max(peaks))
    return out, largest, largest <= cap


def _shared_breakdowns(acts: list[float], moments: list[str], protos: dict, make):
    """(breakdown, peak bytes) of each stage of a run holding ``acts`` at ``moments``; stages holding
    the same activations at the same moment as the stage before, or none, share its record."""
    bds, peaks = [], []
    last_act = last_moment = None
    for act, moment in zip(acts, moments):
        if act != last_act or moment != last_moment:
            if moment != last_moment:
                proto, base, buffers, copies, kept, shared = protos[moment]
                last_moment = moment
            if shared is None:
                bd, peak = make({**proto, "activations": act}), base + act + buffers + copies + kept
            else:
                bd, peak = shared
            last_act = act
        bds.append(bd)
        peaks.append(peak)
    return bds, peaks
