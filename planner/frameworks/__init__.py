"""The layout rules of the frameworks paraplan exports to, as code with the framework's source lines.

A framework refuses some layouts that paraplan can price (Megatron's interleaved schedule needs
micro-batches % pp == 0; DeepSpeed's pipeline engine refuses ZeRO-2/3; torchtitan has no ZeRO-1).
``refusal`` names the first rule a layout breaks, with the framework's reason and where the rule is
in the framework's code (the pinned versions in ``VERSIONS``). ``plan --framework`` filters the
search with it, ``estimate``/``simulate`` refuse with the same sentence, and ``planner.exports``
refuses to write a config the target would reject.

Recipes map to frameworks (``framework_of_recipe``): megatron, megatron-lm, megatron-core ->
megatron; deepspeed -> deepspeed; fsdp, torchtitan -> torchtitan; fsdp1, torch-amp -> none (no
launch target: an export then needs ``--framework``).
"""

from __future__ import annotations

from hwprofiles.recipe_loader import canonical_recipe_name

from ..errors import SpecError
from ..specs import Layout, ModelSpec, TrainingSpec
from .common import Rule, stage_split, virtual_stage_layers
from .deepspeed import DEEPSPEED_RULES
from .megatron import MEGATRON_RULES
from .torchtitan import TORCHTITAN_RULES, torchtitan_stage_layers

FRAMEWORKS = ("megatron", "deepspeed", "torchtitan")

VERSIONS = {
    "megatron": "Megatron-LM (megatron-core 0.19.2)",
    "deepspeed": "DeepSpeed 0.19.8",
    "torchtitan": "torchtitan 0.3.0",
}

RULES: dict[str, tuple[Rule, ...]] = {
    "megatron": MEGATRON_RULES, "deepspeed": DEEPSPEED_RULES, "torchtitan": TORCHTITAN_RULES,
}

RECIPE_FRAMEWORK: dict[str, str | None] = {
    "megatron": "megatron", "megatron-lm": "megatron", "megatron-core": "megatron",
    "deepspeed": "deepspeed", "deepspeed-2021": "deepspeed", "fsdp": "torchtitan", "torchtitan": "torchtitan", "torchtitan-2412": "torchtitan", "torchtitan-0.3": "torchtitan", "torchtitan-2506": "torchtitan",
    "fsdp1": None, "fsdp1-amp": None, "llm-foundry": None, "llm-foundry-2309": None, "torch-amp": None,
}


# The recipe that prices a plan for a framework when no --recipe is given (today's recipe names;
# "fsdp" is torchtitan's FSDP2 recipe).
DEFAULT_RECIPE = {"megatron": "megatron", "deepspeed": "deepspeed", "torchtitan": "fsdp"}


def framework_of_recipe(recipe: str) -> str | None:
    """The framework that runs ``recipe`` (None: the recipe has no launch target)."""
    return RECIPE_FRAMEWORK.get(recipe)


def check_framework_name(framework: str) -> None:
    """SpecError listing the frameworks when ``framework`` is not one of them."""
    if framework not in FRAMEWORKS:
        raise SpecError(f"'{framework}' is not one of: {', '.join(FRAMEWORKS)} (or none without --export)",
                        field="--framework")


#: Rules about the model the export can describe (torchtitan's llama3 module flavours), not about the
#: layout: they apply when the framework is the export target or was asked for (``--framework``), not
#: when it is only implied by the recipe (a torchtitan-style run of another dense model is still priced).
MODEL_RULES = ("model",)


def refusing_rule(framework: str, model: ModelSpec, training: TrainingSpec, layout: Layout,
                  model_rules: bool = True) -> tuple[Rule, str] | None:
    """The first rule of ``framework`` this layout breaks and its reason, or None when it runs it
    (``model_rules=False``: only the layout rules, see MODEL_RULES)."""
    check_framework_name(framework)
    for rule in RULES[framework]:
        if not model_rules and rule.name in MODEL_RULES:
            continue
        reason = rule.check(model, training, layout)
        if reason:
            return rule, reason
    return None


def refusal(framework: str, model: ModelSpec, training: TrainingSpec, layout: Layout,
            model_rules: bool = True) -> str | None:
    """The sentence with which ``framework`` refuses this layout, or None when it runs it."""
    hit = refusing_rule(framework, model, training, layout, model_rules)
    if hit is None:
        return None
    rule, reason = hit
    return f"{VERSIONS[framework]} refuses this layout: {reason} [{rule.source}]"


def check_launchable(framework: str | None, model: ModelSpec, training: TrainingSpec, layout: Layout,
                     field: str = "layout", model_rules: bool = True) -> None:
    """SpecError (exit 2) with the framework's reason when ``framework`` refuses the layout."""
    if framework is None:
        return
    reason = refusal(framework, model, training, layout, model_rules)
    if reason:
        raise SpecError(reason, field=field)


#: ``--framework none``: price the layout under no framework's launch rules (a stack paraplan has no rules
#: for, e.g. DeepSeek's HAI-LLM with DualPipe), the recipe still deciding the kernels
NO_FRAMEWORK = "none"


def resolve_framework(framework: str | None, recipe: str, export: str | None = None) -> str | None:
    """The framework whose rules apply: ``--framework`` if given (``none``: no rules), else the export target
    (an export must launch), else the recipe's framework (None for a recipe without a launch target)."""
    if framework == NO_FRAMEWORK and export not in FRAMEWORKS:
        return None
    if framework is not None:
        check_framework_name(framework)
        return framework
    if export in FRAMEWORKS:
        return export
    return framework_of_recipe(recipe)


def default_stage_layers(num_layers: int, pp: int) -> list[int] | None:
    """The uneven split a run uses when pp does not divide the layers (Megatron's
    --decoder-first/last-pipeline-num-layers form: middle stages ceil(L/pp), the first and last
    sharing the rest; Llama 3.1 405B: 126 layers on pp16 -> 7, 8 x 14, 7); None when even or when
    no such split exists."""
    split = stage_split(num_layers, pp) if pp > 1 else None
    return split if isinstance(split, list) else None


def default_split(num_layers: int, pp: int, vpp: int, recipe: str) -> list[int] | None:
    """Layers per pipeline stage when pp does not divide them, as the recipe's framework splits them:
    torchtitan's ``generate_split_points`` over pp x vpp stages (frameworks.torchtitan.torchtitan_stage_layers),
    else Megatron's uneven default (``default_stage_layers``); None when the split is even."""
    if pp > 1 and framework_of_recipe(canonical_recipe_name(recipe)) == "torchtitan":
        split = torchtitan_stage_layers(num_layers, pp, vpp)
        return None if len(set(split)) == 1 else split
    return default_stage_layers(num_layers, pp)


__all__ = ["DEFAULT_RECIPE", "default_split", "default_stage_layers", "resolve_framework", "FRAMEWORKS", "RECIPE_FRAMEWORK", "RULES", "VERSIONS", "Rule", "check_framework_name",
           "check_launchable", "framework_of_recipe", "refusal", "refusing_rule", "virtual_stage_layers"]
