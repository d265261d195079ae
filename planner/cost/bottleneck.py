"""The bottleneck of a step: the resource whose 2x speed-up saves the most step time.

The time breakdown (:class:`~planner.cost.result.TimeBreakdown`) books each overlap window
additively: the compute in full and the communication overlapped with it only by the part that
outlasts the compute (a ZeRO-3 gather of 1.13 s under 1.09 s of backward compute books 1.09 s of
compute and 0.04 s of exposed communication). Additive shares cannot predict what a faster
resource saves where two resources overlap (the step there takes max(C, G)): halving C saves
min(C/2, C - G), nothing once G is the longer. So the bottleneck is *measured*, not read off
the largest share: every resource is made 2x faster in turn — its prices divided by 2 in
:class:`FasterPricer`, the work unchanged — and the whole step (overlap rules, pipeline
schedule, exposed reductions) is folded again (a counterfactual re-estimate, the
"virtual speed-up" of causal profiling: Curtsinger & Berger 2015, Coz, SOSP '15, Sec. 2).

Resources and the prices they scale:

- ``compute``: every compute op (GEMM, attention, memory-bound op; launch overhead included) —
  the same as doubling peak FLOP/s and HBM bandwidth and halving the kernel overhead;
- ``tp_comm``: tensor- and context-parallel collectives, and the MoE layers' expert-parallel (ep, etp) ones;
- ``dp_comm``: data-parallel / ZeRO / FSDP gathers, reduce-scatters and all-reduces;
- ``pp_comm``: pipeline point-to-point sends;
- ``optimizer``: the optimizer step.

The pipeline bubble is not a resource: it is fill/drain idle time made of the stages' own
compute and communication, and it shrinks with whichever of them is made faster.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pricing import Pricer
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec, check_layout
from ..work.ops import Collective, Op
from ..work.step import build_step
from .analytic import fold, price_stages
from .result import Estimate

FACTOR = 2.0

RESOURCES = ("compute", "tp_comm", "dp_comm", "pp_comm", "optimizer")

# resource -> the TimeBreakdown part it is booked in
PART_OF = {"compute": "compute", "tp_comm": "tp_comm", "dp_comm": "dp_comm_exposed", "pp_comm": "pp_comm",
           "optimizer": "optimizer"}

LABELS = {
    "compute": "compute", "tp_comm": "tensor-parallel communication",
    "dp_comm": "data-parallel / ZeRO communication", "pp_comm": "pipeline point-to-point",
    "optimizer": "optimizer step",
}

_AXIS_RESOURCE = {"tp": "tp_comm", "cp": "tp_comm", "pp": "pp_comm", "dp": "dp_comm", "dp_shard": "dp_comm",
                  "dp_replicate": "dp_comm", "ep": "tp_comm", "etp": "tp_comm", "edp": "dp_comm"}


def resource_of_axis(axis: str) -> str:
    """The resource a collective over ``axis`` uses (tp/cp and the in-layer expert axes ep/etp -> tp_comm,
    where the breakdown books them; dp* and edp -> dp_comm; pp -> pp_comm)."""
    return _AXIS_RESOURCE.get(axis, "dp_comm")


class FasterPricer(Pricer):
    """A Pricer whose prices of one resource are divided by ``factor`` (all other prices unchanged)."""

    def __init__(self, hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int,
                 resource: str, factor: float = FACTOR):
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r}; one of {RESOURCES}")
        super().__init__(hardware, training, layout, gpus)
        self.resource = resource
        self.scale = 1.0 / factor

    def op_time(self, op: Op) -> float:
        """Seconds of one op; compute ops scaled when the resource is compute (collectives go
        through :meth:`collective_time`)."""
        t = super().op_time(op)
        if self.resource == "compute" and not isinstance(op, Collective):
            t *= self.scale
        return t

    def collective_time(self, op: Collective, group=None) -> float:
        """Seconds of a collective, scaled when it belongs to the resource."""
        t = super().collective_time(op, group)
        return t * self.scale if resource_of_axis(op.axis) == self.resource else t

    def p2p_time(self, nbytes: float) -> float:
        """Seconds of one pipeline send, scaled for pp_comm."""
        t = super().p2p_time(nbytes)
        return t * self.scale if self.resource == "pp_comm" else t

    def optimizer_time(self, params: float) -> float:
        """Seconds of the optimizer step, scaled for optimizer."""
        t = super().optimizer_time(params)
        return t * self.scale if self.resource == "optimizer" else t


@dataclass(frozen=True, slots=True)
class Speedup:
    """What one resource made ``factor`` times faster does to the step."""

    resource: str
    label: str
    part: str  # the TimeBreakdown part the resource is booked in
    booked_s: float  # its booked time in the base breakdown, s
    step_time_s: float  # step time with the resource faster, s
    saving: float  # fraction of the base step time saved (0.1 = 10 % shorter)


@dataclass(frozen=True, slots=True)
class BottleneckAnalysis:
    """The base estimate, each resource's 2x counterfactual, and the bottleneck among them."""

    estimate: Estimate
    speedups: tuple[Speedup, ...]  # largest saving first
    factor: float

    @property
    def bottleneck(self) -> Speedup:
        """The resource whose speed-up saves the most (ties: the earlier of RESOURCES)."""
        return self.speedups[0]

    def saving_of(self, resource: str) -> float:
        """Fraction of the step saved by ``resource`` made faster."""
        return next(s.saving for s in self.speedups if s.resource == resource)


def analyse(model: ModelSpec, hardware: HardwareProfile, training: TrainingSpec, layout: Layout,
            gpus: int | None = None, factor: float = FACTOR) -> BottleneckAnalysis:
    """Estimate the step, then re-estimate it with each resource ``factor`` times faster."""
    gpus = layout.gpus if gpus is None else gpus
    check_layout(layout, model, training, gpus)
    step = build_step(model, training, layout)
    base_pricer = Pricer(hardware, training, layout, gpus)
    peak = base_pricer.compute.peak_flops
    base = fold(step, price_stages(step, base_pricer), hardware, gpus, peak)
    parts = base.time.model_dump()
    out = []
    for resource in RESOURCES:
        pricer = FasterPricer(hardware, training, layout, gpus, resource, factor)
        t = fold(step, price_stages(step, pricer), hardware, gpus, peak).step_time_s
        out.append(Speedup(resource=resource, label=LABELS[resource], part=PART_OF[resource],
                           booked_s=parts[PART_OF[resource]], step_time_s=t,
                           saving=1.0 - t / base.step_time_s if base.step_time_s else 0.0))
    order = sorted(range(len(out)), key=lambda i: (-round(out[i].saving, 12), i))
    return BottleneckAnalysis(estimate=base, speedups=tuple(out[i] for i in order), factor=factor)


def analyse_scenario(scenario, factor: float = FACTOR) -> BottleneckAnalysis:
    """:func:`analyse` of a :class:`~planner.scenario.Scenario`."""
    return analyse(scenario.model, scenario.hardware, scenario.training, scenario.layout, scenario.gpus, factor)


def story(analysis: BottleneckAnalysis, step_time_s: float | None = None) -> str:
    """The bottleneck in one sentence, with the booked share next to what a 2x speed-up saves
    (``step_time_s``: the step the shares are of, when another engine produced it)."""
    top = analysis.bottleneck
    total = step_time_s or analysis.estimate.step_time_s
    k = f"{analysis.factor:g}x"
    if top.saving <= 0:
        return f"No single resource shortens the step when made {k} faster."
    text = (f"Bottleneck: {top.label} — {k} faster saves {top.saving:.1%} of the step "
            f"(booked {top.booked_s / total:.0%} of the step)")
    others = [s for s in analysis.speedups[1:] if s.saving > 0.001][:2]
    if others:
        text += "; next: " + ", ".join(f"{s.label} {s.saving:.1%}" for s in others)
    largest = max(analysis.speedups, key=lambda s: s.booked_s)
    if largest.resource != top.resource and largest.booked_s > top.booked_s:
        text += (f". {largest.label[0].upper() + largest.label[1:]} is booked the most ({largest.booked_s / total:.0%}) but 2x faster "
                 f"saves only {largest.saving:.1%}: the work it overlaps becomes the longer side")
    return text


__all__ = ["FACTOR", "LABELS", "PART_OF", "RESOURCES", "BottleneckAnalysis", "FasterPricer", "Speedup",
           "analyse", "analyse_scenario", "resource_of_axis", "story"]
