"""``paraplan estimate``: step time, throughput, MFU/HFU and per-stage memory of one layout."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import SpecError
from ..frameworks.common import split_summary
from . import budget_render as br
from . import common as c
from .app import JSON_OPTION, app, console, print_json
from .evidence_render import estimate_evidence, estimate_line
from .render import render_estimate

ENGINES = ("analytic", "simulate")


@app.command()
@c.scenario_options()
def estimate(
    engine: Annotated[str, typer.Option("--engine", help="analytic or simulate.")] = "analytic",
    tokens: br.TokensOpt = None, price_per_gpu_hour: br.PriceOpt = None, power_per_gpu: br.PowerOpt = None,
    pue: br.PueOpt = None, failure_rate: br.FailureRateOpt = None, checkpoint: br.CheckpointOpt = None,
    checkpoint_interval: br.CheckpointIntervalOpt = None, offload: br.OffloadOpt = None,
    json_out: bool = JSON_OPTION, scenario_flags: dict | None = None,
) -> None:
    """Predict one training step of one layout: time, throughput, MFU/HFU, memory per stage."""
    if engine not in ENGINES:
        raise SpecError(f"'{engine}' is not one of: {', '.join(ENGINES)}", field="--engine")
    reliability_opts = br.reliability_options(tokens, failure_rate, checkpoint, checkpoint_interval)
    scenario = c.build_scenario(**scenario_flags)
    br.check_reliability_hardware(scenario.hardware, reliability_opts)
    off = br.offload_from_flag(offload)
    if off is not None:
        scenario = scenario.model_copy(update={"training": scenario.training.replace(offload=off.model_dump())})
        c.check_framework(scenario, scenario_flags.get("framework"))  # the target must express the offload
    if engine == "simulate":
        from simulate import simulate_estimate

        est = simulate_estimate(scenario)
    else:
        est = scenario.estimate()
    budget = br.budget_for(est, scenario.hardware, tokens, price_per_gpu_hour, power_per_gpu, pue)
    reliability = br.reliability_for(est, scenario.model, scenario.hardware, budget, reliability_opts)
    from .moe_render import breakdown_for, expert_comm_table, moe_groups_table, moe_layer_table

    moe = breakdown_for(scenario.model, scenario.hardware, scenario.training, scenario.layout, scenario.gpus,
                        est.step_time_s)
    lay = scenario.layout
    split = split_summary(lay, scenario.model, scenario.training.mtp_layers) if lay.pp > 1 else None
    evidence = estimate_evidence(scenario, est)
    if json_out:
        est = est.model_copy(update={"moe": moe, "pipeline_split": split})
        payload = br.with_budget(est.model_dump(mode="json"), budget, reliability)
        payload["evidence"] = evidence.model_dump(mode="json")
        print_json(payload)
    else:
        from ..cost.bottleneck import analyse_scenario

        console.print(render_estimate(est, analyse_scenario(scenario)))
        console.print(estimate_line(evidence))
        if split is not None:
            console.print(f"pipeline split: {split}", highlight=False)
        if moe is not None:
            console.print(moe_layer_table(moe))
            console.print(expert_comm_table(moe))
            console.print(moe_groups_table(moe))
        if budget is not None:
            console.print()
            console.print(br.budget_table(budget))
        if reliability is not None:
            console.print()
            console.print(br.reliability_table(reliability, budget))
