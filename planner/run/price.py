"""The days, GPU-hours, energy and cost of priced stages (``planner.run.stages``): each stage's budget
(``planner.cost.budget``) and checkpoints and failures (``planner.run.failures``), summed over the
stages.

The only arithmetic here is bookkeeping: a stage's GPU-hours are its GPUs times its expected wall
time, and the run's figures are sums over stages (goodput = useful / wall time of the sums).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..cost.budget import SECONDS_PER_DAY, cost_usd, energy_mwh, run_budget
from ..errors import SpecError
from ..specs import HardwareProfile, ModelSpec, StorageSpec
from ..specs.run import CheckpointSpec, FailureSpec, RunPlanSpec
from .failures import stage_reliability
from .result import RunTotals, StageRow
from .stages import PricedStage

GIB = 2.0**30


def with_storage(hardware: HardwareProfile, plan: RunPlanSpec) -> HardwareProfile:
    """``hardware`` with the plan's storage fields over the profile's storage tier."""
    if plan.storage is None:
        return hardware
    over = {k: v for k, v in plan.storage.model_dump().items() if v is not None}
    base = hardware.storage.model_dump() if hardware.storage is not None else {}
    merged = {**base, **over}
    missing = [k for k in ("kind", "node_write_gbps", "node_read_gbps") if k not in merged]
    if missing:
        raise SpecError(f"{hardware.name} has no storage tier; the plan's storage must give {', '.join(missing)}",
                        field="storage")
    return hardware.model_copy(update={"storage": StorageSpec(**merged)})


def stage_rows(plan: RunPlanSpec, model: ModelSpec, hardware: HardwareProfile, priced: Sequence[PricedStage], *,
               failures: FailureSpec | None = None, checkpoint: CheckpointSpec | None = None,
               step_scale: float = 1.0) -> tuple[list[StageRow], list[str]]:
    """The priced stages with their days, GPU-hours and failures (``step_scale`` scales every step time:
    the step-time lever); returns (rows, the budget's assumption notes)."""
    failures = failures or plan.failures
    checkpoint = checkpoint or plan.checkpoint
    rows, notes = [], []
    for ps in priced:
        est = ps.estimate
        if step_scale != 1.0:
            est = est.model_copy(update={"step_time_s": est.step_time_s * step_scale})
        budget = run_budget(est, ps.spec.tokens, hardware, price_per_gpu_hour=plan.price_per_gpu_hour,
                            power_per_gpu_w=plan.power_per_gpu_w, pue=plan.pue)
        notes += budget.assumptions
        rel = stage_reliability(est, model, hardware, failures, checkpoint, budget.wall_time_s)
        notes += rel.notes
        rows.append(StageRow(
            name=ps.spec.name, tokens=ps.spec.tokens, seq_length=est.training.seq_length,
            global_batch_size=est.training.global_batch_size, tokens_per_step=est.training.tokens_per_step,
            gpus=est.gpus, layout=f"{est.layout.describe()} {est.layout.schedule}", planned=ps.planned,
            fits=est.fits, peak_memory_gib=est.peak_memory_bytes / GIB, step_time_s=est.step_time_s, mfu=est.mfu,
            model_tflops_per_gpu=est.model_tflops_per_gpu, steps=budget.steps,
            useful_days=budget.wall_time_s / SECONDS_PER_DAY, wall_days=rel.wall_s / SECONDS_PER_DAY,
            gpu_hours=est.gpus * rel.wall_s / 3600.0, goodput=rel.goodput, reliability=rel, estimate=est))
    return rows, list(dict.fromkeys(notes))


def run_totals(plan: RunPlanSpec, hardware: HardwareProfile, rows: Sequence[StageRow]) -> RunTotals:
    """Sums over the stages (energy and cost by planner.cost.budget's formulas on the summed GPU-hours)."""
    first = run_budget(rows[0].estimate, rows[0].tokens, hardware, price_per_gpu_hour=plan.price_per_gpu_hour,
                       power_per_gpu_w=plan.power_per_gpu_w, pue=plan.pue)  # the defaults it resolves
    useful = sum(r.reliability.useful_s for r in rows)
    wall = sum(r.reliability.wall_s for r in rows)
    gpu_hours = sum(r.gpu_hours for r in rows)
    day = SECONDS_PER_DAY
    return RunTotals(
        tokens=sum(r.tokens for r in rows), useful_days=useful / day, wall_days=wall / day,
        gpu_hours_useful=sum(r.gpus * r.reliability.useful_s / 3600.0 for r in rows), gpu_hours=gpu_hours,
        goodput=useful / wall if wall else 1.0,
        checkpoint_stall_days=sum(r.reliability.checkpoint_stall_s for r in rows) / day,
        failure_days=sum(r.reliability.failure_loss_s for r in rows) / day,
        planned_days=sum(r.reliability.planned_loss_s for r in rows) / day,
        failures=sum(r.reliability.failures for r in rows), planned=sum(r.reliability.planned for r in rows),
        energy_mwh=energy_mwh(gpu_hours, first.power_per_gpu_w, first.pue),
        cost_usd=cost_usd(gpu_hours, first.price_per_gpu_hour), power_per_gpu_w=first.power_per_gpu_w,
        pue=first.pue, price_per_gpu_hour=first.price_per_gpu_hour)
