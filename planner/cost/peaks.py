"""Per-stage peak memory: which moment of the step holds the most bytes, what those bytes are, and
whether they fit the device. Bytes per GPU."""

from __future__ import annotations

from ..specs import HardwareProfile
from ..work.step import StageWork, StepWork
from .result import MemoryBreakdown, StageMemory, trusted, trusted_from

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
    return _moment(s, s.grads_bytes if s.grads_in_backward else 0.0, s.activation_bytes_per_microbatch * s.in_flight)


def _moment(s: StageWork, grads_b: float, act: float) -> str:
    """``peak_moment`` of ``s`` holding ``act`` bytes of activations (``grads_b``: gradients held in backward)."""
    static = s.weights_bytes + s.optimizer_bytes + grads_b + act + s.buffer_bytes
    backward = static + s.weight_saved_bytes + s.working_bytes
    forward_end = static + s.weight_cache_bytes + s.forward_end_bytes
    step = s.weights_bytes + s.grads_bytes + s.optimizer_bytes + s.buffer_bytes
    if step > backward and step >= forward_end:
        return "optimizer-step"
    return "forward-end" if forward_end > backward else "backward"


def breakdown_at(s: StageWork, moment: str, reserved: float) -> MemoryBreakdown:
    """The tensors held at ``moment`` (one of ``peak_moment``'s), bytes."""
    return trusted_from(MemoryBreakdown, _breakdown_fields(s, moment, reserved, s.activation_bytes_per_microbatch
                                                           * s.in_flight))


def _breakdown_fields(s: StageWork, moment: str, reserved: float, act: float) -> dict:
    """The fields of ``breakdown_at`` with ``act`` bytes of activations in flight, in declaration order."""
    grads_b = s.grads_bytes if s.grads_in_backward else 0.0
    if moment == "optimizer-step":
        return dict(params=s.weights_bytes, grads=s.grads_bytes, optimizer=s.optimizer_bytes,
                    activations=0.0, buffers=s.buffer_bytes, reserved=reserved, weight_copies=0.0,
                    peak_at="optimizer-step")
    if moment == "forward-end":
        return dict(params=s.weights_bytes, grads=grads_b, optimizer=s.optimizer_bytes,
                    activations=act, buffers=s.buffer_bytes + s.forward_end_bytes, reserved=reserved,
                    weight_copies=s.weight_cache_bytes, peak_at="forward-end")
    return dict(params=s.weights_bytes, grads=grads_b, optimizer=s.optimizer_bytes,
                activations=act, buffers=s.buffer_bytes + s.working_bytes, reserved=reserved,
                weight_copies=s.weight_saved_bytes, peak_at="backward")


def stage_memory(stage: StageWork, hardware: HardwareProfile) -> StageMemory:
    """Peak bytes of one GPU of ``stage`` and whether it fits the device."""
    return stage_memories_of([stage], hardware)[0]


def stage_memories_of(stages, hardware: HardwareProfile) -> list[StageMemory]:
    """Per-stage peak memory (``peak_breakdown`` + the device's reserve) and whether each fits."""
    reserved = hardware.device.reserved_memory_gib * GIB
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
    """Per-stage peak memory of ``step``, the same records as ``stage_memories_of(step.stages)``
    built run by run: a template's bytes are read once, and per stage only the activations in flight
    (and so the moment and the peak) change. Stages at the optimizer-step moment share one breakdown."""
    reserved = hardware.device.reserved_memory_gib * GIB
    cap = hardware.device.hbm_capacity_gib * GIB
    held = step.in_flight
    out: list[StageMemory] = []
    for t, count in step.runs:
        apm, layers = t.activation_bytes_per_microbatch, t.layers
        grads_b = t.grads_bytes if t.grads_in_backward else 0.0
        # per moment: (fields without activations, params + grads + optimizer, buffers, weight copies)
        protos: dict[str, tuple[dict, float, float, float]] = {}
        last: tuple | None = None  # (in flight, breakdown, peak) of the stage before
        opt: tuple | None = None  # (breakdown, peak) at the optimizer-step moment
        for i in range(len(out), len(out) + count):
            h = held[i]
            if last is not None and last[0] == h:  # same activations: the same record (zb-h1, gpipe)
                bd, peak = last[1], last[2]
            else:
                act = apm * h
                moment = _moment(t, grads_b, act)
                proto = protos.get(moment)
                if proto is None:
                    fields = _breakdown_fields(t, moment, reserved, 0.0)
                    proto = protos[moment] = (fields, fields["params"] + fields["grads"] + fields["optimizer"],
                                              fields["buffers"], fields["weight_copies"])
                fields, base, buffers, copies = proto
                if moment == "optimizer-step":  # no activations held: one record for the run's stages
                    if opt is None:
                        opt = (trusted_from(MemoryBreakdown, fields), base + 0.0 + buffers + copies + reserved)
                    bd, peak = opt
                else:
                    fields = fields.copy()
                    fields["activations"] = act
                    bd = trusted_from(MemoryBreakdown, fields)
                    peak = base + act + buffers + copies + reserved  # MemoryBreakdown.total, summed in its order
                last = (h, bd, peak)
            out.append(trusted_from(StageMemory, {
                "stage": i, "layers": layers, "in_flight_microbatches": round(h), "peak_bytes": peak,
                "breakdown": bd, "capacity_bytes": cap, "fits": peak <= cap,
                "overflow_bytes": peak - cap if peak > cap else 0.0}))
    return out
