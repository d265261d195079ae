"""Tensor-parallel communication overlap styles, priced. Seconds.

``training.tp_comm_overlap`` turns overlap on; ``training.tp_overlap_style`` says how:

- ``pass`` (the default, and paraplan's former only model): a pass's TP collectives hide under
  all of that pass's compute, ``max(0, comm - compute)`` — the bound bulk overlap approaches.
- ``ring-exchange``: Transformer Engine userbuffers as Megatron-Core ``--tp-comm-overlap`` runs
  it (Wang et al. 2023, "Overlap communication with dependent computation via decomposition",
  ASPLOS'23; NVIDIA TE ``initialize_ub``, ring-exchange AG/RS): each sequence-parallel all-gather
  is split into tp chunks pipelined with the column-parallel GEMM it feeds, each reduce-scatter
  with the row-parallel GEMM that produces it. With C the collective's time and g the GEMM's time
  per chunk of 1/tp of the tokens: exposed = C/tp + (tp - 1) * max(0, C/tp - g); compute grows
  by tp * g - G. All-reduces (tp without sequence parallelism) are not decomposed and stay exposed.

  The chunk GEMMs are not run one after another: TE launches chunk i on compute stream
  ``i % S`` of ``S = min(tp, _NUM_MAX_UB_STREAMS)`` streams, ``_NUM_MAX_UB_STREAMS = 3``
  (transformer_engine/pytorch/module/base.py; ``_stream_compute[i % _stream_compute.size()]`` in
  transformer_engine/common/comm_gemm_overlap/comm_gemm_overlap.cpp, split_overlap_ag /
  split_overlap_rs), so up to S chunks share the GPU at once and fill its SMs together. S chunks
  are therefore priced as one GEMM on S/tp of the tokens, g = that time / S: at tp <= 3 the chunks
  cost what the whole GEMM costs; at tp = 8 a third of a chunk's tile-wave loss remains.

  TE's default configuration (``get_default_config`` in ``initialize_ub``) overlaps the forward
  reduce-scatters (``proj_fprop``, ``fc2_fprop``: method ``pipeline``) and the backward dgrad
  reduce-scatters (``qkv_dgrad``, ``fc1_dgrad``: method ``bulk``) with ``num_sm = 16`` communication
  SMs and ``set_sm_margin = True``, so their GEMMs run on ``_math_sms = sm_count - 16`` SMs
  (CommOverlapCore, comm_gemm_overlap.cpp); the ring-exchange all-gathers use copy engines and no
  margin. The GEMM a reduce-scatter drains is therefore priced sm_count / (sm_count - 16) slower
  where the profile gives ``device.sm_count``. (The bulk wgrad GEMMs, qkv_wgrad / fc1_wgrad, also run
  with the margin; they sit in the backward-weight pass, away from any collective here, and are not.)
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..work.context import RingAttention
from ..work.ops import Collective, Gemm, Op

STYLES = ("pass", "ring-exchange")
UB_MAX_STREAMS = 3  # TE _NUM_MAX_UB_STREAMS (transformer_engine/pytorch/module/base.py)
UB_COMM_SMS = 16  # TE initialize_ub get_default_config: num_sm 16 for the pipeline and bulk methods


def sm_margin_slowdown(pricer) -> float:
    """Time factor (>= 1) of a GEMM run beside a pipeline / bulk reduce-scatter: all SMs over the
    ``sm_count - comm SMs`` left to it (the recipe's ``tp_overlap_comm_sms``: TE's 16, 0 for torch's
    async TP, whose transfers are copy-engine copies); 1 when the profile has no ``device.sm_count``."""
    sms = pricer.hardware.device.sm_count
    comm_sms = pricer.training.recipe_spec.tp_overlap_comm_sms
    return sms / (sms - comm_sms) if sms and sms > comm_sms else 1.0


def chunk_gemm_time(gemm: Gemm, tp: int, pricer) -> float:
    """Seconds of one of the ``tp`` chunk GEMMs of ``gemm`` (1/tp of its rows each) when the recipe runs
    them round-robin on ``min(tp, streams)`` concurrent compute streams (``tp_overlap_streams``: TE's
    3; torch's async TP issues them on one stream): the concurrent chunks together cost one GEMM on
    their combined rows."""
    streams = min(tp, pricer.training.recipe_spec.tp_overlap_streams)
    together = pricer.op_time(replace(gemm, m=math.ceil(gemm.m * streams / tp)))
    return together / streams


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
    fp8_exposed = pricer.training.precision == "fp8" and not pricer.training.recipe_spec.tp_overlap_fp8
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
        if j is not None and fp8_exposed and ops[j].name != "router":  # the release does not decompose fp8 GEMMs
            j = None
        if j is None or tp <= 1:
            comm += c
            continue
        used.add(j)
        gemm = ops[j]
        whole = pricer.op_time(gemm)
        chunk = chunk_gemm_time(gemm, tp, pricer)
        if op.kind == "reduce-scatter":  # pipeline / bulk: the GEMM runs on sm_count - 16 SMs
            chunk *= sm_margin_slowdown(pricer)
        comm += c / tp + (tp - 1) * max(0.0, c / tp - chunk)
        compute += tp * chunk - whole
    return compute, comm
