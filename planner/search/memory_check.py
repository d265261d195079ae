"""The memory check of one search candidate: the peak bytes per GPU of its step's stage records
(planner.work.step_bytes: no op lists) against the usable HBM."""

from __future__ import annotations

from dataclasses import dataclass

from ..cost.peaks import peak_breakdown, reserved_bytes
from ..specs import HardwareProfile, ModelSpec
from ..work.step_bytes import step_bytes
from .space import Candidate

GIB = 2**30


@dataclass(frozen=True, slots=True)
class MemoryCheck:
    """Peak bytes per GPU of a candidate against the usable capacity."""

    candidate: Candidate
    peak_bytes: float
    usable_bytes: float
    optimizer_bytes: float  # optimizer state held at the peak stage (what offload would free)
    breakdown: object = None  # MemoryBreakdown of the peak stage (bounds what offload can free)

    @property
    def fits(self) -> bool:
        """Peak within usable capacity."""
        return self.peak_bytes <= self.usable_bytes

    @property
    def shortfall_bytes(self) -> float:
        """Bytes over the usable capacity (0 when it fits)."""
        return max(0.0, self.peak_bytes - self.usable_bytes)


def usable_bytes(hardware: HardwareProfile, headroom: float) -> float:
    """HBM capacity minus the headroom fraction, bytes."""
    return hardware.device.hbm_capacity_gib * GIB * (1.0 - headroom)


def check_memory(model: ModelSpec, hardware: HardwareProfile, cand: Candidate, usable: float) -> MemoryCheck:
    """Peak memory of ``cand`` (no pricing, no op lists: planner.work.step_bytes, the records
    build_step's stages hold); one representative stage per group of identical stages."""
    step = step_bytes(model, cand.training, cand.layout)
    # per run of stages placed from one record, its first stage holding the most micro-batches; per
    # record (one per kind of stage: layers, embedding / head) the first of those holding the most
    worst: dict[int, tuple[int, float, object]] = {}
    held, i = step.in_flight, 0
    for t, count in step.runs:
        j = max(range(i, i + count), key=held.__getitem__)
        key = id(t)
        if key not in worst or held[j] > worst[key][1]:
            worst[key] = (j, held[j], t)
        i += count
    peak, opt, bd = -1.0, 0.0, None
    reserved = reserved_bytes(hardware)
    for j, h, t in worst.values():
        stage_bd = peak_breakdown(t.at(j, h), reserved)  # what stage_memory reports, without its record
        if stage_bd.total > peak:
            peak, opt, bd = stage_bd.total, stage_bd.optimizer, stage_bd
    return MemoryCheck(cand, peak, usable, opt, bd)
