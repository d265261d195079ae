"""Run the simulation of a scenario and fold what it observed into the ``Estimate`` schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from planner.cost.analytic import stage_memory
from planner.cost.result import Estimate, TimeBreakdown
from planner.errors import SpecError
from planner.pricing import Pricer
from planner.specs import check_layout
from planner.work.step import build_step

from .coarse import coarse_replay
from .engine import Engine
from .entities import SimPlan, build_plan
from .memory import MemoryTimeline, observed_stage_memory, stage_timeline
from .stragglers import slowest_replica


@dataclass(frozen=True)
class ResourceUse:
    """Busy fraction of one resource over the step."""

    resource: str
    busy_s: float
    utilisation: float
    mean_users: float = 1.0  # NICs: devices using it while busy; dp reduce: observed / priced time


@dataclass
class SimulationResult:
    """One simulated step (sample 0) and, with samples > 1, the spread of step times."""

    estimate: Estimate
    trace_events: list[dict]
    memory: list[MemoryTimeline]
    utilisation: list[ResourceUse]
    folded: list[str]
    events: int
    wall_s: float
    step_times: list[float] = field(default_factory=list)
    percentiles: dict[str, float] | None = None
    critical_stage: int = 0
    stragglers: list[str] = field(default_factory=list)  # what was slowed and which replica set the step
    stage_labels: dict[int, str] = field(default_factory=dict)  # stage -> what slows it (trace process names)

    def summary(self) -> dict:
        """JSON-ready summary (no trace events, memory curves as peaks)."""
        return {
            "estimate": self.estimate.model_dump(mode="json"),
            "critical_stage": self.critical_stage,
            "percentiles_s": self.percentiles, "step_times_s": self.step_times,
            "memory_peaks_bytes": [m.peak_bytes for m in self.memory],
            "utilisation": [u.__dict__ for u in self.utilisation],
            "folded_by_symmetry": self.folded, "events": self.events, "wall_s": self.wall_s,
            "stragglers": self.stragglers, "stage_labels": {str(k): v for k, v in self.stage_labels.items()},
        }


def plan_scenario(scenario) -> SimPlan:
    """Check the layout, describe the step (planner.work) and price it (planner.pricing)."""
    check_layout(scenario.layout, scenario.model, scenario.training, scenario.gpus)
    step = build_step(scenario.model, scenario.training, scenario.layout)
    pricer = Pricer(scenario.hardware, scenario.training, scenario.layout, scenario.gpus)
    return build_plan(step, pricer, scenario.hardware)


def _fold(plan: SimPlan, eng: Engine, scenario, overlap: bool, contention: bool) -> tuple[Estimate, int]:
    logs, step = eng.logs, plan.step
    busy = [lg.compute + lg.tp + lg.cp + lg.p2p + lg.zero3 + lg.offload for lg in logs]
    top = max(busy)  # the first stage within rounding of the busiest (coarse and fine pick the same)
    b = next(i for i, x in enumerate(busy) if x >= top * (1 - 1e-9))
    crit = logs[b]
    pipe_end = max(lg.pipe_end for lg in logs)
    finisher = max(range(len(logs)), key=lambda i: logs[i].finish)
    step_time = max(logs[finisher].finish, pipe_end)
    optimizer = plan.stages[finisher].optimizer if step_time > pipe_end else 0.0
    optimizer = min(optimizer, step_time - pipe_end)
    breakdown = TimeBreakdown(
        compute=crit.compute, tp_comm=crit.tp, cp_comm=crit.cp, pp_bubble=max(0.0, pipe_end - busy[b]), pp_comm=crit.p2p,
        dp_comm_exposed=crit.zero3 + max(0.0, step_time - pipe_end - optimizer), optimizer=optimizer,
        other=crit.offload,
    )
    analytic_mem = [stage_memory_of(plan, i) for i in range(len(logs))]
    memory = [observed_stage_memory(plan.stages[i], logs[i], analytic_mem[i]) for i in range(len(logs))]
    peak = max(memory, key=lambda s: s.peak_bytes)
    gpus, peak_flops = scenario.gpus, plan.pricer.compute.peak_flops
    notes = list(step.notes) + [
        f"simulated: overlap {'on' if overlap else 'off'}, NIC contention {'on' if contention else 'off'}; "
        f"critical stage {b}"]
    est = Estimate(
        engine="simulate", model=step.model.name, hardware=scenario.hardware.name, gpus=gpus,
        layout=step.layout, training=step.training, micro_batches=step.micro_batches,
        step_time_s=step_time, tokens_per_s=step.training.tokens_per_step / step_time,
        model_tflops_per_gpu=step.model_flops_per_step / step_time / gpus / 1e12,
        mfu=step.model_flops_per_step / step_time / gpus / peak_flops,
        hardware_tflops_per_gpu=step.hardware_flops_per_step / step_time / gpus / 1e12,
        hfu=step.hardware_flops_per_step / step_time / gpus / peak_flops,
        peak_tflops_per_gpu=peak_flops / 1e12, bubble_fraction=breakdown.pp_bubble / step_time,
        fits=all(s.fits for s in memory), memory=memory, peak_memory_bytes=peak.peak_bytes,
        time=breakdown, notes=notes,
    )
    return est, b


def stage_memory_of(plan: SimPlan, i: int):
    """Analytic StageMemory of stage ``i`` (planner.cost.analytic.stage_memory)."""
    return stage_memory(plan.step.stages[i], plan.pricer.hardware)


def _utilisation(eng: Engine, step_time: float) -> list[ResourceUse]:
    out = []
    for i, lg in enumerate(eng.logs):
        b = lg.compute + lg.tp + lg.cp + lg.p2p + lg.zero3
        out.append(ResourceUse(f"stage {i} compute stream", b, b / step_time))
        if lg.comm_busy:
            priced = sum(t.seconds for t in eng.plan.stages[i].dp_reduce)
            out.append(ResourceUse(f"stage {i} dp reduce", lg.comm_busy, lg.comm_busy / step_time,
                                   lg.comm_busy / priced if priced else 1.0))
    fab = eng.fabric
    dev_s = fab.device_seconds
    for key, busy in sorted(fab.busy.items()):
        if busy > 0:
            node, nic, dr = key
            out.append(ResourceUse(f"node {node} {nic} {dr}", busy, busy / step_time,
                                   dev_s[key] / busy))
    return out


def run(scenario, *, overlap: bool = True, contention: bool = True, jitter: float = 0.0, samples: int = 1,
        seed: int = 0, trace: bool = False, fine: bool = False,
        progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """Simulate one step of ``scenario``; with ``samples`` > 1 (and jitter) also p10/p50/p90.

    Without jitter or trace the steady-state cycle is replayed coarsely (``simulate.coarse``: three
    short pipelines, checked to be affine in the micro-batch count, extended to the step);
    ``fine=True`` replays every micro-batch. ``progress(done, samples)`` is called after each replay."""
    import time


    if jitter < 0:
        raise SpecError(f"jitter({jitter}) must be >= 0", field="--jitter")
    if samples < 1:
        raise SpecError(f"samples({samples}) must be >= 1", field="--samples")
    t0 = time.perf_counter()
    plan = plan_scenario(scenario)
    outcome = None
    if getattr(scenario, "stragglers", None) is not None and scenario.stragglers.active:
        outcome = slowest_replica(plan, scenario, overlap=overlap, contention=contention)
        plan = outcome.plan  # the replica the stragglers make slowest, its events stretched
    times, first, events = [], None, 0
    folded = list(plan.folded)
    if not fine and not trace and jitter == 0:
        first = coarse_replay(plan, overlap=overlap, contention=contention)
        if first is not None:
            events = first.events
            times = [max(max(lg.finish for lg in first.logs), max(lg.pipe_end for lg in first.logs))] * samples
            folded.append(
                f"steady-state cycle: {plan.step.micro_batches} micro-batches from replays of "
                f"{', '.join(map(str, first.replayed))} (every time and busy counter affine in the "
                "micro-batch count, checked); --fine replays them all")
    for k in range(samples if first is None else 0):
        eng = Engine(plan, overlap=overlap, contention=contention, jitter=jitter, seed=seed + k,
                     trace=trace and k == 0)
        eng.run()
        events += eng.events
        step_time = max(max(lg.finish for lg in eng.logs), max(lg.pipe_end for lg in eng.logs))
        times.append(step_time)
        if first is None:
            first = eng
        if progress is not None:
            progress(k + 1, samples)
    est, crit = _fold(plan, first, scenario, overlap, contention)
    pct = None
    if samples > 1:
        p10, p50, p90 = np.percentile(times, [10, 50, 90])
        pct = {"p10": float(p10), "p50": float(p50), "p90": float(p90)}
    return SimulationResult(
        estimate=est, trace_events=first.trace or [], critical_stage=crit,
        memory=[stage_timeline(plan.stages[i], lg) for i, lg in enumerate(first.logs)],
        utilisation=_utilisation(first, est.step_time_s), folded=folded, events=events,
        wall_s=time.perf_counter() - t0, step_times=times, percentiles=pct,
        stragglers=list(outcome.notes) if outcome else [], stage_labels=dict(outcome.stage_labels) if outcome else {},
    )


def simulate_estimate(scenario, *, overlap: bool = True, contention: bool = True, jitter: float = 0.0,
                      samples: int = 1, seed: int = 0, fine: bool = False) -> Estimate:
    """The simulated step as an ``Estimate`` (engine="simulate")."""
    return run(scenario, overlap=overlap, contention=contention, jitter=jitter, samples=samples,
               seed=seed, fine=fine).estimate
