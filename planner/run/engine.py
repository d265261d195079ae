"""``price_run``: a run plan priced end to end (stages, days, GPU-hours, failures, checkpoints) with
its levers on days and the comparison with the published figures it names."""

from __future__ import annotations

from collections.abc import Sequence

from hwprofiles import load_hardware, load_model

from ..cost.bottleneck import analyse_scenario, story
from ..specs.run import RunPlanSpec
from .levers import headline, run_levers
from .price import run_totals, stage_rows, with_storage
from .result import ReferenceComparison, RunResult
from .stages import price_stage


def price_run(plan: RunPlanSpec, settings: Sequence[str] = ()) -> RunResult:
    """Price ``plan`` (its model, hardware and stages) end to end."""
    model = load_model(plan.model)
    hardware = with_storage(load_hardware(plan.hardware, plan.calibration), plan)
    priced = [price_stage(plan, i, model, hardware) for i in range(len(plan.stages))]
    rows, notes = stage_rows(plan, model, hardware, priced)
    totals = run_totals(plan, hardware, rows)
    levers = run_levers(plan, model, hardware, priced, totals)
    main = max(range(len(rows)), key=lambda i: rows[i].wall_days)
    analysis = analyse_scenario(priced[main].scenario)
    step_story = f"{rows[main].name}: " + story(analysis, rows[main].estimate.step_time_s)
    for r in rows:
        if not r.fits:
            notes.append(f"stage '{r.name}': {r.layout} needs {r.peak_memory_gib:.1f} GiB per GPU by paraplan's "
                         f"memory model, more than {hardware.device.hbm_capacity_gib:g} GiB; priced as given")
    ref = None
    if plan.reference is not None:
        rg = plan.reference
        err = totals.gpu_hours / rg.gpu_hours - 1 if rg.gpu_hours else None
        band = None if rg.goodput_min is None else rg.goodput_min < totals.goodput < 1.0
        ref = ReferenceComparison(gpu_hours=rg.gpu_hours, predicted_gpu_hours=totals.gpu_hours, error=err,
                                  goodput_min=rg.goodput_min, goodput=totals.goodput, goodput_in_band=band,
                                  source=rg.source)
    return RunResult(
        name=plan.name, model=model.name, hardware=hardware.name,
        storage=hardware.storage.model_dump() if hardware.storage else None, checkpoint_mode=plan.checkpoint.mode,
        settings=list(settings), stages=rows, totals=totals, levers=levers, headline=headline(levers, totals),
        step_bottleneck=step_story, reference=ref, assumptions=notes + list(plan.notes), sources=dict(plan.sources))
