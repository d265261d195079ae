"""The pipeline-stage split of a published row whose pipeline degree does not divide its layers.

Megatron-LM / Megatron-Core cannot run pp that does not divide the layers without an uneven split
(``--decoder-first/last-pipeline-num-layers`` or ``--pipeline-model-parallel-layout``). When a row
run by a Megatron framework states no split, paraplan's Megatron default applies: the one the CLI
fills in (``planner.frameworks.default_stage_layers``: middle stages ceil(L / pp) layers, the first
and last sharing the rest), and with interleaving each rank's layers spread over its vpp chunks by
``planner.frameworks.virtual_stage_layers``. Other frameworks keep paraplan's even split.
"""

from __future__ import annotations

import re

from ..frameworks import default_stage_layers, framework_of_recipe
from ..frameworks.torchtitan import torchtitan_stage_layers

MEGATRON_FRAMEWORK = re.compile(r"megatron", re.I)


def row_stage_layers(framework: str, recipe: str, layers: int, pp: int, vpp: int = 1) -> list[int] | None:
    """Layers per pipeline stage for a row run by ``framework`` (the row's framework column) under
    ``recipe``: torchtitan's split (``torchtitan_stage_layers``, over pp x vpp stages) or Megatron's uneven
    default when pp does not divide ``layers``, else None (even)."""
    if pp <= 1:
        return None
    if framework_of_recipe(recipe) == "torchtitan":
        split = torchtitan_stage_layers(layers, pp, vpp)
        return None if len(set(split)) == 1 else split
    if layers % pp == 0:
        return None
    if framework_of_recipe(recipe) != "megatron" or not MEGATRON_FRAMEWORK.search(framework):
        return None
    return default_stage_layers(layers, pp)
