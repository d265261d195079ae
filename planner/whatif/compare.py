"""Base vs variants: the same figures side by side, their deltas, and the bottleneck of each."""

from __future__ import annotations

from typing import Callable, Sequence

from pydantic import Field

from ..cost.bottleneck import BottleneckAnalysis, analyse_scenario
from ..cost.result import Estimate, Result
from ..errors import SpecError
from ..scenario import Scenario
from .keys import apply_settings, parse_assignment

ENGINES = ("analytic", "simulate")
Engine = Callable[[Scenario], Estimate]

BOTTLENECK_WORDS = {
    "compute": "compute", "tp_comm": "tensor-parallel communication", "cp_comm": "context-parallel K/V exchange", "pp_bubble": "pipeline bubble",
    "pp_comm": "pipeline point-to-point", "dp_comm_exposed": "exposed data-parallel communication",
    "optimizer": "optimizer step", "other": "other overheads",
}


def get_engine(name: str) -> Engine:
    """The estimator called ``name``: ``analytic`` or ``simulate`` (SpecError if unavailable)."""
    if name not in ENGINES:
        raise SpecError(f"'{name}' is not one of: {', '.join(ENGINES)}", field="--engine")
    if name == "analytic":
        return Scenario.estimate
    try:
        from simulate import simulate_estimate
    except ImportError as exc:
        raise SpecError(f"the simulate engine is unavailable ({exc}); use --engine analytic",
                        field="--engine") from None
    return simulate_estimate


class Bottleneck(Result):
    """The resource whose 2x speed-up saves the most step time (:mod:`planner.cost.bottleneck`),
    with the time the breakdown books for it."""

    part: str = Field(description="TimeBreakdown field the resource is booked in")
    resource: str = Field("", description="compute, tp_comm, dp_comm, pp_comm, optimizer, links, network or host "
                          "('' when unmeasured)")
    label: str = Field(description="the resource in words")
    seconds: float = Field(description="its booked time in the breakdown, s")
    share: float = Field(description="its booked fraction of the step time")
    saving_x2: float | None = Field(None, description="fraction of the step saved when the resource is 2x "
                                    "faster (analytic re-estimate; None when unmeasured)")


def bottleneck_of(est: Estimate, analysis: BottleneckAnalysis | None = None, *,
                  overheads_only: bool = False) -> Bottleneck:
    """The bottleneck of ``est``: the resource of ``analysis`` whose 2x speed-up saves the most
    (``overheads_only``: besides compute). Without an analysis (or when nothing saves anything),
    the largest booked part of the breakdown."""
    parts = est.time.model_dump()
    total = est.step_time_s
    if analysis is not None:
        ranked = [s for s in analysis.speedups if not (overheads_only and s.resource == "compute")]
        if ranked and ranked[0].saving > 0:
            top = ranked[0]
            return Bottleneck(part=top.part, resource=top.resource, label=top.label, seconds=parts[top.part],
                              share=parts[top.part] / total if total else 0.0, saving_x2=top.saving)
    if overheads_only:
        parts.pop("compute")
    part = max(parts, key=parts.get)
    return Bottleneck(part=part, label=BOTTLENECK_WORDS[part], seconds=parts[part],
                      share=parts[part] / total if total else 0.0)


class Delta(Result):
    """A variant relative to the base (fractions: 0.1 = +10 %)."""

    step_time: float = Field(description="relative change of step time")
    tokens_per_s: float = Field(description="relative change of throughput")
    mfu_points: float = Field(description="MFU difference, fraction points (0.01 = 1 point)")
    peak_memory: float = Field(description="relative change of the worst stage's peak memory")
    time_parts_s: dict[str, float] = Field(description="difference of each time part, s")


class Column(Result):
    """One scenario of a comparison: what was set, the estimate, its bottleneck, the delta."""

    label: str = Field(description="base or the settings of the variant")
    settings: list[str] = Field(description="KEY=VALUE applied to the base")
    notes: list[str] = Field(description="re-derivations and alias effects")
    layout: str = Field(description="layout summary")
    gpus: int = Field(description="ranks")
    estimate: Estimate = Field(description="the estimate")
    bottleneck: Bottleneck = Field(description="largest time part")
    bottleneck_shift: str | None = Field(None, description="text when the bottleneck differs from the base's")
    overhead: Bottleneck = Field(description="largest time part besides compute")
    overhead_shift: str | None = Field(None, description="text when the largest overhead differs from the base's")
    delta: Delta | None = Field(None, description="change vs base (None for the base)")


class Comparison(Result):
    """``paraplan whatif`` result: the base column then one per variant."""

    engine: str = Field(description="analytic or simulate")
    base: Column = Field(description="the base scenario")
    variants: list[Column] = Field(description="the variants, in --set order")


def delta(base: Estimate, other: Estimate) -> Delta:
    """``other`` relative to ``base``."""
    bt, ot = base.time.model_dump(), other.time.model_dump()
    return Delta(
        step_time=other.step_time_s / base.step_time_s - 1,
        tokens_per_s=other.tokens_per_s / base.tokens_per_s - 1,
        mfu_points=other.mfu - base.mfu,
        peak_memory=other.peak_memory_bytes / base.peak_memory_bytes - 1,
        time_parts_s={k: ot[k] - bt[k] for k in bt},
    )


def split_variant(text: str) -> list[str]:
    """One ``--set`` value -> its assignments (several may be joined by spaces or ';')."""
    items = [t for t in text.replace(";", " ").split() if t]
    for item in items:
        parse_assignment(item)
    return items


def column(scenario: Scenario, engine: Engine, label: str, settings: Sequence[str] = (),
           notes: Sequence[str] = (), base: Column | None = None) -> Column:
    """Estimate ``scenario`` and describe it (delta and bottleneck shift against ``base``)."""
    est = engine(scenario)
    analysis = analyse_scenario(scenario)
    neck, over = bottleneck_of(est, analysis), bottleneck_of(est, analysis, overheads_only=True)
    return Column(label=label, settings=list(settings), notes=list(notes), layout=scenario.layout.describe(),
                  gpus=scenario.gpus, estimate=est, bottleneck=neck, overhead=over,
                  bottleneck_shift=_shift("bottleneck", base.bottleneck, neck) if base else None,
                  overhead_shift=_shift("largest overhead", base.overhead, over) if base else None,
                  delta=delta(base.estimate, est) if base is not None else None)


def _shift(what: str, old: Bottleneck, new: Bottleneck) -> str | None:
    if old.part == new.part and old.resource == new.resource:
        return None
    return f"{what} shifts from {old.label} ({old.share:.0%}) to {new.label} ({new.share:.0%})"


def compare(base: Scenario, variants: Sequence[Sequence[str]], engine: str = "analytic") -> Comparison:
    """Estimate ``base`` and each variant (a list of KEY=VALUE applied to the base)."""
    run = get_engine(engine)
    base_col = column(base, run, "base")
    cols = []
    for settings in variants:
        scenario, notes = apply_settings(base, settings)
        cols.append(column(scenario, run, " ".join(settings), settings, notes, base_col))
    return Comparison(engine=engine, base=base_col, variants=cols)
