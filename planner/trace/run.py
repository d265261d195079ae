"""One traced job: every rank's measured steps folded into per-step figures, with the profiler's own cost
taken out where it is known.

The profiler costs the CPU a little for every event it records (a few microseconds with shapes on), so a
traced CPU step is slower than an untraced one (on the project's 2-core host: tp2 +15 %, pp2 +38 %). When
the untraced step time of the same job is known (the validator measures both), the cost per recorded event
is ``(traced - untraced) / events per step`` and is taken out of each class in proportion to the events
it recorded; otherwise nothing is taken out. GPU kernel durations are device time and need no correction.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .classes import COMM_PREFIX
from .measure import IDLE, RankMeasure, Samples, StepMeasure


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@dataclass
class TracedRun:
    """Measured steps of one job (all ranks). ``event_overhead_s``: profiler cost per recorded CPU event
    taken out (0 when unknown)."""

    ranks: list[RankMeasure]
    on_gpu: bool
    event_overhead_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def device(self) -> str:
        """Device name the trace reports (``cpu`` without device properties)."""
        return self.ranks[0].device if self.ranks else ""

    def steps_of(self, rank: RankMeasure) -> list[StepMeasure]:
        """The rank's steps with the profiler's cost per event taken out of every class."""
        if not self.event_overhead_s:
            return rank.steps
        out = []
        for s in rank.steps:
            classes = {c: max(v - self.event_overhead_s * s.events.get(c, 0), 0.0) for c, v in s.classes.items()}
            out.append(StepMeasure(step=s.step, seconds=sum(classes.values()), classes=classes, counts=s.counts,
                                   events=s.events, comm_exposed_s=sum(v for c, v in classes.items()
                                                                       if c.startswith(COMM_PREFIX)),
                                   comm_overlapped_s=s.comm_overlapped_s))
        return out

    def step_times(self) -> list[float]:
        """Per traced step, the slowest rank's duration, s."""
        per_rank = [self.steps_of(r) for r in self.ranks]
        n = min(len(s) for s in per_rank)
        return [max(steps[i].seconds for steps in per_rank) for i in range(n)]

    @property
    def step_s(self) -> float:
        """Median traced step (slowest rank), s."""
        return _median(self.step_times())

    def rank_classes(self, rank: RankMeasure) -> dict[str, float]:
        """Per class, the median over the rank's steps of its seconds."""
        steps = self.steps_of(rank)
        names = sorted({c for s in steps for c in s.classes})
        return {c: _median([s.classes.get(c, 0.0) for s in steps]) for c in names}

    def classes(self) -> dict[str, float]:
        """Per class, the mean over ranks of the per-rank median seconds per step."""
        per = [self.rank_classes(r) for r in self.ranks]
        names = sorted({c for p in per for c in p})
        return {c: sum(p.get(c, 0.0) for p in per) / len(per) for c in names}

    def counts(self) -> dict[str, float]:
        """Per class, the mean over ranks of the median op count per step (collective calls for comm)."""
        per = []
        for r in self.ranks:
            names = {c for s in r.steps for c in s.counts}
            per.append({c: _median([s.counts.get(c, 0) for s in r.steps]) for c in names})
        names = sorted({c for p in per for c in p})
        return {c: sum(p.get(c, 0.0) for p in per) / len(per) for c in names}

    def comm_split(self) -> tuple[float, float]:
        """(exposed, overlapped) communication seconds per step, mean over ranks of the medians."""
        exposed = [_median([s.comm_exposed_s for s in self.steps_of(r)]) for r in self.ranks]
        overlapped = [_median([s.comm_overlapped_s for s in self.steps_of(r)]) for r in self.ranks]
        return sum(exposed) / len(exposed), sum(overlapped) / len(overlapped)

    def idle_s(self) -> float:
        """Seconds per step with no kernel running (GPU traces), mean over ranks."""
        return sum(self.rank_classes(r).get(IDLE, 0.0) for r in self.ranks) / len(self.ranks)

    def samples(self) -> Samples:
        """Every rank's samples pooled."""
        out = Samples()
        for r in self.ranks:
            out.gemm += r.samples.gemm
            out.attention += r.samples.attention
            out.memory += r.samples.memory
            out.comm += r.samples.comm
        return out


def traced_run(ranks: list[RankMeasure], on_gpu: bool, untraced_step_s: float | None = None) -> TracedRun:
    """Fold the ranks' measures; with ``untraced_step_s`` (CPU traces) take the profiler's cost per event out
    so the median traced step equals it."""
    run = TracedRun(ranks=ranks, on_gpu=on_gpu)
    if on_gpu or not untraced_step_s or not ranks or not ranks[0].steps:
        return run
    traced = run.step_s
    slowest = max(ranks, key=lambda r: _median([s.seconds for s in r.steps]))
    events = _median([sum(s.events.values()) for s in slowest.steps])
    if traced > untraced_step_s and events:
        run.event_overhead_s = (traced - untraced_step_s) / events
        run.notes.append(f"profiler cost {run.event_overhead_s * 1e6:.2f} us per recorded event taken out "
                         f"(traced {traced * 1e3:.1f} ms, untraced {untraced_step_s * 1e3:.1f} ms per step)")
    return run
