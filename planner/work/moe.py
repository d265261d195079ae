"""Ops and activation bytes of one mixture-of-experts FFN, one micro-batch, one rank.

Megatron-Core MoE with the alltoall token dispatcher (Megatron-Core MoE guide; GShard, Lepikhin et
al. 2020, arXiv 2006.16668, Sec. 2.2; DeepSpeed-MoE, Rajbhandari et al. 2022, arXiv 2201.05596,
Sec. 5): tokens enter sequence-parallel (T_in = T/t of them per rank when t > 1), the router
GEMM scores all E experts and keeps the top k; the k copies of each token are permuted into
expert order and sent to their experts' ranks by an all-to-all over the ep group (dispatch),
all-gathered over the expert tensor-parallel group (etp), pushed through the E/ep local experts
as grouped GEMMs, then reduce-scattered over etp, sent back by a second all-to-all (combine)
and un-permuted with their routing weights. Shared experts run as a dense TP-sharded FFN on all
tokens, next to the routed path (overlappable with the all-to-alls).

Dropless dispatch needs the token counts on the host before it can size the exchanged buffers: Megatron-Core's
alltoall dispatcher all-gathers the per-expert counts over its tp x ep group and synchronises the host with the
device before the ep all-to-all (megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher.
preprocess: ``gather_from_sequence_parallel_region(num_local_tokens_per_expert, group=self.tp_ep_group)`` and
``_maybe_update_cuda_sync_point("before_ep_alltoall")``, Megatron-Core 0.19.2); DeepEP's normal dispatch exchanges
the counts inside its notify kernel and the CPU spins until the received count lands (DeepEP v1.2.1
csrc/deep_ep.cpp:451 and :818, ``while (true) { num_recv_tokens = *moe_recv_counter ...``). Both are a
``HostSync`` in the forward (and its recompute); padded-to-capacity dispatch has fixed shapes and neither
(``drop_and_pad``, token_dispatcher.py preprocess). The permutation reads the routing map and gathers the token
indices in expert order (megatron/core/transformer/moe/moe_utils.py ``permute``: the routing map transposed to
E x T and the token indices masked-selected from it), an index pass over T_in x E entries.

The received copies are permuted a second time: the alltoall dispatcher sorts what the all-to-all delivered
(grouped by source rank) by local expert before the experts and restores the order before the combine
(token_dispatcher.py ``dispatch_postprocess`` "Permutation 2: Sort tokens by local expert" and
``combine_preprocess`` "Unpermutation 2", ``sort_chunks_by_idxs``; a ``transpose().contiguous()`` copy when padded
to capacity), whenever a rank holds more than one expert. The flex dispatcher (DeepEP, HybridEP) fuses the global
permutation into its communication kernel and sends a token once to each destination rank, then expands the
received tokens into the local experts' copies after the dispatch and sums them back before the combine
(``_DeepepManager.get_permuted_hidden_states_by_experts`` / ``get_restored_hidden_states_by_experts``; "The Flex
Dispatcher of DeepEP or HybridEP fuses the global permute into the communication kernel ... but still requires a
permute kernel to copy and rearrange the tokens distributed to different local experts after EP communication",
Megatron-LM docs/discussions/deepseek-v3-gb200-optimization, Sec. 2.1.1).

Load (stated in the output): each local expert receives on average
``R/(E/ep)`` tokens, R = T_in*k*etp copies per rank. Dropless with ``moe_load_imbalance`` = L
(max/mean tokens per expert, 1 = balanced) or padded to ``moe_capacity_factor`` = C: the busiest
rank's grouped GEMMs execute L (or C) times the mean token count; model FLOPs count the routed
copies only (MFU counts active parameters). Bytes: 16-bit activations (ACT_BYTES).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec
from .ops import Collective, CountExchange, ExecutedGemm, Gemm, HostSync, MemoryOp, Op, TokenAllToAll
from .params import expert_ffn_size, mlp_parameters, shared_expert_ffn_size

ACT_BYTES = 2
PROB_BYTES = 4  # fp32 router scores (Megatron-Core --moe-router-dtype fp32)
COUNT_BYTES = 8  # int64 tokens-per-expert counts (token_dispatcher.py: routing_map.sum(dim=0).long())
# routing-map transpose (bool read + write) and the int64 token index it masks, per T_in x E entry (moe_utils.permute)
INDEX_BYTES = 1 + 1 + 8
#: Megatron-Core's flex token dispatcher backends (--moe-token-dispatcher-type flex --moe-flex-dispatcher-backend)
FLEX_DISPATCHERS = ("deepep", "hybridep")


def flex_dispatch(training: TrainingSpec) -> bool:
    """Whether the MoE layers dispatch through the flex dispatcher (DeepEP or HybridEP): one copy of a token per
    destination rank (and per destination node over the network), the permutation after the dispatch."""
    return training.moe_token_dispatcher in FLEX_DISPATCHERS


def expected_distinct(units: int, experts: int, picks: int) -> float:
    """Expected number of the ``units`` equal blocks of ``experts`` (ranks or nodes, ``experts / units`` experts
    each) that ``picks`` distinct experts drawn uniformly at random fall in: units * (1 - C(E - E/u, k) / C(E, k))
    (the hypergeometric chance that a block gets none of the k picks; with ``experts`` 0, picks with replacement). Balanced routing is uniform: Megatron-Core's
    --moe-router-force-load-balancing draws random router logits (router.py ``apply_random_logits``)."""
    if units <= 1:
        return float(max(units, 0))
    if experts <= 0:  # experts not known: picks with replacement, u (1 - (1 - 1/u)^k)
        return units * (1.0 - (1.0 - 1.0 / units) ** picks)
    per = experts // units
    if per <= 0 or picks > experts - per:
        return float(units)
    return units * (1.0 - math.comb(experts - per, picks) / math.comb(experts, picks))


@dataclass(frozen=True, slots=True)
class MoeDims:
    """Per-rank MoE dimensions of one micro-batch."""

    tokens: int  # T: tokens of the micro-batch on this (tp) rank group
    tokens_in: int  # T_in: tokens this rank routes (T/t with sequence parallelism)
    hidden: int
    experts: int  # E
    top_k: int  # k
    local_experts: int  # E / ep
    copies: int  # R = T_in * k * etp token copies this rank's experts process (mean)
    expert_width_local: int  # f_e / etp
    gate_factor: int  # 2 for gated FFNs
    load: float  # executed / mean tokens per expert (imbalance or capacity factor)
    shared_width_local: int  # S * f_s / t (0 without shared experts)
    ep: int
    etp: int
    tp: int

    @property
    def tokens_per_expert(self) -> float:
        """Mean routed token copies per local expert."""
        return self.copies / self.local_experts

    @property
    def executed_tokens_per_expert(self) -> int:
        """Token rows each grouped GEMM executes on the busiest rank."""
        return math.ceil(self.tokens_per_expert * self.load)


def moe_load(training: TrainingSpec) -> float:
    """Executed / mean tokens per expert: the capacity factor when padding to capacity, else the
    stated dropless imbalance (max/mean)."""
    return training.moe_capacity_factor if training.moe_capacity_factor is not None else training.moe_load_imbalance


def moe_dims(model: ModelSpec, training: TrainingSpec, layout: Layout) -> MoeDims:
    """MoE dimensions of one micro-batch on one rank."""
    t, etp, ep = layout.tp, layout.expert_tp, layout.ep
    tokens = training.micro_batch_size * (training.seq_length // layout.cp)
    tokens_in = tokens // t if t > 1 else tokens
    k = model.moe_top_k
    return MoeDims(
        tokens=tokens, tokens_in=tokens_in, hidden=model.hidden_size, experts=model.num_experts, top_k=k,
        local_experts=model.num_experts // ep, copies=tokens_in * k * etp,
        expert_width_local=expert_ffn_size(model) // etp, gate_factor=2 if model.gated_ffn else 1,
        load=moe_load(training),
        shared_width_local=model.num_shared_experts * shared_expert_ffn_size(model) // t if model.num_shared_experts
        else 0,
        ep=ep, etp=etp, tp=t,
    )


def _experts(m: MoeDims, name: str, n: int, k: int, phase: str) -> ExecutedGemm:
    """Grouped GEMM of the local experts: E/ep GEMMs of (rows x k) @ (k x n), priced on the GEMM
    curve at the busiest rank's per-expert row count."""
    gemm = Gemm(name, m.executed_tokens_per_expert, n, k, phase, m.local_experts)
    return ExecutedGemm(name, gemm, 2.0 * m.copies * n * k, phase)


def moe_forward(model: ModelSpec, training: TrainingSpec, layout: Layout, phase: str,
                tp_in: list[Op], tp_out: list[Op]) -> list[Op]:
    """Forward ops of one MoE FFN (``tp_in`` / ``tp_out``: the sequence-parallel all-gather and
    reduce-scatter around a TP-sharded block, used by the shared experts)."""
    m = moe_dims(model, training, layout)
    h, tin = m.hidden, m.tokens_in
    routed_bytes = tin * m.top_k * h * ACT_BYTES
    ops: list[Op] = [
        Gemm("router", tin, m.experts, h, phase),
        # score function and top-k: read 16-bit logits, write fp32 scores and the k routing weights
        MemoryOp("router.topk", tin * m.experts * (ACT_BYTES + PROB_BYTES) + tin * m.top_k * PROB_BYTES, phase),
    ]
    flex = flex_dispatch(training) and m.ep > 1
    dropless = training.moe_capacity_factor is None
    if dropless:  # without ep the grouped GEMM's per-expert splits still reach the host ("before_finish")
        if m.ep * m.etp > 1 and not flex:  # the alltoall dispatcher's count exchange (DeepEP's: its notify kernel)
            ops.append(CountExchange("moe.split_sizes", "all-gather", "ep", m.experts * COUNT_BYTES * m.ep * m.etp,
                                     phase))
        ops.append(HostSync("moe.sync", 0.0, phase, "sync", 1, 0.0))
    ops.append(MemoryOp("moe.permute.index", tin * m.experts * INDEX_BYTES, phase, launches=2, bwd_factor=0.0))
    if not flex:
        ops.append(MemoryOp("moe.permute", 2 * routed_bytes, phase))  # gather the k copies in expert order
    limit = model.moe_router_group_topk if model.moe_router_num_groups > 1 else None
    if m.ep > 1:
        ops.append(TokenAllToAll("moe.dispatch", "all-to-all", "ep", routed_bytes, phase, copies=m.top_k,
                                 node_dedup=flex, max_nodes=limit, experts=m.experts))
    if m.etp > 1:
        ops.append(Collective("moe.dispatch.allgather", "all-gather", "etp", routed_bytes * m.etp, phase))
    rows = m.executed_tokens_per_expert * m.local_experts  # copies the busiest rank's experts process
    if flex:  # the received tokens expanded into the local experts' copies (read once per copy, written)
        ops.append(MemoryOp("moe.permute", 2 * rows * h * ACT_BYTES, phase))
    elif m.local_experts > 1:  # Permutation 2: sort the received copies (and their fp32 probs) by local expert
        ops.append(MemoryOp("moe.sort_chunks", 2 * rows * (h * ACT_BYTES + PROB_BYTES), phase, bwd_factor=1.0))
    f = m.expert_width_local
    ops.append(_experts(m, "experts.fc1", f * m.gate_factor, h, phase))
    act_io = (m.gate_factor + 1) * ACT_BYTES
    ops.append(MemoryOp("experts.activation", rows * f * act_io, phase))
    ops.append(_experts(m, "experts.fc2", h, f, phase))
    if flex:  # the local experts' copies summed back into the received tokens (one per source token)
        received = tin * m.etp * expected_distinct(m.ep, m.experts, m.top_k)
        ops.append(MemoryOp("moe.unpermute", (rows + received) * h * ACT_BYTES, phase))
    elif m.local_experts > 1:  # Unpermutation 2: back to the order the combine all-to-all sends in
        ops.append(MemoryOp("moe.unsort_chunks", 2 * rows * h * ACT_BYTES, phase, bwd_factor=1.0))
    if m.etp > 1:
        ops.append(Collective("moe.combine.reducescatter", "reduce-scatter", "etp", routed_bytes * m.etp, phase))
    if m.ep > 1:
        ops.append(TokenAllToAll("moe.combine", "all-to-all", "ep", routed_bytes, phase, copies=m.top_k,
                                 node_dedup=flex, max_nodes=limit, experts=m.experts, combine=True))
    if not flex:
        ops.append(MemoryOp("moe.unpermute", 2 * routed_bytes + tin * h * ACT_BYTES, phase))  # weighted sum of k
    if m.shared_width_local:
        T, s = m.tokens, m.shared_width_local
        ops += tp_in
        ops.append(Gemm("shared.fc1", T, s * m.gate_factor, h, phase))
        ops.append(MemoryOp("shared.activation", T * s * act_io, phase))
        ops.append(Gemm("shared.fc2", T, h, s, phase))
        if model.shared_expert_gate:
            ops.append(Gemm("shared.gate", T, 1, h, phase))
        ops += tp_out
    return ops


def moe_activation_bytes(model: ModelSpec, training: TrainingSpec, layout: Layout) -> float:
    """Activations one MoE FFN keeps for backward (Korthikanti-style itemisation, × k for the
    routed copies): router scores (fp32), the permuted expert inputs, the expert activation
    inputs and fc2 inputs of the executed rows, and the shared experts like a dense FFN."""
    m = moe_dims(model, training, layout)
    rows = m.executed_tokens_per_expert * m.local_experts
    f = m.expert_width_local
    out = m.tokens_in * m.experts * PROB_BYTES
    out += rows * m.hidden * ACT_BYTES  # fc1 input (the dispatched copies)
    out += rows * f * ACT_BYTES * (m.gate_factor + 1)  # activation input(s) and fc2 input
    if m.shared_width_local:
        out += m.tokens * m.shared_width_local * ACT_BYTES * (m.gate_factor + 1)
    return out


def expert_parameters_per_rank(model: ModelSpec, layout: Layout) -> float:
    """Routed-expert parameters of one MoE layer held by one rank: E/ep experts, each split over etp."""
    return model.num_experts // layout.ep * mlp_parameters(model, expert_ffn_size(model)) / layout.expert_tp


def moe_linear_params(model: ModelSpec, layout: Layout) -> tuple[float, int]:
    """(Linear weight + bias parameters of one MoE FFN on one rank, number of such tensors): the router
    and the shared experts split like the dense parameters (over t, as planner.work.step counts
    them), plus the rank's routed experts (``expert_parameters_per_rank``). Autocast casts each."""
    mats = 3 if model.gated_ffn else 2
    tensors = mats * (2 if model.linear_bias else 1)
    router = model.hidden_size * model.num_experts + (model.num_experts if model.moe_router_bias else 0)
    shared = model.num_shared_experts * mlp_parameters(model, shared_expert_ffn_size(model))
    shared += model.hidden_size if (model.shared_expert_gate and model.num_shared_experts) else 0
    params = (router + shared) / layout.tp + expert_parameters_per_rank(model, layout)
    n = 1 + (model.num_experts // layout.ep + model.num_shared_experts) * tensors + bool(model.shared_expert_gate)
    return params, n


def moe_note(model: ModelSpec, training: TrainingSpec, layout: Layout) -> str:
    """The estimate's statement of how the MoE layers were priced."""
    m = moe_dims(model, training, layout)
    if training.moe_capacity_factor is not None:
        load = f"padded to capacity factor {training.moe_capacity_factor:g}"
    else:
        load = (f"dropless, load imbalance {training.moe_load_imbalance:g} (max/mean tokens per expert"
                + ("; 1 = balanced" if training.moe_load_imbalance == 1 else "") + ")")
    dense = (f"; the {model.num_dense_layers} dense-FFN layers are in stage 0's embedding block (the stage's "
             "'layers' count MoE layers)" if model.num_dense_layers else "")
    return (f"MoE: {model.num_experts} experts top-{model.moe_top_k}, ep{layout.ep} etp{layout.expert_tp} "
            f"({m.local_experts} experts per rank, {m.tokens_per_expert:.0f} tokens per expert per micro-batch), "
            f"{load}; the all-to-alls are booked under tp_comm (in-layer communication); MFU counts active "
            f"parameters only{dense}")
