"""The layout class of a prediction: what an estimate's error depends on most, so that measured runs
of the same class say how far to trust it.

A class is (recipe, hardware family, which parallel dimensions are on: tp / pp / cp / ep, how data
parallelism shards state, recompute, precision, attention kernel generation, scale band). Two layouts of one class run the same
kinds of kernels and collectives on the same kind of machine at a similar scale; the sizes differ.
Nothing here reads a measured row: planner.evidence.table matches classes against the shipped table.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from ..specs import HardwareProfile, Layout, TrainingSpec
from ..specs.base import Spec

#: Upper GPU counts of the scale bands (the last band is open): one GPU, one node, a pod of 8 nodes,
#: 64 nodes, 512 nodes, more.
SCALE_EDGES = (1, 8, 64, 512, 4096)
Sharding = Literal["none", "states", "params"]
_CHIP = re.compile(r"\b(MI\d{3}[A-Z]?|[A-Z]{1,2}\d{2,3}[A-Z]?)\b")


def hardware_family(hardware: HardwareProfile) -> str:
    """The chip of a profile from its device name (``NVIDIA H100 SXM5 80GB`` -> ``H100``, ``AMD Instinct
    MI250X`` -> ``MI250X``); A100 40 GB and 80 GB are one family. The profile name when none is found."""
    match = _CHIP.search(hardware.device.name)
    return match.group(1) if match else hardware.name


def scale_band(gpus: int) -> str:
    """``1``, ``2-8``, ``9-64``, ``65-512``, ``513-4096`` or ``4097+`` GPUs."""
    low = 1
    for edge in SCALE_EDGES:
        if gpus <= edge:
            return str(edge) if low == edge else f"{low}-{edge}"
        low = edge + 1
    return f"{low}+"


def sharding(layout: Layout, training: TrainingSpec) -> Sharding:
    """How data parallelism shards state: ``params`` (ZeRO-3 / FSDP: parameters gathered every step),
    ``states`` (ZeRO-1/2 or Megatron's distributed optimizer: optimizer states, and with ZeRO-2
    gradients), ``none``. With a single data-parallel rank nothing is sharded."""
    if layout.dp * layout.cp <= 1:
        return "none"
    if layout.effective_zero_stage >= 3:
        return "params"
    return "states" if layout.effective_zero_stage or training.distributed_optimizer else "none"


class LayoutClass(Spec):
    """The class of one prediction (module docstring)."""

    recipe: str = Field(description="framework recipe that priced it")
    hardware: str = Field(description="chip family (hardware_family)")
    tp: bool = Field(description="tensor parallelism on (tp > 1)")
    pp: bool = Field(description="pipeline parallelism on (pp > 1)")
    cp: bool = Field(description="context parallelism on (cp > 1)")
    ep: bool = Field(description="expert parallelism on (ep > 1)")
    sharded_dp: Sharding = Field(description="data-parallel sharding: none, states (ZeRO-1/2), params (ZeRO-3/FSDP)")
    recompute: str = Field(description="none, selective or full")
    precision: str = Field(description="bf16, fp16 or fp8")
    attention: str = Field("default", description="attention kernel generation priced: a device.attention_kernel_tables "
                           "key (fa2, fa1-triton, ...), 'default' (the profile's own table) or 'unfused'")
    scale: str = Field(description="GPU-count band (scale_band)")

    def describe(self) -> str:
        """``megatron-core H100 tp+zero1/2 none bf16 65-512 GPUs`` (the attention kernel after the precision when it
        is not the profile's default table: ``... bf16 fa1-triton 9-64 GPUs``)."""
        dims = [d for d in ("tp", "pp", "cp", "ep") if getattr(self, d)]
        dims += {"none": [], "states": ["zero1/2"], "params": ["zero3/fsdp"]}[self.sharded_dp]
        alone = "dp" if self.scale != "1" else "1-GPU"
        attention = "" if self.attention == "default" else f" {self.attention}"
        return (f"{self.recipe} {self.hardware} {'+'.join(dims) or alone} rc:{self.recompute} {self.precision}"
                f"{attention} {self.scale} GPUs")


#: The attributes a class is matched on, from the one relaxed first to the one relaxed last when no
#: measured run shares them all (planner.evidence.table.nearest).
RELAX_ORDER = ("scale", "attention", "recompute", "sharded_dp", "cp", "pp", "tp", "ep", "precision", "hardware", "recipe")


def classify(hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int, *,
             attention: str) -> LayoutClass:
    """The LayoutClass of a prediction; ``attention`` is the kernel generation it prices
    (planner.pricing.compute.attention_generation: the pricing layer resolves it)."""
    return LayoutClass(
        recipe=training.recipe, hardware=hardware_family(hardware), tp=layout.tp > 1, pp=layout.pp > 1,
        cp=layout.cp > 1, ep=layout.ep > 1, sharded_dp=sharding(layout, training), recompute=training.recompute,
        precision=training.precision, attention=attention, scale=scale_band(gpus))
