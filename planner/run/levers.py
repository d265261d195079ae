"""The bottleneck story of a run: which 2x improvement saves the most days.

Each lever re-prices the run's bookkeeping (``planner.run.price``) with one part made 2x better and
the stage estimates kept: every step time halved; the interruption rates (unexpected and planned)
halved; the restart's detection and rescheduling halved; checkpoints moved 2x faster (storage and
host-link bandwidths doubled). The lever that saves the most days heads the story.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..specs import HardwareProfile, ModelSpec
from ..specs.run import RunPlanSpec
from .fleets import DEFAULT_DETECT_S, DEFAULT_RESCHEDULE_S, fleet_rate
from .price import run_totals, stage_rows
from .result import Lever, RunTotals
from .stages import PricedStage

FACTOR = 2.0


def _faster_checkpoints(hardware: HardwareProfile) -> HardwareProfile:
    """``hardware`` with its storage and host-link bandwidths doubled."""
    update = {}
    if hardware.storage is not None:
        st = hardware.storage
        update["storage"] = st.model_copy(update={
            k: v * FACTOR for k, v in st.model_dump().items() if k.endswith("_gbps") and v is not None})
    if hardware.device.host_link_gbps is not None:
        update["device"] = hardware.device.model_copy(update={"host_link_gbps": hardware.device.host_link_gbps * FACTOR})
    return hardware.model_copy(update=update)


def run_levers(plan: RunPlanSpec, model: ModelSpec, hardware: HardwareProfile, priced: Sequence[PricedStage],
               base: RunTotals) -> list[Lever]:
    """Every lever of the module docstring, most days saved first."""
    f = plan.failures
    rate, _ = fleet_rate(f.rate_per_gpu_hour, "failures.rate_per_gpu_hour")
    planned, _ = fleet_rate(f.planned_rate_per_gpu_hour, "failures.planned_rate_per_gpu_hour", planned=True)
    detect = DEFAULT_DETECT_S if f.detect_s is None else f.detect_s
    resched = DEFAULT_RESCHEDULE_S if f.reschedule_s is None else f.reschedule_s
    variants = [
        ("step_time", "every step 2x faster", {"step_scale": 1 / FACTOR}, hardware),
        ("failure_rate", "half the interruptions", {"failures": f.model_copy(update={
            "rate_per_gpu_hour": rate / FACTOR, "planned_rate_per_gpu_hour": planned / FACTOR})}, hardware),
        ("restart", "detection and rescheduling 2x faster", {"failures": f.model_copy(update={
            "detect_s": detect / FACTOR, "reschedule_s": resched / FACTOR})}, hardware),
    ]
    if plan.checkpoint.mode != "none":
        variants.append(("checkpoint", "checkpoints 2x faster (storage and host link)", {},
                         _faster_checkpoints(hardware)))
    levers = []
    for key, label, kwargs, hw in variants:
        rows, _ = stage_rows(plan, model, hw, priced, **kwargs)
        wall = run_totals(plan, hw, rows).wall_days
        saved = base.wall_days - wall
        levers.append(Lever(key=key, label=label, wall_days=wall, days_saved=saved,
                            share=saved / base.wall_days if base.wall_days else 0.0))
    return sorted(levers, key=lambda lv: -lv.days_saved)


def headline(levers: Sequence[Lever], totals: RunTotals) -> str:
    """The largest lever on days in one sentence, with the next two."""
    top = levers[0]
    text = (f"The largest lever on the run's {totals.wall_days:,.1f} days is {top.label}: it saves "
            f"{top.days_saved:,.1f} days ({top.share:.1%})")
    rest = [f"{lv.label} {lv.days_saved:,.1f} days" for lv in levers[1:3]]
    return text + ("; next: " + ", ".join(rest) if rest else "")
