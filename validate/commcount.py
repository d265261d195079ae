"""Collective calls of one training step, counted by the torch profiler (CPU activity).

Every ``torch.distributed`` collective, whichever API issued it (DTensor redistribution, FSDP2, the
pipelining schedules, ZeroRedundancyOptimizer), passes through one ``c10d::`` dispatcher op; counting
those ops per kind gives the communication pattern the validator really ran, to set against the one
the cost model prices (``validate.report.predicted_collective_calls``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile

C10D_KINDS = {
    "c10d::allreduce_": "all-reduce",
    "c10d::allreduce_coalesced_": "all-reduce",
    "c10d::allgather_": "all-gather",
    "c10d::_allgather_base_": "all-gather",
    "c10d::allgather_into_tensor_coalesced_": "all-gather",
    "c10d::reduce_scatter_": "reduce-scatter",
    "c10d::_reduce_scatter_base_": "reduce-scatter",
    "c10d::reduce_scatter_tensor_coalesced_": "reduce-scatter",
    "c10d::broadcast_": "broadcast",
    "c10d::alltoall_base_": "all-to-all",
    "c10d::alltoall_": "all-to-all",
    "c10d::send": "send",
    "c10d::recv_": "recv",
}


def count_collective_calls(step: Callable[[], object]) -> dict[str, int]:
    """Run ``step`` once under the profiler; calls per collective kind (all-reduce, all-gather, ...)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    counts: Counter[str] = Counter()
    for event in prof.key_averages():
        kind = C10D_KINDS.get(event.key)
        if kind:
            counts[kind] += event.count
    return dict(sorted(counts.items()))
