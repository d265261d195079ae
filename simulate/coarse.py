"""Coarse replay: the step's cost without replaying every micro-batch.

Without jitter the replay is deterministic, and once the pipeline is past its fill every stage
repeats the same cycle (1F1B's one forward + one backward, ZB-H1's F + B + W, interleaved 1F1B's
group of p micro-batches): each added micro-batch (or group) adds the same seconds to every
clock, busy counter and NIC busy time. So the engine (simpy, the engine of record) replays three
short pipelines of m_a < m_b < m_c micro-batches, equally spaced by the schedule's period k; the
second differences of every observed quantity must vanish (the proof that the cycle repeats),
and each quantity is extended to the step's m as q(m) = q(m_c) + (m - m_c) / k * (q(m_c) - q(m_b)).
When a second difference does not vanish (a quantity that is not affine in m) the caller falls
back to the fine replay. Activation memory needs no replay: a stage runs its ops one after the
other, so the activations it holds follow its static op order alone (``peak_held_chunks``).
Times in seconds, memory in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import itemgetter

from .engine import Engine, StageLog
from .entities import SimPlan
from .schedules import splits_weight_grad, stage_order

SCALARS = ("compute", "tp", "p2p", "zero3", "offload", "pipe_end", "finish", "reduce_done", "comm_busy")
AFFINE_RTOL = 1e-7  # second difference allowed, relative to the quantity (float rounding only)


@dataclass
class FabricTotals:
    """Per NIC key: seconds with at least one user, and the integral of users over time."""

    busy: dict = field(default_factory=dict)
    device_seconds: dict = field(default_factory=dict)


@dataclass
class CoarseReplay:
    """What ``runner`` reads from an Engine, extended to the step's micro-batches."""

    plan: SimPlan
    logs: list[StageLog]
    fabric: FabricTotals
    events: int  # ops actually replayed (all three short pipelines)
    replayed: tuple[int, ...]  # their micro-batch counts
    trace: list | None = None


def replay_counts(schedule: str, p: int, m: int) -> tuple[tuple[int, int, int], int] | None:
    """(m_a, m_b, m_c) and the period k, or None when the fine replay is as cheap."""
    k = p if schedule == "interleaved-1f1b" else 1  # Megatron's interleaving runs groups of p
    # from m = p on every stage runs its full warm-up (min(p - i - 1, m) saturates) and ZB-H1's
    # stage i has its W passes i micro-batches late (its cycle repeats from m = p + 1 with uneven
    # stages): no regime changes beyond, the cycle repeats. Below that the slope can differ when
    # NICs are shared (0.3 % seen), so it is never extrapolated from there.
    first = p if schedule == "interleaved-1f1b" else p + 1
    counts = (first, first + k, first + 2 * k)
    if 2 * (sum(counts)) >= m:  # three short replays must cost well under one long one
        return None
    return counts, k


def peak_held_chunks(schedule: str, stage: int, p: int, m: int, v: int) -> int:
    """Most model chunks whose activations ``stage`` holds at once: +1 at each forward, -1 at the
    end of the pass that frees them (the weight-grad W under ZB-H1, the backward otherwise) --
    exactly what the engine records, since a stage runs its ops one after the other."""
    free = "W" if splits_weight_grad(schedule) else "B"
    delta = {"F": 1, free: -1}.get  # the change of held chunks at an op of that kind (others: 0)
    kinds = map(itemgetter(0), stage_order(schedule, stage, p, m, v))
    return max(accumulate(map(delta, kinds, repeat(0)), initial=0))  # the running count's peak


def _affine(qa: float, qb: float, qc: float) -> bool:
    return abs((qc - qb) - (qb - qa)) <= AFFINE_RTOL * max(abs(qc), 1e-12)


def coarse_replay(plan: SimPlan, *, overlap: bool, contention: bool) -> CoarseReplay | None:
    """The step replayed coarsely, or None (fine replay needed: too few micro-batches to gain, or a
    quantity not affine in the micro-batch count)."""
    layout = plan.step.layout
    m, p = plan.step.micro_batches, layout.pp
    v = layout.vpp if layout.schedule == "interleaved-1f1b" else 1
    picked = replay_counts(layout.schedule, p, m)
    if picked is None:
        return None
    counts, k = picked
    engines = []
    for mc in counts:
        eng = Engine(plan, overlap=overlap, contention=contention, jitter=0.0, seed=0, trace=False,
                     micro_batches=mc, record_memory=False)
        eng.run()
        engines.append(eng)
    a, b, c = engines
    steps = (m - counts[2]) / k

    def extend(qa: float, qb: float, qc: float) -> float | None:
        if not _affine(qa, qb, qc):
            return None
        return qc + steps * (qc - qb)

    logs = []
    for i in range(p):
        log = StageLog()
        for name in SCALARS:
            q = extend(getattr(a.logs[i], name), getattr(b.logs[i], name), getattr(c.logs[i], name))
            if q is None:
                return None
            setattr(log, name, q)
        act = plan.stages[i].activation_bytes_per_microbatch / v
        log.peak_activation_bytes = peak_held_chunks(layout.schedule, i, p, m, v) * act
        logs.append(log)
    fabric = FabricTotals()
    for name in ("busy", "device_seconds"):
        qa, qb, qc = (getattr(e.fabric, name) for e in engines)  # each read gathers a dict once
        for key, value in qc.items():
            q = extend(qa.get(key, 0.0), qb.get(key, 0.0), value)
            if q is None:
                return None
            getattr(fabric, name)[key] = q
    return CoarseReplay(plan, logs, fabric, sum(e.events for e in engines), counts)
