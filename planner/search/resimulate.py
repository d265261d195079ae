"""``--refine K``: re-rank the top K plans with the discrete-event simulator (package ``simulate``, a
layer below the search), imported when ``--refine`` asks for it."""

from __future__ import annotations

from ..errors import SpecError
from ..scenario import Scenario
from ..specs import HardwareProfile, ModelSpec
from .result import SearchResult

NOT_AVAILABLE = "the discrete-event simulator is not available yet (simulate.simulate_estimate not found)"


def simulator_available():
    """``simulate.simulate_estimate`` if importable, else None (imported here, not at module level:
    only ``--refine`` loads the simulator and simpy)."""
    try:
        from simulate import simulate_estimate
    except ImportError:
        return None
    return simulate_estimate


def refine(result: SearchResult, k: int, model: ModelSpec, hardware: HardwareProfile) -> SearchResult:
    """Re-rank the top ``k`` plans by simulated tokens/s (SpecError, exit 2, without a simulator)."""
    if k <= 0:
        raise SpecError(f"{k} must be > 0", field="--refine")
    simulate_estimate = simulator_available()
    if simulate_estimate is None:
        raise SpecError(NOT_AVAILABLE, field="--refine")
    head, tail = result.plans[:k], result.plans[k:]
    sims = []
    for plan in head:
        est = simulate_estimate(Scenario(model=model, hardware=hardware, gpus=plan.gpus, training=plan.training,
                                         layout=plan.layout))
        sims.append(plan.model_copy(update={"estimate": est, "engine": "simulate"}))
    sims.sort(key=lambda p: (-p.estimate.tokens_per_s, p.estimate.peak_memory_bytes, p.rank))
    plans = [p.model_copy(update={"rank": i + 1}) for i, p in enumerate(sims + tail)]
    return result.model_copy(update={"plans": plans, "best": plans[0], "refined": True})
