"""What the framework rule modules and the search share: the Rule record, Megatron's uneven pipeline split
(``stage_split``) and the virtual-stage split of a layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..specs import Layout, ModelSpec, TrainingSpec, micro_batches_per_step, stage_layer_counts
from ..specs.pipeline_layout import layout_string, parse_pipeline_layout, symbol_count

Check = Callable[[ModelSpec, TrainingSpec, Layout], "str | None"]


@dataclass(frozen=True)
class Rule:
    """One layout rule of a framework.

    Attributes:
        name: short identifier (used in tests).
        source: where the framework enforces it (file:lines of the pinned version).
        check: returns the reason (one sentence) when the layout breaks the rule, else None.
    """

    name: str
    source: str
    check: Check


def stage_split(num_layers: int, pp: int) -> list[int] | None | Literal["invalid"]:
    """Layers per stage: None for an even split, a Megatron-expressible uneven split, or 'invalid'."""
    if num_layers % pp == 0:
        return None
    if pp == 2:
        return [num_layers - num_layers // 2, num_layers // 2]
    mid = -(-num_layers // pp)
    rest = num_layers - (pp - 2) * mid
    if rest < 2:
        return "invalid"
    return [rest - rest // 2] + [mid] * (pp - 2) + [rest // 2]


def virtual_stage_layers(layout: Layout, model: ModelSpec) -> list[int]:
    """Transformer layers of each virtual pipeline stage, in stage order ``chunk * pp + rank``
    (Megatron's and torchtitan's looped order). Each rank's layers are split over its ``vpp``
    chunks as evenly as possible; the first rank puts its shortfall on its first chunk and the last
    rank on its last chunk, so that an uneven 126-layer pp16 split gives the Llama 3 layout (the
    first and last virtual stages one layer short; Llama Team 2024, arXiv 2407.21783, sec. 3.3.2)."""
    if layout.pipeline_layout is not None:  # the exact split the layout string gives
        return parse_pipeline_layout(layout.pipeline_layout, layout.pp, layout.vpp, model.num_layers,
                                     layout_mtp(layout)).virtual_layers
    counts = stage_layer_counts(layout, model)
    v = layout.vpp
    per_rank = []
    for rank, n in enumerate(counts):
        base, extra = divmod(n, v)
        chunks = [base + 1] * extra + [base] * (v - extra)  # larger chunks first
        if rank == 0 and layout.pp > 1:
            chunks.reverse()  # the short chunk goes first, next to the embedding
        per_rank.append(chunks)
    return [per_rank[rank][chunk] for chunk in range(v) for rank in range(layout.pp)]


def layout_mtp(layout: Layout) -> int:
    """MTP modules the layout string places (0 without one)."""
    return 0 if layout.pipeline_layout is None else symbol_count(layout.pipeline_layout, "m")


def micro_batches(layout: Layout, training: TrainingSpec) -> int:
    """Micro-batches per pipeline per step (global / (micro * dp))."""
    return micro_batches_per_step(layout, training)


def accumulation_steps(layout: Layout, training: TrainingSpec) -> int:
    """Gradient-accumulation steps of a data-parallel rank (== micro-batches per step)."""
    return micro_batches_per_step(layout, training)


def split_summary(layout: Layout, model: ModelSpec, mtp_layers: int = 0) -> str:
    """The pipeline split in Megatron's terms: the --pipeline-model-parallel-layout string of the virtual
    stages (the layout's own string when it has one) and the transformer layers per pipeline rank."""
    text = layout.pipeline_layout or layout_string(virtual_stage_layers(layout, model), mtp_layers)
    ranks = ", ".join(str(n) for n in stage_layer_counts(layout, model))
    v = f" x vpp{layout.vpp}" if layout.vpp > 1 else ""
    return (f"{model.num_layers} layers over pp{layout.pp}{v}: Megatron --pipeline-model-parallel-layout "
            f"'{text}'; layers per pipeline rank {ranks}")
