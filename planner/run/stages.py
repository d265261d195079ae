"""Price one stage of a run plan with the existing machinery: its layout estimated
(``planner.cost.estimate``) or, for ``layout: plan``, searched (``planner.search.search``).

No formula lives here: a stage becomes a TrainingSpec and a Layout (dp = gpus / (tp * pp * cp),
Megatron's uneven split when pp does not divide the layers, interleaved 1F1B when vpp > 1), checked
by ``check_layout`` and the recipe's framework rules, then priced.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from ..cost import estimate
from ..cost.result import Estimate
from ..errors import SpecError, format_validation_error
from ..frameworks import check_launchable, default_stage_layers, resolve_framework
from ..scenario import Scenario, infer_dp
from ..search import SearchConstraints, search
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec, check_layout
from ..specs.run import RunPlanSpec, StageLayout, StageSpec


@dataclass(frozen=True)
class PricedStage:
    """A stage and the estimate of the layout it runs."""

    spec: StageSpec
    scenario: Scenario
    estimate: Estimate
    planned: bool  # True when paraplan searched the layout


def stage_training(plan: RunPlanSpec, stage: StageSpec, lay: StageLayout | None) -> TrainingSpec:
    """The TrainingSpec of ``stage`` (micro-batch and recompute from its layout, when given)."""
    extra = {} if lay is None else {"micro_batch_size": lay.micro_batch_size, "recompute": lay.recompute}
    return TrainingSpec(seq_length=stage.seq_length, global_batch_size=stage.sequences_per_step,
                        precision=plan.precision, recipe=plan.recipe, **extra)


def stage_layout(model: ModelSpec, lay: StageLayout, gpus: int) -> Layout:
    """The Layout of a stage's layout fields on ``gpus`` GPUs."""
    data = lay.model_dump(exclude={"micro_batch_size", "recompute"})
    if data["schedule"] is None:
        data["schedule"] = "interleaved-1f1b" if lay.vpp > 1 else "1f1b"
    if data["stage_layers"] is None and lay.pp > 1 and model.num_layers % lay.pp:
        data["stage_layers"] = default_stage_layers(model.num_layers, lay.pp)
    return Layout(dp=infer_dp(gpus, lay.tp, lay.pp, lay.cp), **data)


def price_stage(plan: RunPlanSpec, index: int, model: ModelSpec, hardware: HardwareProfile) -> PricedStage:
    """Estimate (or plan) stage ``index`` of ``plan``; errors name the stage."""
    stage = plan.stages[index]
    gpus = stage.gpus or plan.gpus
    where = f"stages.{index} ({stage.name})"
    try:
        if stage.layout == "plan":
            training = stage_training(plan, stage, None)
            framework = resolve_framework(None, training.recipe)
            best = search(model, hardware, gpus, training, SearchConstraints(framework=framework), top=1).best
            scenario = Scenario(model=model, hardware=hardware, gpus=best.gpus, training=best.training,
                                layout=best.layout)
            return PricedStage(stage, scenario, best.estimate, planned=True)
        training = stage_training(plan, stage, stage.layout)
        layout = stage_layout(model, stage.layout, gpus)
        check_layout(layout, model, training, gpus)
        check_launchable(resolve_framework(None, training.recipe), model, training, layout, field=where)
    except SpecError as exc:
        if exc.field == where:
            raise
        raise SpecError(str(exc), field=where) from None
    except ValidationError as exc:  # a Layout / TrainingSpec that does not validate
        raise SpecError(format_validation_error(exc), field=where) from None
    scenario = Scenario(model=model, hardware=hardware, gpus=gpus, training=training, layout=layout)
    return PricedStage(stage, scenario, estimate(model, hardware, training, layout, gpus), planned=False)
