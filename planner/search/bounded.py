"""Pricing in bound order: skip the candidates that provably cannot show in the result.

Each memory survivor carries a lower bound on its analytic step time (planner.cost.bound: compute
seconds alone, from the StepWork built for it after its memory check). Survivors are priced in ascending order
of the best objective value that bound allows (throughput: tokens / bound; cost: GPU-hours at the
bound), and one is skipped when even that value is strictly worse than

- the ``keep``-th best priced plan (``keep`` >= the printed top and the leading plans whose rank-order
  and TP-overlap variants are priced), and
- the best priced plan of its tensor-parallel degree (the explanation names the best plan per tp).

A skipped candidate's true objective is then strictly worse than ``keep`` priced plans (it cannot
enter the top) and than one of its own tp degree, so ranks, figures and sentences are the
exhaustive search's. It is counted as feasible on its memory check: the peak that check found is
the estimate's (same stage records; one stage per template, the one holding the most micro-batches,
and a stage's peak never falls with more in flight). The memory objective has no time bound: every
survivor is priced. The order and the skips depend on the candidates only, not on ``workers``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from .space import Candidate


def bound_value(objective: str, bound_s: float, cand: Candidate) -> float:
    """The smallest first objective key (planner.search.engine.objective_key) a step time of at
    least ``bound_s`` allows; -inf when nothing is known (memory objective, no bound)."""
    if objective == "memory" or not bound_s > 0:
        return -math.inf
    tokens = cand.training.tokens_per_step
    if objective == "cost":
        return cand.gpus * bound_s / 3600.0 / (tokens / 1e6)
    return -tokens / bound_s


@dataclass
class Bounded:
    """Outcome of ``price_in_bound_order``: the priced (candidate, plan) pairs in pricing order (a plan
    is None when the full estimate found it over memory) and the skipped candidates."""

    priced: list[tuple[Candidate, object]] = field(default_factory=list)
    skipped: list[Candidate] = field(default_factory=list)


def price_in_bound_order(cands: list[Candidate], bounds: list[float], objective: str, keep: int,
                         price_one: Callable[[Candidate], object | None],
                         first_key: Callable[[Candidate, object], float],
                         finer: Callable[[Candidate], float] | None = None) -> Bounded:
    """Price ``cands`` in ascending ``bound_value`` order, skipping those that cannot rank (module
    docstring). ``price_one`` returns a Plan, or None when the plan does not fit; ``first_key`` is the
    plan's first objective key; ``finer`` (optional) a tighter, dearer bound on a candidate's step
    time, asked only once the ``keep`` places are filled and the cheap bound cannot skip it."""
    values = [bound_value(objective, b, c) for c, b in zip(cands, bounds, strict=True)]
    out = Bounded()
    worst_kept: list[float] = []  # max-heap (negated) of the ``keep`` best first keys priced
    best_tp: dict[int, float] = {}
    for i in sorted(range(len(cands)), key=lambda j: (values[j], j)):
        cand, v = cands[i], values[i]
        full = len(worst_kept) >= keep
        if full and v > -worst_kept[0] and v > best_tp.get(cand.layout.tp, math.inf):
            out.skipped.append(cand)
            continue
        if full and finer is not None:
            v = bound_value(objective, finer(cand), cand)
            if v > -worst_kept[0] and v > best_tp.get(cand.layout.tp, math.inf):
                out.skipped.append(cand)
                continue
        plan = price_one(cand)
        out.priced.append((cand, plan))
        if plan is None:
            continue
        k = first_key(cand, plan)
        if k < best_tp.get(cand.layout.tp, math.inf):
            best_tp[cand.layout.tp] = k
        if len(worst_kept) < keep:
            heapq.heappush(worst_kept, -k)
        elif k < -worst_kept[0]:
            heapq.heapreplace(worst_kept, -k)
    return out
