"""Stragglers in the replay: slow ranks, links, NICs and per-rank speed variation.

A step is as slow as its slowest rank: tensor-parallel collectives inside every layer make a stage's
tp x cp ranks wait for the slowest of them, the pipeline hands work from stage to stage, and the
data-parallel gradient reduction makes every replica wait for the slowest pipeline and runs each
stage's collective at the pace of its slowest member. So, from per-rank speed factors
(``planner.specs.straggler.StragglerSpec``):

- each (replica, stage) runs at the minimum compute / link / NIC factor of its tp x cp ranks: its
  compute events (and optimizer step) take 1/compute longer, its tensor-parallel communication
  1/link (1/min(link, nic) when the tp group leaves the node), its off-node sends 1/nic;
- each stage's data-parallel collectives (gradient reduction, ZeRO gathers) run at the minimum
  factor of that stage over all replicas;
- the replay (one pipeline, ``simulate.engine``) is run for each distinct replica (at most
  ``MAX_REPLAYS``: beyond, those with the slowest stage and the slowest mean), and the slowest one
  is the step.

Per-rank variation draws each rank's compute factor from a mean-one lognormal (sigma =
``variation``), as the replay's jitter draws op times. Nothing is priced here: the events keep the
prices of ``simulate.entities`` and are only stretched.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from planner.errors import SpecError
from planner.pricing.placement import axis_strides

from .coarse import coarse_replay
from .engine import Engine
from .entities import ChunkTimes, PhaseTime, SimPlan, Transfer

MAX_REPLAYS = 32


@dataclass(frozen=True)
class StragglerOutcome:
    """The replica that sets the step, its stretched plan and what the trace should say."""

    plan: SimPlan
    replica: int
    step_time_s: float
    replicas_replayed: int
    notes: tuple[str, ...]
    stage_labels: dict[int, str]


def coordinates(layout, rank: int) -> dict[str, int]:
    """tp, cp, pp and dp index of global ``rank`` in the layout's rank order."""
    return {axis: (rank // stride) % size for axis, (size, stride) in axis_strides(layout).items()
            if axis in ("tp", "cp", "pp", "dp")}


def rank_factors(spec, gpus: int, devices_per_node: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-rank (compute, link, nic) speed factors; SpecError for a rank or node outside the job."""
    compute, link, nic = np.ones(gpus), np.ones(gpus), np.ones(gpus)
    if spec.variation > 0:
        s = spec.variation
        compute *= np.random.default_rng(spec.seed).lognormal(-s * s / 2, s, gpus)
    nodes = -(-gpus // devices_per_node)
    for part in spec.slow:
        if part.rank is not None:
            if part.rank >= gpus:
                raise SpecError(f"rank {part.rank} is outside the job's {gpus} ranks (0..{gpus - 1})",
                                field="--straggler")
            ranks = slice(part.rank, part.rank + 1)
        else:
            if part.node >= nodes:
                raise SpecError(f"node {part.node} is outside the job's {nodes} nodes (0..{nodes - 1})",
                                field="--straggler")
            ranks = slice(part.node * devices_per_node, min(gpus, (part.node + 1) * devices_per_node))
        compute[ranks] *= part.compute
        link[ranks] *= part.link
        nic[ranks] *= part.nic
    return compute, link, nic


def replica_stage_factors(layout, values: np.ndarray) -> np.ndarray:
    """(dp, pp) minimum of ``values`` over each (replica, stage)'s tp x cp ranks."""
    ranks = np.arange(values.size)
    strides = axis_strides(layout)
    (dp, dps), (pp, pps) = strides["dp"], strides["pp"]
    out = np.full((dp, pp), np.inf)
    np.minimum.at(out, ((ranks // dps) % dp, (ranks // pps) % pp), values)
    return out


def _phase(ph: PhaseTime, comp: float, tp: float, nic: float) -> PhaseTime:
    return PhaseTime(ph.compute / comp, ph.tp / tp, ph.cp / nic, ph.offnode / nic)


def _tr(tr: Transfer | None, fixed: float, off: float) -> Transfer | None:
    if tr is None:
        return None
    return dataclasses.replace(tr, fixed_s=tr.fixed_s / fixed, offnode_s=tr.offnode_s / off)


def stretched_plan(plan: SimPlan, comp, link, nic, dp_link, dp_nic, tp_leaves_node: bool) -> SimPlan:
    """``plan`` with stage s's events stretched by its factors (module docstring); vectors per stage."""
    stages = []
    for s, st in enumerate(plan.stages):
        c, ln, n = comp[s], link[s], nic[s]
        tp = min(ln, n) if tp_leaves_node else ln
        chunks = tuple(ChunkTimes(fwd=_phase(ch.fwd, c, tp, n), bwd=_phase(ch.bwd, c, tp, n),
                                  wgrad=_phase(ch.wgrad, c, tp, n), blocks=ch.blocks, layers=ch.layers,
                                  cp_fwd=_tr(ch.cp_fwd, ln, n), cp_bwd=_tr(ch.cp_bwd, ln, n)) for ch in st.chunks)
        dl, dn = dp_link[s], dp_nic[s]
        stages.append(dataclasses.replace(
            st, chunks=chunks, optimizer=st.optimizer / c, zero3_exposed=st.zero3_exposed / min(dl, dn),
            zero3_fwd=_tr(st.zero3_fwd, dl, dn), zero3_bwd=_tr(st.zero3_bwd, dl, dn),
            zero3_hidden=tuple(h / c for h in st.zero3_hidden),
            dp_reduce=tuple(_tr(t, dl, dn) for t in st.dp_reduce), dp_gather=tuple(_tr(t, dl, dn) for t in st.dp_gather)))
    pair = {k: (min(link[k[0]], link[k[1]]), min(nic[k[0]], nic[k[1]])) for k in plan.sends}
    return dataclasses.replace(
        plan, stages=tuple(stages),
        stage_p2p=tuple(t / min(link[s], nic[s]) for s, t in enumerate(plan.stage_p2p)),
        sends={k: _tr(t, *pair[k]) for k, t in plan.sends.items()},
        blocking_sends={k: _tr(t, *pair[k]) for k, t in plan.blocking_sends.items()})


def replay_step_time(plan: SimPlan, overlap: bool, contention: bool) -> float:
    """Step time of one replay of ``plan`` (coarse when it can be, else every micro-batch), s."""
    eng = coarse_replay(plan, overlap=overlap, contention=contention)
    if eng is None:
        eng = Engine(plan, overlap=overlap, contention=contention, jitter=0.0, seed=0, trace=False)
        eng.run()
    return max(max(lg.finish for lg in eng.logs), max(lg.pipe_end for lg in eng.logs))


def _candidates(C: np.ndarray, L: np.ndarray, N: np.ndarray) -> list[int]:
    """Replicas with distinct factors; beyond MAX_REPLAYS the slowest by stage minimum and by mean."""
    seen, distinct = set(), []
    for d in range(C.shape[0]):
        key = (C[d].tobytes(), L[d].tobytes(), N[d].tobytes())
        if key not in seen:
            seen.add(key)
            distinct.append(d)
    if len(distinct) <= MAX_REPLAYS:
        return distinct
    worst = np.minimum(np.minimum(C, L), N)[distinct]
    half = MAX_REPLAYS // 2
    by_min = [distinct[i] for i in np.argsort(worst.min(axis=1), kind="stable")[:half]]
    by_mean = [distinct[i] for i in np.argsort((1 / worst).mean(axis=1), kind="stable")[::-1][:half]]
    return sorted(set(by_min) | set(by_mean))


def slowest_replica(plan: SimPlan, scenario, *, overlap: bool, contention: bool) -> StragglerOutcome:
    """Replay the replicas the stragglers make distinct and keep the slowest (module docstring)."""
    spec, layout = scenario.stragglers, plan.step.layout
    dpn = scenario.hardware.node.devices_per_node
    comp, link, nic = rank_factors(spec, scenario.gpus, dpn)
    C, L, N = (replica_stage_factors(layout, v) for v in (comp, link, nic))
    dp_link, dp_nic = L.min(axis=0), N.min(axis=0)
    tp_leaves = layout.tp * layout.cp > dpn * scenario.hardware.node.fast_domain_nodes
    times = {}
    for d in _candidates(C, L, N):
        times[d] = replay_step_time(stretched_plan(plan, C[d], L[d], N[d], dp_link, dp_nic, tp_leaves),
                                    overlap, contention)
    worst = max(times, key=lambda d: (times[d], -d))
    labels, notes = {}, []
    for part in spec.slow:
        first = part.rank if part.rank is not None else part.node * dpn
        ranks = [first] if part.rank is not None else list(range(first, min(scenario.gpus, first + dpn)))
        at = [coordinates(layout, r) for r in ranks]
        places = sorted({(c["dp"], c["pp"]) for c in at})
        where = (f"rank {part.rank} (tp {at[0]['tp']}, cp {at[0]['cp']}" if part.rank is not None
                 else f"node {part.node} (ranks {ranks[0]}..{ranks[-1]}")
        where += ": " + ", ".join(f"stage {p} of replica {d}" for d, p in places[:4])
        where += (" ..." if len(places) > 4 else "") + ")"
        notes.append(f"slow {where}: {part.describe().split(': ', 1)[1]}")
        for d, p in places:
            if d == worst:
                labels[p] = f"slow: {part.describe()}"
            elif part.link < 1 or part.nic < 1:
                labels.setdefault(p, f"dp collectives wait for {part.describe()}")
    if spec.variation > 0:
        notes.append(f"per-rank compute speed: mean-one lognormal, sigma {spec.variation:g} (seed {spec.seed}); "
                     f"slowest rank {comp.min():.3f}, replica {worst}'s slowest stage "
                     f"{C[worst].min():.3f} of nominal")
        for s in range(layout.pp):
            labels.setdefault(s, f"slowest rank at {C[worst][s]:.3f} of nominal")
    notes.append(f"replica {worst} sets the step: {times[worst]:.4g} s; {len(times)} of {layout.dp} replicas "
                 f"replayed{' (distinct ones)' if len(times) < layout.dp else ''}")
    crit = stretched_plan(plan, C[worst], L[worst], N[worst], dp_link, dp_nic, tp_leaves)
    return StragglerOutcome(plan=crit, replica=worst, step_time_s=times[worst], replicas_replayed=len(times),
                            notes=tuple(notes), stage_labels=labels)
