"""Where each traced step's time went on one rank, by op class, plus the per-op samples a fit needs.

GPU traces (kernels on device streams): each kernel's duration goes to its class (planner.trace.classes);
per step the device is busy (union of kernels), communicating with compute running (overlapped), only
communicating (exposed), or idle (nothing running: host-bound or waiting for a peer). A kernel launched
inside ``Optimizer.step#`` is the optimizer's; GEMM / attention kernels take the shapes of the ATen
operator that launched them.

CPU traces (a gloo run, no device activity): the ops run on the thread that holds ``ProfilerStep#<k>``.
Each event's own time (its duration less its children's) goes to its class; a view or allocation inside a
classified op is that op's; wrappers that move no data (autograd nodes, DTensor dispatch, ``aten::linear``)
and the gaps between ops are ``host`` time, except gaps while a backend thread runs a collective
(``gloo:…``), which are that collective's wait, and a gap right after a point-to-point op, which is that op's
wait (gloo's isend / irecv works block in ``Work.wait()``, which records no event: torch.distributed.pipelining
waits on them as soon as they are posted, ``_wait_batch_p2p``, so a pipeline's bubble shows as that gap).
Everything inside ``Optimizer.step#`` but communication is ``optimizer``. The classes of a step add up to its
duration. Times in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .classes import (
    ATTENTION,
    COMM_ANNOTATION,
    COMM_PREFIX,
    GEMM,
    GEMM_OPS,
    GPU_CATEGORIES,
    METADATA_OPS,
    OPTIMIZER,
    OPTIMIZER_ANNOTATION,
    STEP_ANNOTATION,
    WAIT_OPS,
    comm_kind,
    cpu_op_class,
    gpu_kernel_class,
)

if TYPE_CHECKING:  # the reader needs HTA; measuring needs only its tables
    from .read import RankTrace

HOST = "host"
P2P = COMM_PREFIX + "send-recv"
IDLE = "idle"
DTYPE_BYTES = {"float": 4, "c10::Half": 2, "c10::BFloat16": 2, "double": 8, "long int": 8, "int": 4,
               "bool": 1, "unsigned char": 1, "signed char": 1, "short int": 2, "c10::Float8_e4m3fn": 1,
               "c10::Float8_e5m2": 1}


@dataclass
class StepMeasure:
    """One step of one rank: its duration and the seconds / op counts of every class (they sum to it)."""

    step: int
    seconds: float
    classes: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    comm_exposed_s: float = 0.0
    comm_overlapped_s: float = 0.0


@dataclass
class Samples:
    """Per-op measurements of one rank's traced steps (seconds each): GEMMs (m, n, k, batch), fused
    attention (batch x heads, sequence, head dim, backward?), memory-bound ops (class, bytes) and
    collectives (kind, bytes, group size)."""

    gemm: list[tuple[int, int, int, int, float]] = field(default_factory=list)
    attention: list[tuple[int, int, int, bool, float]] = field(default_factory=list)
    memory: list[tuple[str, float, float]] = field(default_factory=list)
    comm: list[tuple[str, float, int, float]] = field(default_factory=list)


@dataclass
class RankMeasure:
    """Every traced step of one rank, and its samples."""

    rank: int
    device: str
    steps: list[StepMeasure]
    samples: Samples


def _prod(dims) -> int:
    return int(math.prod(dims)) if dims else 1


def tensor_bytes(dims, types) -> float:
    """Bytes of the tensor arguments of an op from its recorded shapes and dtypes (lists of tensors
    count every element)."""
    total = 0.0
    if not isinstance(dims, (list, tuple)):
        return 0.0
    types = types if isinstance(types, (list, tuple)) else [None] * len(dims)
    for d, t in zip(dims, types):
        if not isinstance(d, list) or not d:
            continue
        size = DTYPE_BYTES.get(t, 4) if isinstance(t, str) else 4
        total += sum(_prod(x) for x in d) * size if isinstance(d[0], list) else _prod(d) * size
    return total


def gemm_shape(name: str, dims) -> tuple[int, int, int, int] | None:
    """(m, n, k, batch) of an ATen GEMM from its input shapes, None when they are not recorded."""
    try:
        if name in ("aten::mm", "aten::_scaled_mm"):
            (m, k), (_, n) = dims[0], dims[1]
            return m, n, k, 1
        if name in ("aten::addmm", "aten::_addmm_activation"):
            (m, k), (_, n) = dims[1], dims[2]
            return m, n, k, 1
        if name == "aten::bmm":
            (b, m, k), (_, _, n) = dims[0], dims[1]
            return m, n, k, b
        if name == "aten::baddbmm":
            (b, m, k), (_, _, n) = dims[1], dims[2]
            return m, n, k, b
    except (TypeError, ValueError, IndexError):
        return None
    return None


def attention_shape(dims) -> tuple[int, int, int] | None:
    """(batch x heads, sequence, head dim) of a fused attention op whose first input is (b, h, s, d)."""
    try:
        b, h, s, d = dims[0]
        return b * h, s, d
    except (TypeError, ValueError, IndexError):
        return None


def _steps(df: pd.DataFrame) -> list[tuple[int, float, float, int]]:
    """(iteration, start us, end us, thread) of every ProfilerStep annotation, in order."""
    out = []
    for row in df[df["name"].str.match(STEP_ANNOTATION.pattern)].itertuples():
        k = int(STEP_ANNOTATION.match(row.name).group(1))
        out.append((k, float(row.ts), float(row.ts + row.dur), row.tid))
    return sorted(out, key=lambda s: s[1])


def _union(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _length(intervals) -> float:
    return sum(b - a for a, b in intervals)


def _intersect(xs, ys) -> list[tuple[float, float]]:
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


def _add(d: dict, key: str, value: float) -> None:
    d[key] = d.get(key, 0.0) + value


class _Open:
    """An event being walked on the CPU thread: its class, its own-time segments, whether it is pure (every
    descendant runs in its class: then its whole duration is a sample of that class)."""

    __slots__ = ("row", "end", "eff", "own", "in_opt", "resume", "pure", "counted")

    def __init__(self, row, end: float, eff: str | None, own: str | None, in_opt: bool, counted: bool):
        self.row, self.end, self.eff, self.own, self.in_opt = row, end, eff, own, in_opt
        self.resume, self.pure, self.counted = float(row.ts), True, counted


def _classify(row, parent: _Open | None, last_comm: str) -> tuple[str | None, str | None, bool, bool]:
    """(effective class, own class, in the optimizer, is a wait) of one CPU event under ``parent``."""
    in_opt = bool(parent and parent.in_opt) or OPTIMIZER_ANNOTATION.match(row.name) is not None
    own = cpu_op_class(row.name, row.input_type) if row.cat == "cpu_op" else None
    waits = row.name in WAIT_OPS
    if waits:  # waits for the collective issued last on this thread
        own = last_comm
    elif own is None and COMM_ANNOTATION.match(row.name):
        kind = comm_kind(row.name.split(":", 1)[1])
        own = COMM_PREFIX + kind if kind else None
    if own is not None and own.startswith(COMM_PREFIX):
        return own, own, in_opt, waits
    if in_opt:
        return OPTIMIZER, own, in_opt, waits
    if own is None and parent is not None and parent.eff and row.name in METADATA_OPS:
        return parent.eff, own, in_opt, waits  # a view or allocation inside a classified op
    return own, own, in_opt, waits


def _cpu_step(main: pd.DataFrame, t0: float, t1: float, samples: Samples,
              background: list[tuple[float, float]]) -> StepMeasure:
    """One CPU step: own time of every event to its class; host segments (own time of unclassified events,
    gaps) while a backend thread runs a collective (``background``, merged spans) to the collective this
    thread issued last, a gap right after a top-level send / recv to send-recv (the wait for it), the rest to
    host. Times in us inside, s out."""
    classes: dict[str, float] = {}
    counts: dict[str, int] = {}
    events: dict[str, int] = {}
    host: list[tuple[float, float, str]] = []  # own time of unclassified events and gaps, last collective issued
    p2p_waits: list[tuple[float, float]] = []  # gaps right after a top-level point-to-point op
    after_p2p = False  # the last top-level event was a send / recv
    stack: list[_Open] = []
    last_comm = COMM_PREFIX + "all-reduce"
    at = t0  # end of the last top-level event

    def gap(a: float, b: float) -> None:  # a gap between top-level events
        if after_p2p:
            p2p_waits.append((a, b))
        else:
            host.append((a, b, last_comm))

    def segment(node: _Open, until: float) -> None:
        if until > node.resume:
            if node.eff is None:
                host.append((node.resume, until, last_comm))
            else:
                _add(classes, node.eff, until - node.resume)

    def close(node: _Open) -> None:
        segment(node, node.end)
        events[node.eff or HOST] = events.get(node.eff or HOST, 0) + 1
        if node.counted and node.pure and not node.eff.startswith(COMM_PREFIX):
            _sample(samples, node.row, node.eff, max(float(node.row.dur), 0.0) * 1e-6)
        if stack:
            parent = stack[-1]
            parent.resume = max(parent.resume, node.end)
            parent.pure = parent.pure and node.pure and node.eff == parent.eff

    for row in main.itertuples(index=False):
        ts, end = float(row.ts), min(float(row.ts) + float(max(row.dur, 0)), t1)  # clipped to the step
        while stack and ts >= stack[-1].end:
            close(stack.pop())
        parent = stack[-1] if stack else None
        if parent is not None:
            end = min(end, parent.end)  # a tree: a child ends with its parent (us rounding, async ends)
        eff, own, in_opt, waits = _classify(row, parent, last_comm)
        if own is not None and own.startswith(COMM_PREFIX) and not waits:
            last_comm = own
        counted = own is not None and not waits and not (parent and parent.own == own)
        if counted:
            counts[eff] = counts.get(eff, 0) + 1
            if eff.startswith(COMM_PREFIX):  # its size; its time is the class's (issue, waits)
                _sample(samples, row, eff, max(float(row.dur), 0.0) * 1e-6)
        if parent is None:
            if ts > at:
                gap(at, min(ts, t1))
            at = max(at, end)
            after_p2p = own == P2P
        else:
            segment(parent, ts)
        node = _Open(row, end, eff, own if own is not None else (parent.own if parent else None), in_opt, counted)
        node.pure = eff is not None
        stack.append(node)
    while stack:
        close(stack.pop())
    if at < t1:
        gap(at, t1)
    for a, b in p2p_waits:
        _add(classes, P2P, b - a)
    for a, b, kind in host:
        w = _length(_intersect([(a, b)], background)) if background else 0.0
        _add(classes, kind, w)  # waiting for the collective this thread issued last
        _add(classes, HOST, (b - a) - w)
    return StepMeasure(step=0, seconds=(t1 - t0) * 1e-6, classes={c: v * 1e-6 for c, v in classes.items() if v > 0},
                       counts=counts, events=events,
                       comm_exposed_s=sum(v for c, v in classes.items() if c.startswith(COMM_PREFIX)) * 1e-6)


def measure_cpu(trace: "RankTrace") -> RankMeasure:
    """Steps and samples of a trace without device activity (see the module docstring)."""
    df = trace.events
    samples = Samples()
    steps = []
    comm = df[df["name"].str.match(COMM_ANNOTATION.pattern)]
    for k, t0, t1, tid in _steps(df):
        main = df[(df["tid"] == tid) & (df["ts"] >= t0) & (df["ts"] < t1) & (df["cat"] != "python_function")]
        main = main[~main["name"].str.match(STEP_ANNOTATION.pattern)].sort_values(["ts", "dur"], ascending=[True, False])
        near = comm[(comm["tid"] != tid) & (comm["ts"] < t1) & (comm["ts"] + comm["dur"] > t0)]
        spans = _union([(float(a), float(a + d)) for a, d in zip(near["ts"], near["dur"])])
        step = _cpu_step(main, t0, t1, samples, spans)
        step.step = k
        steps.append(step)
    return RankMeasure(rank=trace.rank, device=trace.device, steps=steps, samples=samples)


def _gaps(busy: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    out, at = [], t0
    for a, b in busy:
        if a > at:
            out.append((at, min(a, t1)))
        at = max(at, b)
    if at < t1:
        out.append((at, t1))
    return out


def _sample(samples: Samples, row, cls: str, seconds: float) -> None:
    """Record one classified op (its inclusive duration) as a fit sample."""
    if cls == GEMM:
        shape = gemm_shape(row.name, row.input_dims)
        if shape:
            samples.gemm.append((*shape, seconds))
    elif cls == ATTENTION:
        shape = attention_shape(row.input_dims)
        if shape:
            samples.attention.append((*shape, "backward" in row.name, seconds))
    elif cls.startswith(COMM_PREFIX):
        samples.comm.append((cls[len(COMM_PREFIX):], tensor_bytes(row.input_dims[:1], row.input_type[:1])
                             if isinstance(row.input_dims, list) and isinstance(row.input_type, list) else 0.0,
                             0, seconds))
    elif cls != OPTIMIZER:
        samples.memory.append((cls, tensor_bytes(row.input_dims, row.input_type), seconds))


def _launch_context(df: pd.DataFrame) -> dict[int, tuple[str, object, bool]]:
    """Kernel row index -> (launching ATen GEMM / attention op name, its input shapes, launched inside
    Optimizer.step#), through each launch's correlation with its kernel and the CPU op enclosing it."""
    out: dict[int, tuple[str, object, bool]] = {}
    cpu = df[df["cat"].isin(["cpu_op", "user_annotation", "cuda_runtime", "cuda_driver"])]
    for _tid, rows in cpu.groupby("tid"):
        stack: list[tuple[float, str, object, bool]] = []
        for row in rows.sort_values(["ts", "dur"], ascending=[True, False]).itertuples():
            while stack and row.ts >= stack[-1][0]:
                stack.pop()
            opt = bool(stack and stack[-1][3]) or OPTIMIZER_ANNOTATION.match(row.name) is not None
            if row.cat in ("cuda_runtime", "cuda_driver"):
                if row.index_correlation > 0:
                    op = next(((n, d) for _e, n, d, _o in reversed(stack)
                               if n in GEMM_OPS or cpu_op_class(n) == ATTENTION), ("", None))
                    out[int(row.index_correlation)] = (op[0], op[1], opt)
                continue
            stack.append((float(row.ts + row.dur), row.name, row.input_dims, opt))
    return out


def measure_gpu(trace: "RankTrace") -> RankMeasure:
    """Steps and samples of a trace with GPU kernels (see the module docstring)."""
    df = trace.events
    launch = _launch_context(df)
    kernels = df[df["cat"].isin(GPU_CATEGORIES)].copy()
    # a kernel's iteration is its launch's (HTA numbers only stream > 0; ROCm traces record stream 0)
    launches = df[df["index_correlation"] > 0].set_index("ev")["iteration"]
    kernels["iteration"] = kernels["index_correlation"].map(launches).fillna(kernels["iteration"])
    samples = Samples()
    steps = []
    for k, t0, t1, _tid in _steps(df):
        ks = kernels[kernels["iteration"] == k]
        classes: dict[str, float] = {}
        counts: dict[str, int] = {}
        comm, compute = [], []
        for row in ks.itertuples():
            op, dims, in_opt = launch.get(int(row.ev), ("", None, False))
            cls = gpu_kernel_class(row.name)
            if in_opt and not cls.startswith(COMM_PREFIX):
                cls = OPTIMIZER
            seconds = float(row.dur) * 1e-6
            _add(classes, cls, seconds)
            counts[cls] = counts.get(cls, 0) + 1
            (comm if cls.startswith(COMM_PREFIX) else compute).append((float(row.ts), float(row.ts + row.dur)))
            if cls == GEMM and op:
                shape = gemm_shape(op, dims)
                if shape:
                    samples.gemm.append((*shape, seconds))
            elif cls == ATTENTION and op:
                shape = attention_shape(dims)
                if shape:
                    samples.attention.append((*shape, "backward" in op or "bwd" in row.name.lower(), seconds))
            elif cls.startswith(COMM_PREFIX):
                nbytes = float(max(row.in_msg_nelems, 0)) * DTYPE_BYTES.get(str(row.msg_dtype), 2)
                samples.comm.append((cls[len(COMM_PREFIX):], nbytes, int(max(row.group_size, 0)), seconds))
        comm_u, compute_u = _union(comm), _union(compute)
        overlapped = _length(_intersect(comm_u, compute_u))
        busy = _length(_union(comm + compute))
        idle = max((t1 - t0) - busy, 0.0)
        if idle:
            classes[IDLE] = idle * 1e-6
        steps.append(StepMeasure(step=k, seconds=(t1 - t0) * 1e-6, classes=classes, counts=counts,
                                 comm_exposed_s=(_length(comm_u) - overlapped) * 1e-6,
                                 comm_overlapped_s=overlapped * 1e-6))
    return RankMeasure(rank=trace.rank, device=trace.device, steps=steps, samples=samples)


def measure(trace: "RankTrace") -> RankMeasure:
    """``measure_gpu`` for a trace with device kernels, else ``measure_cpu``."""
    return measure_gpu(trace) if trace.on_gpu else measure_cpu(trace)


def median_classes(steps: list[StepMeasure]) -> dict[str, float]:
    """Per class, the median over ``steps`` of its seconds (0 in a step that lacks it)."""
    names = sorted({c for s in steps for c in s.classes})
    return {c: float(np.median([s.classes.get(c, 0.0) for s in steps])) for c in names}
