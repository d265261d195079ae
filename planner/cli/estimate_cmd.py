"""``paraplan estimate``: step time, throughput, MFU/HFU and per-stage memory of one layout."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import SpecError
from . import common as c
from .app import JSON_OPTION, app, console, print_json
from .render import render_estimate

ENGINES = ("analytic", "simulate")


@app.command()
def estimate(
    model: c.ModelOpt = None, hardware: c.HardwareOpt = None, calibration: c.CalibrationOpt = None,
    gpus: c.GpusOpt = None, tp: c.TpOpt = None, pp: c.PpOpt = None, vpp: c.VppOpt = None,
    dp: c.DpOpt = None, cp: c.CpOpt = None, micro_batch: c.MicroOpt = None,
    global_batch: c.GlobalOpt = None, seq: c.SeqOpt = None, zero: c.ZeroOpt = None,
    fsdp: c.FsdpOpt = None, recompute: c.RecomputeOpt = None, sequence_parallel: c.SpOpt = None,
    precision: c.PrecisionOpt = None, recipe: c.RecipeOpt = None, flash_attention: c.FlashOpt = None,
    schedule: c.ScheduleOpt = None, layout: c.LayoutFileOpt = None,
    engine: Annotated[str, typer.Option("--engine", help="analytic or simulate.")] = "analytic",
    json_out: bool = JSON_OPTION,
) -> None:
    """Predict one training step of one layout: time, throughput, MFU/HFU, memory per stage."""
    if engine not in ENGINES:
        raise SpecError(f"'{engine}' is not one of: {', '.join(ENGINES)}", field="--engine")
    scenario = c.build_scenario(
        model=model, hardware=hardware, calibration=calibration, gpus=gpus, tp=tp, pp=pp, vpp=vpp, dp=dp,
        cp=cp, micro_batch=micro_batch, global_batch=global_batch, seq=seq, zero=zero, fsdp=fsdp,
        recompute=recompute, sequence_parallel=sequence_parallel, precision=precision, recipe=recipe,
        flash_attention=flash_attention, schedule=schedule, layout_file=layout,
    )
    if engine == "simulate":
        from simulate import simulate_estimate

        est = simulate_estimate(scenario)
    else:
        est = scenario.estimate()
    if json_out:
        print_json(est)
    else:
        console.print(render_estimate(est))
