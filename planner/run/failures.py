"""One stage of a run under failures: its checkpoint, restart cost, optimal interval and goodput.

Glue only: checkpoint bytes come from ``planner.work.checkpoint``, their seconds from
``planner.pricing.checkpoint``, the wall time and the Young/Daly interval from
``planner.pricing.reliability``, the rates and restart defaults from ``planner.run.fleets``.
The restart cost R = detection + rescheduling + checkpoint load + warm-up steps x step time; a
planned interruption costs the same without detection (and one checkpoint, taken before it).
"""

from __future__ import annotations

import math

from pydantic import Field

from ..cost.result import Estimate, Result
from ..pricing.checkpoint import checkpoint_times
from ..pricing.reliability import Reliability, run_time
from ..specs import HardwareProfile, ModelSpec
from ..specs.run import CheckpointSpec, FailureSpec
from ..work.checkpoint import checkpoint_bytes
from .fleets import DEFAULT_DETECT_S, DEFAULT_RESCHEDULE_S, fleet_rate


class StageReliability(Result):
    """Checkpoints, failures and goodput of one stage (seconds unless named otherwise)."""

    mode: str = Field(description="checkpoint mode: sync, async or none")
    checkpoint_bytes: float = Field(description="one checkpoint: weights + master + optimizer moments, bytes")
    held_bytes_per_rank: float = Field(description="states one rank copies to host memory, bytes")
    stage_s: float = Field(description="HBM -> host copy of one checkpoint")
    write_s: float = Field(description="write of one checkpoint to storage")
    load_s: float = Field(description="read of one checkpoint at a restart")
    write_bound: str = Field(description="per-node or aggregate: which storage rate set the write")
    blocked_s: float = Field(description="what training waits per checkpoint")
    interval_s: float = Field(description="training seconds between checkpoints used")
    optimal_interval_s: float = Field(description="the interval minimising the wall time (Daly 2006)")
    young_interval_s: float = Field(description="Young 1974's first-order interval, sqrt(2 delta M)")
    failure_rate_per_gpu_hour: float = Field(description="unexpected interruptions per GPU-hour")
    planned_rate_per_gpu_hour: float = Field(description="planned interruptions per GPU-hour")
    mtbf_h: float = Field(description="the job's mean time between unexpected interruptions, h")
    detect_s: float = Field(description="failure to detection")
    reschedule_s: float = Field(description="rescheduling and start-up before the load")
    warmup_s: float = Field(description="warm-up steps after a restart")
    restart_s: float = Field(description="R = detect + reschedule + load + warm-up")
    lost_work_per_failure_s: float = Field(description="work redone after a failure: interval / 2 (+ async write)")
    useful_s: float = Field(description="failure-free training time: steps x step time")
    wall_s: float = Field(description="expected wall time with failures and checkpoints")
    checkpoint_stall_s: float = Field(description="time training waits for checkpoints")
    failure_loss_s: float = Field(description="time lost to unexpected interruptions (restarts and redone work)")
    planned_loss_s: float = Field(description="time lost to planned interruptions")
    failures: float = Field(description="expected unexpected interruptions")
    planned: float = Field(description="expected planned interruptions")
    goodput: float = Field(description="useful / wall time (effective training time)")
    notes: list[str] = Field(description="where each default came from")


def stage_reliability(est: Estimate, model: ModelSpec, hardware: HardwareProfile, failures: FailureSpec,
                      checkpoint: CheckpointSpec, useful_s: float) -> StageReliability:
    """The stage of ``est`` trained for ``useful_s`` failure-free seconds, under ``failures`` and ``checkpoint``."""
    notes = []
    rate, src = fleet_rate(failures.rate_per_gpu_hour, "failures.rate_per_gpu_hour")
    planned_rate, psrc = fleet_rate(failures.planned_rate_per_gpu_hour, "failures.planned_rate_per_gpu_hour",
                                    planned=True)
    if psrc == src:
        notes.append(f"interruptions per GPU-hour: {rate:.3g} unexpected, {planned_rate:.3g} planned ({src})")
    else:
        notes.append(f"interruptions per GPU-hour: {rate:.3g} unexpected ({src}), {planned_rate:.3g} planned ({psrc})")
    detect = DEFAULT_DETECT_S if failures.detect_s is None else failures.detect_s
    resched = DEFAULT_RESCHEDULE_S if failures.reschedule_s is None else failures.reschedule_s
    if failures.detect_s is None:
        notes.append(f"detection {detect:.0f} s: torchrun sees a crash in 0.1 s, the NCCL watchdog a hang in 600 s; "
                     "7 of Llama 3's 419 interruptions were watchdog timeouts (Table 5)")
    if failures.reschedule_s is None:
        notes.append(f"rescheduling and start-up {resched:.0f} s (inferred: Megatron fault tolerance's setup "
                     "timeout; Meta publishes no restart time)")
    ck = checkpoint_bytes(model, est.training, est.layout, est.gpus, hardware.node.devices_per_node)
    if checkpoint.mode == "none":
        stage = write = load = blocked = lag = 0.0
        bound = "none"
    else:
        t = checkpoint_times(ck, hardware, checkpoint.mode)
        stage, write, load, blocked, bound = t.stage_s, t.write_s, t.load_s, t.blocked_s, t.write_bound
        lag = t.durable_after_s - t.blocked_s
        if hardware.storage.aggregate_write_gbps is None:
            notes.append(f"{hardware.name}'s storage tier states no aggregate rate: checkpoint writes scale with the "
                         "node count (a shared file system caps them; set storage.aggregate_write_gbps)")
    warm = failures.warmup_steps * est.step_time_s
    restart = detect + resched + load + warm
    job_rate = rate * est.gpus / 3600.0  # per second
    rel = Reliability(mtbf_s=1.0 / job_rate if job_rate > 0 else math.inf, delta_s=blocked, restart_s=restart,
                      durability_lag_s=lag,
                      planned_every_s=3600.0 / (planned_rate * est.gpus) if planned_rate > 0 else math.inf,
                      planned_restart_s=resched + load + warm)
    interval = checkpoint.interval_s
    if checkpoint.mode == "none":
        interval = max(useful_s, 1e-9)  # a failure restarts the stage from its beginning
    rt = run_time(useful_s, rel, interval)
    return StageReliability(
        mode=checkpoint.mode, checkpoint_bytes=ck.total_bytes, held_bytes_per_rank=ck.held_bytes_per_rank,
        stage_s=stage, write_s=write, load_s=load, write_bound=bound, blocked_s=blocked, interval_s=rt.interval_s,
        optimal_interval_s=rt.optimal_interval_s, young_interval_s=rt.young_interval_s,
        failure_rate_per_gpu_hour=rate, planned_rate_per_gpu_hour=planned_rate, mtbf_h=rel.mtbf_s / 3600.0,
        detect_s=detect, reschedule_s=resched, warmup_s=warm, restart_s=restart,
        lost_work_per_failure_s=rt.lost_work_per_failure_s, useful_s=useful_s, wall_s=rt.wall_s,
        checkpoint_stall_s=rt.checkpoint_s, failure_loss_s=rt.failures_s, planned_loss_s=rt.planned_s,
        failures=rt.failures, planned=rt.planned, goodput=rt.goodput, notes=notes)
