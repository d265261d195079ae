"""Stages 1 and 2 of the layout search (planner.search.engine): enumerate the structures and keep the
candidates whose memory fits, the lightest fitting recompute per micro-batch, with each survivor's step-time
lower bound; the closest misses per category for the infeasible message (planner.search.explain). Bytes
from planner.work via the memory check; no formula here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..cost.bound import step_time_lower_bound
from ..frameworks import refusing_rule
from ..specs import HardwareProfile, ModelSpec, TrainingSpec, check_layout
from ..work.step import build_step
from .memory_check import MemoryCheck, check_memory, usable_bytes
from .offload_search import offload_fit
from .parallel import parallel_map, slices
from .space import (
    Candidate,
    Counts,
    SearchConstraints,
    Structure,
    micro_batch_sizes,
    pinned_order,
    recompute_options,
    structures,
)

Progress = Callable[[int, int], None]


def gpu_counts(gpus: int, hardware: HardwareProfile, objective: str) -> list[int]:
    """GPU counts searched: the offered count; for the cost objective also 1/2, 1/4, 1/8 of it
    (whole nodes), since fewer GPUs often spend fewer GPU-hours per token."""
    if objective != "cost":
        return [gpus]
    node = hardware.node.devices_per_node
    out = [gpus]
    for k in (2, 4, 8):
        g = gpus // k
        if gpus % k == 0 and g >= 1 and (g % node == 0 or g < node):
            out.append(g)
    return out


@dataclass
class _Scan:
    """Outcome of the memory stage."""

    survivors: list[Candidate]
    closest: dict[str, MemoryCheck]  # smallest-shortfall non-fitting candidate per category ('any', ...)
    structures: int
    checked: int
    counts: Counts
    steps: dict = None  # candidate key -> the StepWork built after its memory check (serial scan only)
    bounds: dict = None  # candidate key -> (step-time lower bound s, memory-check peak bytes)


def scan_memory(model: ModelSpec, hardware: HardwareProfile, gpus_list: list[int], training: TrainingSpec,
                c: SearchConstraints, progress: Progress | None = None, stop_at_first: bool = False,
                workers: int = 1) -> _Scan:
    """Stages 1 and 2: enumerate and keep what fits (lightest fitting recompute per micro-batch).

    ``workers`` > 1 scans contiguous slices of the structures in worker processes and merges them
    in structure order, so the result is the serial one whatever the worker count."""
    counts = Counts()
    structs: list[Structure] = []
    for g in gpus_list:
        structs += structures(model, hardware, g, training, c, counts)
    if workers > 1 and not stop_at_first and len(structs) > 1:
        parts = parallel_map(_scan_part, [(model, hardware, part, training, c) for part in
                                          slices(structs, workers)], workers)
        if progress:
            progress(len(structs), len(structs))
        survivors, closest, checked, bounds = [], {}, 0, {}
        for part in parts:
            survivors += part.survivors
            for k, v in part.bounds.items():  # first occurrence wins, as in the serial scan
                bounds.setdefault(k, v)
            checked += part.checked
            for name in ("invalid", "constraint", "memory", "dominated"):
                setattr(counts, name, getattr(counts, name) + getattr(part.counts, name))
            for rule, (n, source, reason) in part.counts.framework.items():  # constraint holds them already
                counts.framework.setdefault(rule, [0, source, reason])[0] += n
            for mc in part.closest_order:  # replayed in scan order: the serial tie-break
                _keep_closest(closest, mc)
        return _Scan(survivors, closest, len(structs), checked, counts, None, bounds)
    part = _scan_structures(model, hardware, structs, training, c, counts, progress, stop_at_first)
    return _Scan(part.survivors, part.closest, len(structs), part.checked, counts, part.steps, part.bounds)


@dataclass
class _Part:
    """Outcome of the memory stage over a slice of the structures."""

    survivors: list[Candidate]
    closest: dict[str, MemoryCheck]
    closest_order: list[MemoryCheck]  # every check that improved ``closest``, in scan order
    checked: int
    counts: Counts
    steps: dict = None  # candidate key -> StepWork built after its memory check (not sent back by workers)
    bounds: dict = None  # candidate key -> (step-time lower bound s, memory-check peak bytes)


def _scan_part(model, hardware, structs, training, c) -> _Part:
    part = _scan_structures(model, hardware, structs, training, c, Counts(), None, False)
    part.steps = None  # cheaper to rebuild in the parent than to pickle
    return part


def _scan_structures(model: ModelSpec, hardware: HardwareProfile, structs: list[Structure], training: TrainingSpec,
                     c: SearchConstraints, counts: Counts, progress: Progress | None, stop_at_first: bool) -> _Part:
    usable = usable_bytes(hardware, c.memory_headroom)
    survivors: list[Candidate] = []
    closest: dict[str, MemoryCheck] = {}
    order: list[MemoryCheck] = []
    steps: dict = {}
    bounds: dict = {}
    timed = c.objective != "memory"  # the memory objective prices every survivor (planner.search.bounded)

    def keep(survivor: Candidate, mc: MemoryCheck) -> None:
        """The survivor's bound and, when it is the checked candidate itself, its StepWork (built only for
        survivors: the memory check reads no op list)."""
        key, checked_one = survivor.key, survivor is mc.candidate  # same layout and training: price this step
        if key in bounds and (not checked_one or key in steps):
            return
        step = build_step(model, mc.candidate.training, mc.candidate.layout)
        if key not in bounds:  # a pinned rank order changes neither compute nor memory
            bounds[key] = (step_time_lower_bound(step, hardware) if timed else 0.0, mc.peak_bytes)
        if checked_one:
            steps.setdefault(key, step)
    trainings: dict[tuple, TrainingSpec] = {}
    checked = 0
    recomputes = recompute_options(c, training)
    for i, st in enumerate(structs):
        if progress:
            progress(i, len(structs))
        sizes = micro_batch_sizes(training, st.layout.dp, c)
        if not sizes:
            counts.invalid += 1
            continue
        for bi, b in enumerate(sizes):
            fitted = offloaded = False
            for ri, rc in enumerate(recomputes):
                trn = trainings.get((b, rc))
                if trn is None:  # one TrainingSpec per (micro-batch, recompute), shared by every structure
                    trn = trainings[(b, rc)] = training.replace(micro_batch_size=b, recompute=rc)
                cand = Candidate(st.layout, trn, st.gpus)
                try:
                    check_layout(cand.layout, model, cand.training, cand.gpus)
                except ValueError:
                    counts.invalid += 1
                    continue
                hit = c.framework and refusing_rule(c.framework, model, cand.training, cand.layout,
                                                    c.framework_model_rules)
                if hit:  # the target framework cannot launch it
                    counts.add_framework(hit[0].name, hit[0].source, hit[1])
                    continue
                mc = check_memory(model, hardware, cand, usable)
                checked += 1
                if mc.fits:
                    survivor = pinned_order(cand, c)
                    survivors.append(survivor)
                    keep(survivor, mc)
                    counts.dominated += len(recomputes) - ri - 1
                    fitted = True
                    break
                counts.memory += 1
                if _keep_closest(closest, mc):
                    order.append(mc)
                if not offloaded:  # offload only where it is needed to fit (planner.search.offload_search)
                    trial, trial_mc = offload_fit(model, hardware, cand, usable, c, check_memory, mc)
                    if trial is not None:
                        survivor = pinned_order(trial, c)
                        survivors.append(survivor)
                        keep(survivor, trial_mc)
                        offloaded = True
            if (fitted or offloaded) and stop_at_first:
                return _Part(survivors, closest, order, checked, counts, steps, bounds)
            if not fitted:  # larger micro-batches hold more: cut them (an offload-only fit does not extend)
                counts.memory += (len(sizes) - bi - 1) * len(recomputes)
                break
    if progress:
        progress(len(structs), len(structs))
    return _Part(survivors, closest, order, checked, counts, steps, bounds)


def _keep_closest(closest: dict[str, MemoryCheck], mc: MemoryCheck) -> bool:
    """Keep ``mc`` as the closest miss of its categories; True when it was kept in any."""
    lay, trn = mc.candidate.layout, mc.candidate.training
    cats = ["any", f"recompute:{trn.recompute}", f"zero:{lay.effective_zero_stage}"]
    kept = False
    for cat in cats:
        if cat not in closest or mc.shortfall_bytes < closest[cat].shortfall_bytes:
            closest[cat] = mc
            kept = True
    return kept
