"""Every zoo model as a one-GPU plan: the scenarios whose exports the frameworks build (model counts)."""

from __future__ import annotations

from functools import cache

from hwprofiles import list_models, load_hardware, load_model
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec


@cache
def zoo_scenarios() -> tuple[Scenario, ...]:
    """One scenario per zoo model: 1 GPU, micro-batch 1, sequence 2048 (the count needs no layout)."""
    hw = load_hardware("h100-sxm-80gb")
    return tuple(Scenario(model=load_model(name), hardware=hw, gpus=1, layout=Layout(),
                          training=TrainingSpec(global_batch_size=1, seq_length=2048))
                 for name in list_models())
