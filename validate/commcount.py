"""Which ``c10d::`` dispatcher op is which collective kind, for counting a step's calls in its profile
(validate.tracing counts them on the traced steps).

Every ``torch.distributed`` collective, whichever API issued it (DTensor redistribution, FSDP2, the
pipelining schedules, ZeroRedundancyOptimizer), passes through one ``c10d::`` dispatcher op; counting
those ops per kind gives the communication pattern the validator really ran, to set against the one
the cost model prices (``validate.report.predicted_collective_calls``).
"""

from __future__ import annotations

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
