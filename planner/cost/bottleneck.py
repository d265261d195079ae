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

Resources and the prices they scale. The first five are the parts of the breakdown (what each
part's resource made 2x faster saves is the breakdown's "2x faster saves" column):

- ``compute``: every compute op (GEMM, attention — ring-attention blocks included —, memory-bound
  op priced per kernel class; launch overhead included) — the same as doubling peak FLOP/s and
  HBM bandwidth (every kernel class's achieved bandwidth is a fraction of it) and halving the
  kernel overhead;
- ``tp_comm``: tensor- and context-parallel collectives, and the MoE layers' expert-parallel (ep, etp) ones;
- ``dp_comm``: data-parallel / ZeRO / FSDP gathers, reduce-scatters and all-reduces;
- ``pp_comm``: pipeline point-to-point sends;
- ``optimizer``: the optimizer step.

The other three are pieces of hardware shared by several parts, re-estimated on a profile with
that hardware made 2x faster (the same profile ``paraplan sensitivity`` doubles, so the two agree):

- ``links``: the intra-node device links. They carry the tensor-parallel collectives *and* the
  intra-node level of every hierarchical data-parallel collective, so doubling them can save more
  than doubling any one traffic class (Llama 3 70B, 64 H100, tp4 ZeRO-3: links 8.3 %, compute 8.0 %,
  tensor-parallel 4.9 %, ZeRO 3.5 %);
- ``network``: the NICs (and the host links feeding them): every level of every collective and
  send that crosses nodes;
- ``host``: the CPU's kernel dispatch (the recipe's ``host_dispatch_us``, a floor under each pass
  of an eager framework: planner.cost.analytic.price_stage). It is booked as compute but no GPU
  speed-up moves it: where a pass is host-bound only a faster dispatch (a faster CPU, CUDA graphs)
  shortens it.

The pipeline bubble is not a resource: it is fill/drain idle time made of the stages' own
compute and communication, and it shrinks with whichever of them is made faster.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..pricing import Pricer
from ..pricing.compute import ComputePricer, attention_kernel_for
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec, check_layout
from ..specs.hardware_edits import HARDWARE_EDITS
from ..work.ops import Collective
from ..work.step import build_step
from .analytic import fold, price_stages
from .result import Estimate

FACTOR = 2.0

PART_RESOURCES = ("compute", "tp_comm", "dp_comm", "pp_comm", "optimizer")  # one breakdown part each
HARDWARE_RESOURCES = ("links", "network", "host")  # shared by several parts
RESOURCES = PART_RESOURCES + HARDWARE_RESOURCES

# resource -> the TimeBreakdown part it is booked in (links / network: their largest communication part)
PART_OF = {"compute": "compute", "tp_comm": "tp_comm", "dp_comm": "dp_comm_exposed", "pp_comm": "pp_comm",
           "optimizer": "optimizer", "host": "compute"}
COMM_PARTS = ("tp_comm", "cp_comm", "pp_comm", "dp_comm_exposed")

LABELS = {
    "compute": "compute", "tp_comm": "tensor-parallel communication",
    "dp_comm": "data-parallel / ZeRO communication", "pp_comm": "pipeline point-to-point",
    "optimizer": "optimizer step",
    # the words of planner.whatif.sensitivity.PARAMETERS for the same hardware
    "links": "intra-node link bandwidth", "network": "inter-node bandwidth (NIC)",
    "host": "host kernel dispatch (CPU)",
}

# hardware resource -> the whatif alias that scales it on a profile (planner.whatif.keys.ALIASES)
PROFILE_KEY = {"links": "hardware.link_bandwidth", "network": "hardware.nic_bandwidth"}

_AXIS_RESOURCE = {"tp": "tp_comm", "cp": "tp_comm", "pp": "pp_comm", "dp": "dp_comm", "dp_shard": "dp_comm",
                  "dp_replicate": "dp_comm", "ep": "tp_comm", "etp": "tp_comm", "edp": "dp_comm"}


def resource_of_axis(axis: str) -> str:
    """The resource a collective over ``axis`` uses (tp/cp and the in-layer expert axes ep/etp -> tp_comm,
    where the breakdown books them; dp* and edp -> dp_comm; pp -> pp_comm)."""
    return _AXIS_RESOURCE.get(axis, "dp_comm")


class FasterCompute(ComputePricer):
    """A ComputePricer whose GEMM, attention and memory-bound prices are divided by ``factor``
    (the optimizer step, its memory passes included, is its own resource and keeps its price)."""

    def __init__(self, device, precision: str, factor: float, attention_kernel: str | None = None):
        super().__init__(device, precision, attention_kernel)
        self.scale = 1.0 / factor

    def gemm_time(self, op) -> float:
        """Seconds of a GEMM, scaled."""
        return super().gemm_time(op) * self.scale

    def attention_time(self, op) -> float:
        """Seconds of an attention core, scaled."""
        return super().attention_time(op) * self.scale

    def memory_time(self, op) -> float:
        """Seconds of a memory-bound op, scaled."""
        return super().memory_time(op) * self.scale


class FasterPricer(Pricer):
    """A Pricer whose prices of one resource of :data:`PART_RESOURCES` or ``host`` are divided by
    ``factor`` (all other prices unchanged)."""

    def __init__(self, hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int,
                 resource: str, factor: float = FACTOR):
        if resource not in PART_RESOURCES + ("host",):
            raise ValueError(f"unknown resource {resource!r}; one of {PART_RESOURCES + ('host',)}")
        super().__init__(hardware, training, layout, gpus)
        self.resource = resource
        self.scale = 1.0 / factor
        if resource == "compute":  # at the ComputePricer, so ring attention and TP-overlap chunks scale too
            self.compute = FasterCompute(hardware.device, training.precision, factor,
                                         attention_kernel_for(hardware.device, training))
        if resource == "host":
            self.host_dispatch_s *= self.scale

    def collective_time(self, op: Collective, group=None) -> float:
        """Seconds of a collective, scaled when it belongs to the resource."""
        t = super().collective_time(op, group)
        return t * self.scale if resource_of_axis(op.axis) == self.resource else t

    def p2p_time(self, nbytes: float) -> float:
        """Seconds of one pipeline send, scaled for pp_comm."""
        t = super().p2p_time(nbytes)
        return t * self.scale if self.resource == "pp_comm" else t

    def p2p_gather_time(self, nbytes: float) -> float:
        """Seconds of a scatter/gather send's all-gather, scaled for pp_comm (it is part of the send)."""
        t = super().p2p_gather_time(nbytes)
        return t * self.scale if self.resource == "pp_comm" else t

    def optimizer_time(self, params: float, pass_bytes: float = 0.0, tensors: float = 0.0, comm: tuple = ()) -> float:
        """Seconds of the optimizer step, scaled for optimizer."""
        t = super().optimizer_time(params, pass_bytes, tensors, comm)
        return t * self.scale if self.resource == "optimizer" else t


@dataclass(frozen=True, slots=True)
class Speedup:
    """What one resource made ``factor`` times faster does to the step."""

    resource: str
    label: str
    part: str  # the TimeBreakdown part the resource is booked in (links / network: their largest)
    booked_s: float  # that part's booked time in the base breakdown, s
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
    largest_comm = max(COMM_PARTS, key=lambda p: parts[p])
    out = []
    for resource in RESOURCES:
        if resource in PROFILE_KEY:
            faster = faster_profile(hardware, resource, factor)
            pricer = Pricer(faster, training, layout, gpus)
        else:
            pricer = FasterPricer(hardware, training, layout, gpus, resource, factor)
        t = fold(step, price_stages(step, pricer), hardware, gpus, peak).step_time_s
        part = PART_OF.get(resource, largest_comm)
        out.append(Speedup(resource=resource, label=LABELS[resource], part=part,
                           booked_s=parts[part], step_time_s=t,
                           saving=1.0 - t / base.step_time_s if base.step_time_s else 0.0))
    order = sorted(range(len(out)), key=lambda i: (-round(out[i].saving, 12), i))
    return BottleneckAnalysis(estimate=base, speedups=tuple(out[i] for i in order), factor=factor)


def faster_profile(hardware: HardwareProfile, resource: str, factor: float = FACTOR) -> HardwareProfile:
    """``hardware`` with the links or NICs of ``resource`` ``factor`` times faster: the very edit
    ``--set hardware.link_bandwidth=x2`` / ``hardware.nic_bandwidth=x2`` makes."""
    data = {"hardware": hardware.model_dump()}
    HARDWARE_EDITS[PROFILE_KEY[resource]](data, f"x{factor:g}", PROFILE_KEY[resource])
    return HardwareProfile.model_validate(data["hardware"])


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
    if top.resource in PART_OF:
        booked = f"booked {'as compute, ' if top.resource == 'host' else ''}{top.booked_s / total:.0%} of the step"
    else:  # links / NICs: their traffic is booked in several communication parts
        parts = analysis.estimate.time.model_dump()
        booked = "its traffic is booked in " + ", ".join(
            f"{p} {parts[p] / total:.0%}" for p in COMM_PARTS if parts[p] / total >= 0.005)
    text = f"Bottleneck: {top.label} — {k} faster saves {top.saving:.1%} of the step ({booked})"
    others = [s for s in analysis.speedups[1:] if s.saving > 0.001][:2]
    if others:
        text += "; next: " + ", ".join(f"{s.label} {s.saving:.1%}" for s in others)
    largest = max((s for s in analysis.speedups if s.resource in PART_RESOURCES), key=lambda s: s.booked_s)
    if largest.resource != top.resource and (largest.booked_s > top.booked_s or top.resource not in PART_OF):
        text += (f". {largest.label[0].upper() + largest.label[1:]} is booked the most ({largest.booked_s / total:.0%}) but 2x faster "
                 f"saves only {largest.saving:.1%}: the work it overlaps becomes the longer side")
    return text


__all__ = ["FACTOR", "HARDWARE_RESOURCES", "LABELS", "PART_OF", "PART_RESOURCES", "RESOURCES",
           "BottleneckAnalysis", "FasterCompute", "FasterPricer", "Speedup", "analyse", "analyse_scenario",
           "faster_profile", "resource_of_axis", "story"]
