"""How a MoE layer's host syncs and expert-parallel all-to-alls sit against its compute. Seconds.

Host syncs (``HostSync``, planner.work.moe): the CPU waits at the sync until the GPU has caught up, so it
cannot run ahead of the device across it. A block holding a sync is therefore bounded by its own host
dispatch (``max(device, host)``, not the pass-level floor of planner.cost.analytic) and pays, per sync,
the dispatch of the first kernel after it on an empty queue (the recipe's ``host_dispatch_us``).

1F1B A2A overlap (Megatron-Core ``--overlap-moe-expert-parallel-comm``; megatron/core/pipeline_parallel/
combined_1f1b.py, Megatron-Core 0.19.2: "the forward pass of Transformer layers for one micro-batch runs in
parallel with the backward pass of another"): in the schedule's steady phase a layer's forward (of micro-batch
i+1) and backward (of micro-batch i) run as one plan on a compute and a communication stream
(megatron/core/models/common/model_chunk_schedule_plan.py:231-233, ``TransformerLayerSchedulePlan.run``)::

    comm_stream: combine_bwd       | dispatch_fwd -> dispatch_bwd   | combine_fwd
    comp_stream: pre_dispatch_fwd  | mlp_bwd -> mlp_bwd_dw -> mlp_fwd | pre_dispatch_bwd

with the dependencies dispatch_fwd -> mlp_fwd -> combine_fwd and mlp_bwd -> dispatch_bwd -> pre_dispatch_bwd,
so one layer pair takes ``max(C_b, P_f) + max(D_f, M_b + M_b,dw) + max(D_b, M_f) + max(C_f, P_b + P_b,dw)``
(``paired_layer_time``) instead of the sum of its ten parts; the warm-up forward passes and the last backward
have no partner (``overlap_fraction``). DualPipe (DeepSeek-V3, arXiv 2412.19437, Sec. 3.2.1) pairs forward and backward chunks the same way;
its bidirectional bubble is not modelled. The hidden communication's kernels occupy SMs the compute then lacks
(``dispatcher_sms``): DeepEP's dispatch/combine run on 20 SMs (DeepSeek-V3 Sec. 3.2.2: "only 20 SMs"; Megatron-Core
``moe_deepep_num_sms`` default 20), HybridEP's on 16 (``moe_hybridep_num_sms`` default 16, Megatron-Core 0.16.0
transformer_config.py), NCCL's all-to-all on its channels' CTAs (the profile's ``node.collective_sms``); the compute
beside them runs on the rest, its single-stream GEMMs in two waves on a device with persistent GEMMs
(planner.pricing.compute.overlap_slowdown, the one formula of that cost, folded by compute.beside_slowdown).
"""

from __future__ import annotations

from .compute import beside_slowdown

DEEPEP_SMS = 20  # SMs DeepEP's normal kernels use in training (DeepSeek-V3 Sec. 3.2.2; Megatron-Core default)
HYBRIDEP_SMS = 16  # Megatron-Core moe_hybridep_num_sms default ("16 SMs can generally achieve good bandwidth")


def dispatcher_sms(dispatcher: str, collective_sms: int | None) -> int | None:
    """SMs the MoE dispatch / combine kernels of ``dispatcher`` hold: DeepEP's 20, HybridEP's 16, else NCCL's
    all-to-all on ``collective_sms`` (one CTA per channel)."""
    return {"deepep": DEEPEP_SMS, "hybridep": HYBRIDEP_SMS}.get(dispatcher, collective_sms)


def synced_block(compute: float, comm: float, cp_comm: float, host: float, syncs: int,
                 dispatch_s: float) -> tuple[float, float]:
    """(compute, host) seconds a block contributes to its pass. Without syncs: unchanged (the host floor is
    applied per pass). With ``syncs``: compute = max(compute, host - comm - cp_comm) + syncs * dispatch_s, and
    the CPU is held for the block's whole wall time (host = compute + comm + cp_comm)."""
    if not syncs:
        return compute, host
    wall = max(compute, host - comm - cp_comm) + syncs * dispatch_s
    return wall, wall + comm + cp_comm


def overlap_fraction(micro_batches: int, pp: int, vpp: int) -> float:
    """Share of a stage's micro-batch passes that run paired in the combined 1F1B schedule: all but the
    warm-up forwards of pipeline rank 0, ``(pp - 1) * 2 + (vpp - 1) * pp`` chunk passes with interleaving
    (megatron/core/pipeline_parallel/schedules.py ``get_pp_rank_microbatches``) plus the one extra
    micro-batch the overlap schedules first (schedules.py:939-942), of ``micro_batches * vpp`` chunk passes;
    without pipelining, all but one micro-batch (combined_1f1b_schedule_for_no_pipelining)."""
    passes = micro_batches * vpp
    warmup = 1 if pp == 1 else (pp - 1) * 2 + (vpp - 1) * pp + 1
    return max(0, passes - warmup) / passes


def paired_layer_time(p_f: float, d_f: float, m_f: float, c_f: float, p_b: float, d_b: float, m_b: float,
                      c_b: float, slowdowns: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)) -> float:
    """Seconds of one MoE layer's forward and the paired micro-batch's backward run as one plan (module
    docstring): ``p`` the pre-dispatch compute (attention, router, permutation; the backward's with its weight
    gradients and recompute), ``d`` / ``c`` the dispatch / combine communication, ``m`` the expert compute (the
    backward's with its weight gradients), ``_f`` forward, ``_b`` backward. ``slowdowns``: extra seconds per second
    of (p_f, m_f, p_b, m_b) run while the communication kernels hold their SMs (Pricer.expert_comm_slowdown of each
    part's single-stream GEMM share); each phase ends at max(comm, comp) plus ``compute.beside_slowdown``, the fold
    every overlap uses."""
    s_pf, s_mf, s_pb, s_mb = slowdowns

    def phase(comm: float, comp: float, slow: float) -> float:
        return max(comm, comp) + beside_slowdown(comp, comm, slow)
    return phase(c_b, p_f, s_pf) + phase(d_f, m_b, s_mb) + phase(d_b, m_f, s_mf) + phase(c_f, p_b, s_pb)


__all__ = ["DEEPEP_SMS", "HYBRIDEP_SMS", "dispatcher_sms", "overlap_fraction", "paired_layer_time", "synced_block"]
