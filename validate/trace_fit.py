"""Fit pricing parameters from traced jobs (planner.trace): what each class of op took, measured in the job
itself, set against the cost model's own definitions (planner.pricing). Torch-free; needs pandas + HTA only
to read the traces (the fit works on what planner.trace.measure extracted).

In this order, each from its own measurements (seconds per step are the mean over ranks of the median step):
  dispatch d       per-op fixed time inside an op: median time of the smallest tenth of memory-bound ops
  GEMM efficiency  2mnk / ((t - d) * peak) per recorded GEMM, binned by size (validate.fit_microbench)
  attention        executed FLOPs / ((t - d) * peak), forward and backward medians (and per head dim and
                   sequence, the profile's attention table points, when it prices attention from a table)
  memory classes   sum bytes / sum (t - d) per class (and over all classes for memory_efficiency)
  optimizer        (params + pass bytes / 28) / optimizer seconds (ComputePricer.optimizer_time inverted)
  host per kernel  the job's host time (CPU: Python, autograd and DTensor dispatch between ops; GPU: none)
                   over the kernels the cost model counts for it, pooled: kernel_overhead_us = d + host/kernel
  collectives      per-call seconds (class seconds / calls, both measured) against the pricer's alpha-beta
                   time of that call (Hockney 1994; planner.pricing.collectives.level_time), least squares on
                   log errors over the latency (and the efficiency when a call moves >= 1 MB), per tier: the
                   inter-node latency / efficiency too when some call's group spans nodes
  send/recv        the pipeline jobs' time waiting in send/recv against the model's pp_comm + pp_bubble:
                   p2p latency by least squares on log errors (the bubble is the schedule's, not fitted)
Every fitted value is a field of the hardware profile: it applies to every prediction, no per-layout factor.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.cost import estimate
from planner.errors import SpecError
from planner.pricing.collectives import CollectivePricer
from planner.pricing.compute import ADAMW_BYTES_PER_PARAM
from planner.pricing.placement import GroupPlacement
from planner.specs import HardwareProfile, Layout, ModelSpec, TrainingSpec
from planner.trace.classes import ATTENTION, COMM_PREFIX, GEMM, OPTIMIZER, is_memory_class
from planner.trace.compare import predicted_classes
from planner.trace.measure import HOST
from planner.trace.run import TracedRun
from planner.work.ops import Attention, KernelClass
from planner.work.step import build_step

from .fit_microbench import gemm_efficiency_overlay
from .lsq import least_squares_log
from .results import SIDECAR

MEMORY_CLASSES = set(KernelClass.__args__)
MIN_CLASS_SAMPLES = 20
LOG10_US_BOUNDS = (-1.0, 5.0)  # latencies fitted between 0.1 us and 100 ms (log10 us)
BANDWIDTH_FIT_BYTES = 1 << 20  # collectives moving at least this much pin the efficiency, not only alpha


@dataclass
class TracedJob:
    """A traced job and the scenario it ran (model, training recipe, layout)."""

    name: str
    model: ModelSpec
    training: TrainingSpec
    layout: Layout
    run: TracedRun
    folder: str
    untraced_step_s: float | None = None
    untraced_range_s: tuple[float, float] | None = None
    backend: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def step_min_s(self) -> float:
        """Fastest step (untraced where known), s."""
        return self.untraced_range_s[0] if self.untraced_range_s else min(self.run.step_times())

    @property
    def step_max_s(self) -> float:
        """Slowest step (untraced where known), s."""
        return self.untraced_range_s[1] if self.untraced_range_s else max(self.run.step_times())

    @property
    def measured_step_s(self) -> float:
        """The job's step time: untraced where known (the validator times steps without the profiler too),
        else the traced steps' median, s."""
        return self.untraced_step_s or self.run.step_s


def read_sidecar(folder: Path) -> dict[str, Any] | None:
    """The validator's job description next to its traces, None when there is none."""
    path = Path(folder) / SIDECAR
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: unreadable ({exc})", field="trace") from None


def predict(job: TracedJob, profile: HardwareProfile):
    """The cost model's estimate (with the per-class breakdown) of ``job`` on ``profile``."""
    return estimate(job.model, profile, job.training, job.layout, breakdown=True)


def _net(t: float, d: float) -> float:
    """``t`` less the per-op time ``d``, kept at >= 10 % of ``t`` (an op never takes no time)."""
    return max(t - d, 0.1 * t)


def fit_dispatch(memory: list[tuple[str, float, float]]) -> float:
    """Per-op fixed seconds d inside an op (dispatch on a CPU, the launch floor of a tiny kernel on a GPU): the
    median time of the memory-bound ops in the smallest tenth by bytes, whose data takes next to no time."""
    if not memory:
        return 0.0
    ranked = sorted(memory, key=lambda m: m[1])
    return max(float(statistics.median(t for _, _, t in ranked[:max(1, len(ranked) // 10)])), 0.0)


def fit_compute(jobs: list[TracedJob], base: HardwareProfile, notes: list[str]) -> dict[str, Any]:
    """Device fields from the traced ops of every job: dispatch, GEMM curve, attention, memory classes."""
    samples = [j.run.samples() for j in jobs]
    memory = [m for s in samples for m in s.memory if m[1] > 0]
    d = fit_dispatch(memory)
    dev = base.device
    peak = dev.peak_tflops.for_dtype("fp16" if jobs[0].training.precision == "fp16" else "bf16") * 1e12
    out: dict[str, Any] = {}
    gemm = [(2.0 * m * n * k * b / 1e9, 2.0 * m * n * k * b / (_net(t, d) * peak), min(m, n, k))
            for s in samples for m, n, k, b, t in s.gemm]
    if gemm:
        out["device.gemm_efficiency"] = gemm_efficiency_overlay(gemm, notes)
    fwd, bwd = [], []
    points: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    for s in samples:
        for bh, seq, hd, backward, t in s.attention:
            op = Attention("attn", bh, seq, seq, hd, "bwd_input" if backward else "fwd")
            eff = op.executed_flops / (_net(t, d) * peak)
            (bwd if backward else fwd).append(eff)
            points.setdefault((hd, seq), ([], []))[1 if backward else 0].append(eff)
    if fwd:
        out["device.attention_efficiency"] = min(1.0, statistics.median(fwd))
    if bwd:
        out["device.attention_backward_efficiency"] = min(1.0, statistics.median(bwd))
    table = [{"head_dim": hd, "seq": seq, "forward": round(min(1.0, statistics.median(f)), 6),
              "backward": round(min(1.0, statistics.median(b)), 6)}
             for (hd, seq), (f, b) in sorted(points.items()) if f and b]
    if table and dev.attention_table:  # the profile prices attention from its table: measured points replace it
        out["device.attention_table"] = table
    if memory:
        bw = sum(b for _, b, _ in memory) / sum(_net(t, d) for _, _, t in memory)
        hbm = dev.hbm_bandwidth_gbps * 1e9
        if bw > hbm:
            out["device.hbm_bandwidth_gbps"], hbm = bw / 1e9, bw
            notes.append(f"measured memory-bound bandwidth {bw / 1e9:.1f} GB/s exceeds the base figure; peak raised")
        out["device.memory_efficiency"] = min(1.0, bw / hbm)
        per_class = {}
        for cls in sorted({c for c, _, _ in memory} & MEMORY_CLASSES):
            ops = [(b, t) for c, b, t in memory if c == cls]
            if len(ops) >= MIN_CLASS_SAMPLES:
                per_class[cls] = round(min(1.0, sum(b for b, _ in ops) / sum(_net(t, d) for _, t in ops) / hbm), 6)
        if per_class:
            out["device.memory_class_efficiency"] = per_class
    out["device.kernel_overhead_us"] = d * 1e6
    return out


def fit_optimizer(jobs: list[TracedJob]) -> float | None:
    """Adam parameters per second from the optimizer seconds of every job (None when none shows one)."""
    work = seconds = 0.0
    for j in jobs:
        t = j.run.classes().get(OPTIMIZER, 0.0)
        if t <= 0:
            continue
        stage = max(build_step(j.model, j.training, j.layout).stages, key=lambda s: s.optimizer_params)
        work += stage.optimizer_params + stage.optimizer_pass_bytes / ADAMW_BYTES_PER_PARAM
        seconds += t
    return work / seconds if seconds else None


def compute_kernels(estimate) -> int:
    """Kernels the cost model charges its per-kernel cost for in one step of the busiest stage (every class
    but communication and the optimizer step, which is priced by its rate alone)."""
    return sum(c.kernels for c in estimate.ops.classes if not c.kind.startswith(COMM_PREFIX) and c.kind != OPTIMIZER)


def fit_host(jobs: list[TracedJob], profile_of) -> tuple[float, float] | None:
    """Host seconds per priced kernel and per collective call, (o, h): least squares of host_L = o * K_L + h * C_L
    over the jobs (K: kernels the cost model prices for the job, C: collective calls the trace shows: DTensor
    and FSDP do Python work around every call), each job's misfit divided by its step time (so the fit
    minimises the step-time error the host terms leave), o, h >= 0. None without host time."""
    rows = []
    for j in jobs:
        host = j.run.classes().get(HOST, 0.0)
        calls = sum(n for c, n in j.run.counts().items() if c.startswith(COMM_PREFIX) and c != COMM_PREFIX + "send-recv")
        if host > 0:
            rows.append((compute_kernels(predict(j, profile_of())), calls, host, j.measured_step_s))
    if not rows:
        return None
    return nonnegative_fit([(k / t, c / t) for k, c, _y, t in rows], [y / t for _k, _c, y, t in rows])


def nonnegative_fit(xs: list[tuple[float, float]], ys: list[float]) -> tuple[float, float]:
    """Least squares ys ~ a * x0 + b * x1 with a, b >= 0 (one of them 0 when the free optimum is negative)."""
    s00 = sum(x0 * x0 for x0, _ in xs)
    s01 = sum(x0 * x1 for x0, x1 in xs)
    s11 = sum(x1 * x1 for _, x1 in xs)
    t0 = sum(x0 * y for (x0, _), y in zip(xs, ys))
    t1 = sum(x1 * y for (_, x1), y in zip(xs, ys))
    det = s00 * s11 - s01 * s01
    if det > 1e-12 * max(s00 * s11, 1e-300):
        a, b = (t0 * s11 - t1 * s01) / det, (t1 * s00 - t0 * s01) / det
        if a >= 0 and b >= 0:
            return a, b
    only_a = (t0 / s00 if s00 else 0.0, 0.0)
    only_b = (0.0, t1 / s11 if s11 else 0.0)

    def cost(ab: tuple[float, float]) -> float:
        return sum((ab[0] * x0 + ab[1] * x1 - y) ** 2 for (x0, x1), y in zip(xs, ys))

    return min((max(only_a[0], 0.0), 0.0), (0.0, max(only_b[1], 0.0)), key=cost)


def group_of(size: int, profile: HardwareProfile) -> GroupPlacement:
    """A group of ``size`` consecutive ranks placed on ``profile``'s nodes."""
    per = profile.node.devices_per_node
    inside = min(size, per)
    nodes = max(1, math.ceil(size / per))
    return GroupPlacement(size=size, stride=1, ranks_per_node=inside, nodes=nodes,
                          node_devices=tuple(range(inside)), span_nodes=nodes)


def comm_calls(job: TracedJob, host_per_call_s: float = 0.0) -> list[tuple[str, float, int, float]]:
    """(kind, bytes per call, group size, seconds per call) of each collective kind the job ran (send/recv
    apart): class seconds over calls, both from the trace, plus the host seconds each call costs around it;
    bytes the mean of the recorded calls; the group from the trace where recorded, else the job's one
    parallel degree above 1 (else its rank count)."""
    classes, counts = job.run.classes(), job.run.counts()
    degrees = [d for d in (job.layout.tp, job.layout.dp, job.layout.cp) if d > 1]
    default_group = degrees[0] if len(degrees) == 1 else job.layout.gpus
    samples = job.run.samples().comm
    out = []
    for cls, seconds in classes.items():
        kind = cls[len(COMM_PREFIX):] if cls.startswith(COMM_PREFIX) else None
        if kind not in ("all-reduce", "all-gather", "reduce-scatter", "all-to-all") or not counts.get(cls):
            continue
        mine = [s for s in samples if s[0] == kind]
        nbytes = max(statistics.fmean(s[1] for s in mine) if mine else 0.0, 1.0)  # unrecorded: latency only
        group = max((s[2] for s in mine), default=0) or default_group
        if group > 1:
            out.append((kind, nbytes, group, seconds / counts[cls] + host_per_call_s))
    return out


def fit_collective_latency(jobs: list[TracedJob], profile_of, host_per_call_s: float = 0.0) -> dict[str, float]:
    """``node.collective_latency_us`` (and ``node.collective_efficiency`` when some call moves >= 1 MB) by least
    squares on log(priced / measured) per collective call (its wait plus ``host_per_call_s``)."""
    calls = [c for j in jobs for c in comm_calls(j, host_per_call_s)]
    if not calls:
        return {}
    base = profile_of()
    per_node = base.node.devices_per_node
    start = {"node.collective_latency_us": base.node.collective_latency_us,
             "node.collective_efficiency": base.node.collective_efficiency,
             "network.latency_us": base.network.latency_us, "network.efficiency": base.network.efficiency}
    big = any(c[1] >= BANDWIDTH_FIT_BYTES for c in calls)
    paths = ["node.collective_latency_us"] + (["node.collective_efficiency"] if big else [])
    if any(c[2] > per_node for c in calls):  # calls that span nodes pin the inter-node tier too
        paths += ["network.latency_us"] + (["network.efficiency"] if big else [])
    nodes = max(1, math.ceil(max(c[2] for c in calls) / per_node))

    def residuals(x: list[float]) -> list[float]:
        prof = profile_of({p: 10 ** v for p, v in zip(paths, x)})
        pricer = CollectivePricer(prof, nodes)
        return [math.log(pricer.time(kind, nbytes, group_of(g, prof)) / t) for kind, nbytes, g, t in calls]

    bounds = {"node.collective_efficiency": (-4.0, math.log10(1.2)), "network.efficiency": (-4.0, 0.0)}
    best = least_squares_log(residuals, [math.log10(max(start[p], 0.1 if "latency" in p else 1e-4)) for p in paths],
                             [bounds.get(p, LOG10_US_BOUNDS) for p in paths])
    out = {p: 10 ** v for p, v in zip(paths, best)}
    return out


def pipeline_wait(job: TracedJob) -> float:
    """Seconds per step the job spent waiting in send/recv (transfers and the pipeline bubble)."""
    return job.run.classes().get(COMM_PREFIX + "send-recv", 0.0)


def fit_p2p_latency(jobs: list[TracedJob], profile_of) -> dict[str, float]:
    """``node.p2p_latency_us`` so the pipeline jobs' priced pp_comm + pp_bubble match their send/recv wait."""
    pipes = [j for j in jobs if j.layout.pp > 1 and pipeline_wait(j) > 0]
    if not pipes:
        return {}
    base = profile_of()
    start = base.node.p2p_latency_us if base.node.p2p_latency_us is not None else base.node.collective_latency_us

    def residuals(x: list[float]) -> list[float]:
        prof = profile_of({"node.p2p_latency_us": 10 ** x[0]})
        out = []
        for j in pipes:
            t = predict(j, prof).time
            out.append(math.log(max(t.pp_comm + t.pp_bubble, 1e-9) / pipeline_wait(j)))
        return out

    best = least_squares_log(residuals, [math.log10(max(start, 0.1))], LOG10_US_BOUNDS)
    return {"node.p2p_latency_us": 10 ** best[0]}


def measured_classes(job: TracedJob) -> dict[str, float]:
    """The job's measured seconds per step by class (mean over ranks of the medians)."""
    return job.run.classes()


def class_groups(classes: dict[str, float]) -> dict[str, float]:
    """Seconds folded into the groups both sides know: gemm, attention, memory-bound, optimizer, each
    collective kind, host, idle (and conv, which only a trace has)."""
    out: dict[str, float] = {}
    for c, v in classes.items():
        key = c if c in (GEMM, ATTENTION, OPTIMIZER, HOST) or c.startswith(COMM_PREFIX) else (
            "memory-bound" if is_memory_class(c) else c)
        out[key] = out.get(key, 0.0) + v
    return out


def predicted_groups(estimate) -> dict[str, float]:
    """The estimate's seconds per step in the groups of ``class_groups`` (planner.trace.compare.predicted_classes:
    its per-kernel-class breakdown, per-op overhead included, and the pipeline's transfers and bubble)."""
    return class_groups({k: s for k, (s, _n) in predicted_classes(estimate).items()})
