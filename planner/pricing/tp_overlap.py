"""Tensor-parallel communication overlap styles, priced. Seconds.

``training.tp_comm_overlap`` turns overlap on; ``training.tp_overlap_style`` says how:

- ``pass`` (the default, and paraplan's former only model): a pass's TP collectives hide under
  all of that pass's compute, ``max(0, comm - compute)`` — the bound bulk overlap approaches.
- ``ring-exchange``: Transformer Engine userbuffers as Megatron-Core ``--tp-comm-overlap`` runs
  it (Wang et al. 2023, "Overlap communication with dependent computation via decomposition",
  ASPLOS'23; NVIDIA TE ``initialize_ub``, ring-exchange AG/RS): each sequence-parallel all-gather
  is split into tp chunks pipelined with the column-parallel GEMM it feeds, each reduce-scatter
  with the row-parallel GEMM that produces it. With C the collective's time and g the GEMM's time
  on 1/tp of the tokens (priced at that smaller size, so chunking costs efficiency):
  exposed = C/tp + (tp - 1) * max(0, C/tp - g); compute grows by tp * g - G.
  All-reduces (tp without sequence parallelism) are not decomposed and stay exposed.
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..work.context import RingAttention
from ..work.ops import Collective, Gemm, Op

STYLES = ("pass", "ring-exchange")


def _paired_gemm(ops: tuple[Op, ...], i: int, kind: str, used: set[int]) -> int | None:
    """Index of the GEMM an all-gather feeds (the next one) or a reduce-scatter drains (the previous one)."""
    step = 1 if kind == "all-gather" else -1
    j = i + step
    while 0 <= j < len(ops):
        op = ops[j]
        if isinstance(op, Gemm):
            return None if j in used else j
        if isinstance(op, Collective):
            return None
        j += step
    return None


def ring_exchange_time(ops: tuple[Op, ...], pricer) -> tuple[float, float]:
    """(compute, exposed TP communication) seconds of ``ops`` under ring-exchange overlap."""
    compute = comm = 0.0
    used: set[int] = set()
    tp = pricer.layout.tp
    for op in ops:
        if isinstance(op, RingAttention):  # its exposed cp exchange is BlockTime.cp_comm, not TP
            compute += pricer.ring_attention_time(op)[0]
        elif not isinstance(op, Collective):
            compute += pricer.op_time(op)
    for i, op in enumerate(ops):
        if not isinstance(op, Collective) or op.axis == "cp":  # cp collectives: BlockTime.cp_comm
            continue
        c = pricer.op_time(op)
        j = _paired_gemm(ops, i, op.kind, used) if op.axis == "tp" and op.kind != "all-reduce" else None
        if j is None or tp <= 1:
            comm += c
            continue
        used.add(j)
        gemm = ops[j]
        whole = pricer.op_time(gemm)
        chunk = pricer.op_time(replace(gemm, m=math.ceil(gemm.m / tp)))
        comm += c / tp + (tp - 1) * max(0.0, c / tp - chunk)
        compute += tp * chunk - whole
    return compute, comm
