"""Memory of each stage over the step: the analytic items (states, buffers, working memory,
reserved) held all step, plus the activations of the micro-batches in flight as the schedule
actually runs them. Bytes per GPU; times in seconds."""

from __future__ import annotations

from dataclasses import dataclass

from planner.cost.result import MemoryBreakdown, StageMemory

from .engine import StageLog
from .entities import StagePlan


@dataclass(frozen=True)
class MemoryTimeline:
    """Bytes held by one GPU of a stage: (time s, bytes) after each change."""

    stage: int
    points: tuple[tuple[float, float], ...]
    peak_bytes: float
    static_bytes: float


def stage_timeline(plan: StagePlan, log: StageLog) -> MemoryTimeline:
    """Static bytes plus the activation curve the engine recorded (no curve after a coarse replay,
    which knows the peak from the stage's op order)."""
    pts = ((0.0, plan.static_bytes),) + tuple((t, plan.static_bytes + a) for t, a in log.memory)
    peak = max(max(b for _, b in pts), plan.static_bytes + log.peak_activation_bytes)
    return MemoryTimeline(plan.index, pts, peak, plan.static_bytes)


def observed_stage_memory(plan: StagePlan, log: StageLog, analytic: StageMemory) -> StageMemory:
    """The analytic StageMemory with the activations the simulation actually held at its peak."""
    act_peak = log.peak_activation_bytes
    bd = analytic.breakdown
    breakdown = MemoryBreakdown(params=bd.params, grads=bd.grads, optimizer=bd.optimizer,
                                activations=act_peak, buffers=bd.buffers, reserved=bd.reserved)
    peak = breakdown.total
    per_mb = plan.activation_bytes_per_microbatch
    return StageMemory(
        stage=analytic.stage, layers=analytic.layers,
        in_flight_microbatches=round(act_peak / per_mb) if per_mb else 0,
        peak_bytes=peak, breakdown=breakdown, capacity_bytes=analytic.capacity_bytes,
        fits=peak <= analytic.capacity_bytes, overflow_bytes=max(0.0, peak - analytic.capacity_bytes),
    )
