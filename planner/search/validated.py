"""``plan --validated-only``: keep the plans whose layout class has measured runs (planner.evidence),
ranked as before; the ranking itself never reads the evidence."""

from __future__ import annotations

from ..errors import InfeasibleError
from ..specs import HardwareProfile
from .explain import explain
from .priced_evidence import priced_evidence
from .result import SearchResult

#: Plans priced for --validated-only: every feasible one (a validated class may rank far down).
ALL_PLANS = 10**9


def keep_validated(result: SearchResult, hardware: HardwareProfile, constraints, top: int) -> SearchResult:
    """``result`` (searched with ``top=ALL_PLANS``) reduced to the ``top`` best plans of classes with at
    least one measured run; InfeasibleError (exit 1) naming the best plan's class when none has."""
    kept = [p for p in result.plans if priced_evidence(hardware, p.training, p.layout, p.gpus, p.estimate.mfu).rows]
    if not kept:
        best = priced_evidence(hardware, result.best.training, result.best.layout, result.best.gpus,
                               result.best.estimate.mfu)
        raise InfeasibleError(f"none of the {len(result.plans)} feasible plans is of a class with a measured run "
                              f"(the best is {best.layout_class}: {best.summary()}); drop --validated-only to see "
                              "them")
    ranked = [p.model_copy(update={"rank": i + 1}) for i, p in enumerate(kept)]
    return result.model_copy(update={"plans": ranked[:top], "best": ranked[0],
                                     "explanation": explain(ranked, result.reference, hardware, constraints)})
