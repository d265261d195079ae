"""The layout search: enumerate (planner.search.space), check memory first, price survivors with
planner.cost, rank. Every number comes from planner.work / planner.cost; this module only filters
and sorts.

Stages, cheapest first:

1. structures: degrees, split, schedule, sharding (planner.search.space);
2. memory (planner.search.scan): for each micro-batch size (ascending) and recompute (lightest first) build the step's
   stage records (planner.work.step_bytes: bytes, no op lists) and check the per-stage peak
   (planner.cost.peaks, what stage_memory reports) against the usable HBM; only a survivor gets
   its full step (planner.work.step.build_step: the same records with their op sets), for its bound
   and its price. Two pruning rules rest on invariants of the memory model (property-tested:
   activations held never shrink with a larger micro-batch or a lighter recompute):
   - if even the heaviest recompute does not fit at micro-batch b, larger b are not tried;
   - for each (structure, b) only the lightest recompute that fits is priced: heavier recompute only
     adds work to the same step, so it can never be faster (counted as "dominated").
   Only one stage per group of identical stages (same layers, blocks and states) is checked: the one
   holding the most micro-batches in flight.
3. price the survivors with planner.cost.estimate and rank by the objective, ties broken by the
   candidate key (deterministic). Survivors are priced in order of a lower bound on their step time
   (planner.cost.bound) and those that provably cannot show in the result are skipped
   (planner.search.bounded): the ranking, figures and explanation are those of pricing them all.
"""

from __future__ import annotations

import time

from ..cost import Estimate, estimate
from ..cost.bound import StagePriced, price_stages_bound
from ..errors import InfeasibleError, SpecError
from ..gc_pause import cyclic_gc_paused
from ..pricing.shared_blocks import shared_block_times
from ..specs import HardwareProfile, Layout, ModelSpec, TrainingSpec
from .bounded import price_in_bound_order
from .explain import explain, infeasible_message
from .memory_check import check_memory, usable_bytes  # noqa: F401 - re-exported
from .result import Plan, SearchResult, SearchStats
from .scan import Progress, gpu_counts, scan_memory
from .space import (
    Candidate,
    SearchConstraints,
    other_orders,
    tp_overlap_variants,
    validate_constraints,
)

#: Leading plans whose other rank orders and TP-overlap variants are priced (planner.search.space).
ORDER_VARIANTS_TOP = 24


def objective_key(objective: str, est: Estimate, gpus: int, cand: Candidate) -> tuple:
    """Sort key: smaller is better; ties broken by the candidate key."""
    cost = gpu_hours_per_mtok(est, gpus)
    if objective == "memory":
        return (est.peak_memory_bytes, -est.tokens_per_s, cand.key)
    if objective == "cost":
        return (cost, -est.tokens_per_s, cand.key)
    return (-est.tokens_per_s, est.peak_memory_bytes, cand.key)


def gpu_hours_per_mtok(est: Estimate, gpus: int) -> float:
    """GPU-hours spent per million tokens: gpus * step_time / 3600 / (tokens per step / 1e6)."""
    return gpus * est.step_time_s / 3600.0 / (est.training.tokens_per_step / 1e6)


def price(model: ModelSpec, hardware: HardwareProfile, cand: Candidate, usable: float, rank: int = 0,
          step=None, staged: StagePriced | None = None) -> Plan:
    """A Plan for ``cand``, priced by planner.cost.estimate (``step``: the StepWork its memory check
    built for exactly this layout and training, reused instead of rebuilt; ``staged``: its stages
    already priced by planner.cost.bound.price_stages_bound, folded into the same Estimate)."""
    if staged is not None:
        est = staged.estimate(hardware)
    else:
        est = estimate(model, hardware, cand.training, cand.layout, cand.gpus, step=step)
    return Plan(rank=rank, gpus=cand.gpus, layout=cand.layout, training=cand.training, estimate=est,
                usable_memory_bytes=usable, gpu_hours_per_mtok=gpu_hours_per_mtok(est, cand.gpus))


def _sieve(lay: Layout) -> tuple:
    """A few degrees of ``lay``: a cheap test before comparing whole Layouts."""
    return lay.tp, lay.pp, lay.dp, lay.cp, lay.vpp, lay.ep


def search(model: ModelSpec, hardware: HardwareProfile, gpus: int, training: TrainingSpec,
           constraints: SearchConstraints | None = None, *, top: int = 10,
           progress: Progress | None = None, reference: Layout | None = None,
           reference_training: TrainingSpec | None = None, workers: int = 1) -> SearchResult:
    """Search the layout space; raise InfeasibleError (exit 1) when nothing fits.

    ``training`` fixes sequence, global batch, precision and recipe; micro-batch and recompute
    are searched unless pinned in ``constraints``. ``reference`` (optional) is priced with the
    same model for comparison (``reference_training`` defaults to ``training``). ``workers`` > 1
    scans and prices in that many processes; the result does not depend on it. Pricers of the
    search share block times (planner.pricing.shared_blocks)."""
    with shared_block_times(), cyclic_gc_paused():
        return _search(model, hardware, gpus, training, constraints, top=top, progress=progress,
                       reference=reference, reference_training=reference_training, workers=workers)


def _search(model, hardware, gpus, training, constraints, *, top, progress, reference, reference_training,
            workers) -> SearchResult:
    c = constraints or SearchConstraints()
    validate_constraints(model, hardware, gpus, training, c)
    t0 = time.perf_counter()
    usable = usable_bytes(hardware, c.memory_headroom)
    if workers < 1:
        raise SpecError(f"workers({workers}) must be >= 1", field="--workers")
    scan = scan_memory(model, hardware, gpu_counts(gpus, hardware, c.objective), training, c, progress,
                       workers=workers)
    if not scan.survivors:
        msg, details = infeasible_message(model, hardware, gpus, training, c, scan)
        raise InfeasibleError(msg, details=details)
    priced: list[tuple[tuple, Plan]] = []
    seen: set[tuple] = set()
    unique = []
    for cand in scan.survivors:
        if cand.key not in seen:
            seen.add(cand.key)
            unique.append(cand)
    steps = scan.steps or {}

    staged: dict[tuple, StagePriced] = {}

    def stage_bound(cand: Candidate) -> float:
        staged[cand.key] = got = price_stages_bound(model, hardware, cand.training, cand.layout, cand.gpus,
                                                    steps.get(cand.key))
        return got.bound_s

    def price_fit(cand: Candidate) -> Plan | None:
        plan = price(model, hardware, cand, usable, step=steps.get(cand.key), staged=staged.pop(cand.key, None))
        if plan.estimate.peak_memory_bytes > usable:  # full estimate disagrees with the quick check
            scan.counts.memory += 1
            return None
        return plan

    def first_key(cand: Candidate, plan: Plan) -> float:
        return objective_key(c.objective, plan.estimate, cand.gpus, cand)[0]

    # serial whatever ``workers``: which candidates are skipped depends on the plans priced before them
    run = price_in_bound_order(unique, [scan.bounds[cand.key][0] for cand in unique], c.objective,
                               max(top, ORDER_VARIANTS_TOP), price_fit, first_key, stage_bound)
    priced = [(objective_key(c.objective, plan.estimate, cand.gpus, cand), plan) for cand, plan in run.priced
              if plan is not None]
    priced.sort(key=lambda kp: kp[0])
    for _, lead in priced[:ORDER_VARIANTS_TOP]:  # other rank orders / TP overlap of the leading plans
        base = Candidate(lead.layout, lead.training, lead.gpus)
        orders = other_orders(base, hardware, c)
        for alt in orders + [v for o in (base, *orders) for v in tp_overlap_variants(o, c)]:
            plan = price(model, hardware, alt, usable)
            priced.append((objective_key(c.objective, plan.estimate, alt.gpus, alt), plan))
    priced.sort(key=lambda kp: kp[0])
    top_plan = priced[0][1] if priced else None  # the bubble lesson (explain) reads every plan of its layout
    head = top_plan and (top_plan.gpus, _sieve(top_plan.layout))
    same = [head == (s.gpus, _sieve(s.layout)) and s.layout == top_plan.layout for s in run.skipped]
    for cand in [s for s, hit in zip(run.skipped, same) if hit]:
        plan = price_fit(cand)
        if plan is not None:
            priced.append((objective_key(c.objective, plan.estimate, cand.gpus, cand), plan))
    priced.sort(key=lambda kp: kp[0])
    run.skipped = [s for s, hit in zip(run.skipped, same) if not hit]
    unpriced = sum(1 for s in run.skipped if scan.bounds[s.key][1] <= usable)  # feasible, cannot rank
    scan.counts.memory += len(run.skipped) - unpriced
    ordered = [p for _, p in priced]
    ranked = [p.model_copy(update={"rank": i + 1}) for i, p in enumerate(ordered[:max(top, 1)])]  # the shown ones
    elapsed = time.perf_counter() - t0
    ref_plan = None
    if reference is not None:
        ref_cand = Candidate(reference, reference_training or training, reference.gpus)
        ref_plan = price(model, hardware, ref_cand, usable)
    stats = SearchStats(
        structures=scan.structures, memory_checked=scan.checked, priced=len(priced), bounded=unpriced,
        rejected={"memory": scan.counts.memory, "invalid": scan.counts.invalid,
                  "constraint": scan.counts.constraint, "dominated": scan.counts.dominated},
        elapsed_s=elapsed)
    return SearchResult(
        model=model.name, hardware=hardware.name, gpus=gpus, objective=c.objective, plans=ranked[:top],
        best=ranked[0], total_feasible=len(ordered) + unpriced, stats=stats, reference=ref_plan,
        explanation=explain(ordered, ref_plan, hardware, c))  # explain reads no rank
