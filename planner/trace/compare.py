"""Where a real step's time went (a trace, planner.trace.run) next to where paraplan says it goes (the cost
model's estimate of the same model, recipe and layout): per op class, per pipeline stage, and the largest
mismatches named. Seconds per step; measured figures are the mean over ranks of each rank's median step.

The model charges its fixed cost per kernel (``device.kernel_overhead_us``) to each kernel's class; a CPU
trace shows the host's share of it between ops as ``host``, a GPU trace shows a host-bound device as
``idle``. The model's pipeline transfers and bubble are compared with the time spent in send/recv.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .classes import COMM_PREFIX
from .measure import HOST, IDLE
from .run import TracedRun

TOP_MISMATCHES = 3


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassRow(Model):
    """One op class: measured vs predicted seconds per step."""

    kind: str = Field(description="gemm, attention, a memory-bound class, optimizer, comm:<kind>, host or idle")
    measured_s: float = Field(description="measured seconds per step, s")
    predicted_s: float = Field(description="the cost model's seconds per step, s")
    measured_ops: float = Field(description="ops (kernels, collective calls) per step in the trace")
    predicted_ops: int = Field(description="kernels (collective calls) the cost model prices per step")

    @property
    def diff_s(self) -> float:
        """predicted - measured, s."""
        return self.predicted_s - self.measured_s


class StageRow(Model):
    """One pipeline stage (its ranks averaged): measured step and where it went."""

    stage: int = Field(description="pipeline stage (rank // tp % pp, the validator's and torchtitan's order)")
    ranks: list[int] = Field(description="ranks of the stage in the trace")
    step_s: float = Field(description="median step of the stage's slowest rank, s")
    compute_s: float = Field(description="seconds in compute classes (not comm, host or idle), s")
    comm_s: float = Field(description="seconds in communication (exposed), s")
    comm_overlapped_s: float = Field(description="communication running under compute (GPU traces), s")
    host_or_idle_s: float = Field(description="host time between ops (CPU) or device idle (GPU), s")


class TraceComparison(Model):
    """``paraplan trace compare``: a trace against the cost model."""

    trace: str = Field(description="trace folder or file")
    device: str = Field(description="device the trace reports")
    ranks: int = Field(description="rank traces read")
    steps: int = Field(description="traced steps per rank")
    model: str = Field(description="model compared with")
    layout: str = Field(description="layout compared with")
    hardware: str = Field(description="hardware profile (and overlay) predicted with")
    measured_step_s: float = Field(description="median traced step (slowest rank), s")
    predicted_step_s: float = Field(description="the cost model's step time, s")
    step_error_pct: float = Field(description="100 * (predicted - measured) / measured")
    classes: list[ClassRow] = Field(description="per op class, largest first")
    stages: list[StageRow] = Field(description="per pipeline stage")
    mismatches: list[str] = Field(description="the largest mismatches, one sentence each")
    notes: list[str] = Field(default_factory=list, description="what the comparison cannot see")


def stage_of(rank: int, tp: int, pp: int) -> int:
    """Pipeline stage of ``rank`` in mesh order (dp, pp, tp): tp fastest, then pp."""
    return (rank // max(tp, 1)) % max(pp, 1)


def predicted_classes(estimate) -> dict[str, tuple[float, int]]:
    """(seconds, kernels) per class of the estimate: its per-kernel-class breakdown, plus the pipeline's
    transfers and bubble as ``comm:send-recv``."""
    out = {c.kind: (c.seconds, c.kernels) for c in estimate.ops.classes}
    pipe = estimate.time.pp_comm + estimate.time.pp_bubble
    if pipe:
        s, n = out.get(COMM_PREFIX + "send-recv", (0.0, 0))
        out[COMM_PREFIX + "send-recv"] = (s + pipe, n)
    return out


def _stages(run: TracedRun, tp: int, pp: int) -> list[StageRow]:
    groups: dict[int, list] = {}
    for r in run.ranks:
        groups.setdefault(stage_of(r.rank, tp, pp), []).append(r)
    rows = []
    for stage, ranks in sorted(groups.items()):
        per = [run.rank_classes(r) for r in ranks]
        mean = {c: sum(p.get(c, 0.0) for p in per) / len(per) for p in per for c in p}
        split = [run.steps_of(r) for r in ranks]
        steps = [sorted(s.seconds for s in st)[len(st) // 2] for st in split if st]
        overlapped = [sorted(s.comm_overlapped_s for s in st)[len(st) // 2] for st in split if st]
        rows.append(StageRow(
            stage=stage, ranks=[r.rank for r in ranks], step_s=max(steps, default=0.0),
            compute_s=sum(v for c, v in mean.items() if not c.startswith(COMM_PREFIX) and c not in (HOST, IDLE)),
            comm_s=sum(v for c, v in mean.items() if c.startswith(COMM_PREFIX)),
            comm_overlapped_s=sum(overlapped) / len(overlapped) if overlapped else 0.0,
            host_or_idle_s=mean.get(HOST, 0.0) + mean.get(IDLE, 0.0)))
    return rows


def _sentence(row: ClassRow, step_s: float) -> str:
    share = 100 * abs(row.diff_s) / step_s if step_s else 0.0
    if row.predicted_s == 0:
        return (f"{row.kind}: {row.measured_s * 1e3:.3g} ms measured, nothing priced ({share:.0f} % of the step "
                f"paraplan does not see)")
    if row.measured_s == 0:
        return f"{row.kind}: {row.predicted_s * 1e3:.3g} ms priced, none measured ({share:.0f} % of the step)"
    ratio = row.predicted_s / row.measured_s
    ops = (f"; {row.measured_ops:.0f} ops measured, {row.predicted_ops} priced"
           if row.measured_ops and abs(row.measured_ops - row.predicted_ops) > 0.1 * max(row.predicted_ops, 1) else "")
    return (f"{row.kind}: {row.predicted_s * 1e3:.3g} ms priced vs {row.measured_s * 1e3:.3g} ms measured "
            f"({ratio:.2f}x, {share:.0f} % of the step{ops})")


def compare(run: TracedRun, estimate, *, trace: str, layout_text: str, hardware: str,
            measured_step_s: float | None = None, notes: list[str] | None = None) -> TraceComparison:
    """The comparison of one traced job with ``estimate`` (planner.cost.estimate with breakdown=True) of the
    same model, recipe and layout."""
    measured = run.classes()
    counts = run.counts()
    predicted = predicted_classes(estimate)
    rows = [ClassRow(kind=k, measured_s=measured.get(k, 0.0), predicted_s=predicted.get(k, (0.0, 0))[0],
                     measured_ops=counts.get(k, 0.0), predicted_ops=predicted.get(k, (0.0, 0))[1])
            for k in sorted(set(measured) | set(predicted))]
    rows.sort(key=lambda r: -max(r.measured_s, r.predicted_s))
    step = measured_step_s or run.step_s
    worst = sorted(rows, key=lambda r: -abs(r.diff_s))[:TOP_MISMATCHES]
    notes = list(notes or []) + list(run.notes)
    if HOST in measured:
        kernels = sum(c.kernels for c in estimate.ops.classes if not c.kind.startswith(COMM_PREFIX))
        notes.append(f"host: time between ops on the CPU; the model charges its per-kernel cost to each class "
                     f"({kernels} kernels priced)")
    if any(c.startswith(COMM_PREFIX) for c in measured) and not any(b > 0 for _, b in _comm_sizes(run)):
        notes.append("collective sizes were not recorded in this trace (no record_param_comms): only the time "
                     "per call is known, not the bytes, so bandwidth cannot be told from latency")
    lay = estimate.layout
    return TraceComparison(
        trace=trace, device=run.device, ranks=len(run.ranks), steps=min((len(r.steps) for r in run.ranks), default=0),
        model=estimate.model, layout=layout_text, hardware=hardware, measured_step_s=step,
        predicted_step_s=estimate.step_time_s, step_error_pct=100 * (estimate.step_time_s - step) / step if step else 0.0,
        classes=rows, stages=_stages(run, lay.tp, lay.pp), mismatches=[_sentence(r, step) for r in worst], notes=notes)


def _comm_sizes(run: TracedRun) -> list[tuple[str, float]]:
    return [(k, b) for k, b, _g, _t in run.samples().comm]
