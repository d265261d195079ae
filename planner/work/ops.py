"""The kinds of work a training step is made of: GEMMs, attention, memory-bound ops, communication.

Each op knows its FLOPs or bytes; none knows its time (that is ``planner.pricing``).
FLOPs are floating-point operations (a multiply-add = 2), bytes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Phase = Literal["fwd", "bwd_input", "bwd_weight", "recompute"]
CollectiveKind = Literal["all-reduce", "all-gather", "reduce-scatter", "send-recv", "all-to-all"]
# ep / etp / edp: the expert-parallel, expert-tensor-parallel and expert-data-parallel groups of
# Megatron-Core's expert grid (planner.pricing.placement)
Axis = Literal["tp", "pp", "dp", "dp_shard", "dp_replicate", "cp", "ep", "etp", "edp"]


@dataclass(frozen=True, slots=True)
class Gemm:
    """A (batched) matrix multiply (m x k) @ (k x n), repeated ``count`` times."""

    name: str
    m: int
    n: int
    k: int
    phase: Phase
    count: int = 1

    @property
    def flops(self) -> float:
        """2*m*n*k*count FLOPs (one multiply-add = 2 FLOPs)."""
        return 2.0 * self.m * self.n * self.k * self.count


@dataclass(frozen=True, slots=True)
class ExecutedGemm:
    """A GEMM whose executed shape ``gemm`` differs from the model FLOPs it carries: grouped expert
    GEMMs of the busiest rank (imbalance or capacity padding above the mean token count), or a
    projection every tensor-parallel rank executes in full (``model_flops`` is then its 1/t share)."""

    name: str
    gemm: Gemm
    model_flops: float
    phase: Phase

    @property
    def flops(self) -> float:
        """Model FLOPs (the useful work), not the executed ``gemm.flops``."""
        return self.model_flops


@dataclass(frozen=True, slots=True)
class Attention:
    """Attention core softmax(QK^T)V over ``batch_heads`` (batch x local heads) sequences.

    ``model_flops`` counts the full s x s score matrix (the convention of Narayanan et al. 2021
    Eq. 3 and Korthikanti et al. 2022 Eq. 7); ``executed_flops`` halves it for causal fused
    kernels, which skip masked blocks (Dao 2023, FlashAttention-2, arXiv 2307.08691).
    Backward counts 2x forward in model FLOPs; a fused kernel executes 2.5x (it recomputes the
    scores), the convention of the FlashAttention papers' benchmarks.
    """

    name: str
    batch_heads: int
    seq_q: int
    seq_k: int
    head_dim: int
    phase: Phase
    causal: bool = True
    fused: bool = True
    window: int | None = None  # sliding window (keys each query sees) of the windowed layers
    window_share: float = 0.0  # share of the layers this op stands for that attend in the window

    @property
    def window_fraction(self) -> float:
        """Score entries a causal windowed layer computes over a causal full one: ``W(W+1)/2 + (s - W) W``
        over ``s(s+1)/2`` for a window W < s (the exact causal band; Megatron-Bridge flop_utils.py
        ``calculate_swa_context``), 1 without a window."""
        w, s = self.window, self.seq_k
        if not w or w >= s:
            return 1.0
        return (w * (w + 1) / 2 + (s - w) * w) / (s * (s + 1) / 2)

    @property
    def windowed(self) -> float:
        """Factor of the windowed layers on this op's FLOPs: (1 - share) + share * window_fraction."""
        return 1.0 - self.window_share + self.window_share * self.window_fraction

    @property
    def forward_model_flops(self) -> float:
        """QK^T and PV: 2 * 2 * bh * s_q * s_k * d FLOPs (the windowed layers' share at their band)."""
        return 4.0 * self.batch_heads * self.seq_q * self.seq_k * self.head_dim * self.windowed

    @property
    def flops(self) -> float:
        """Model FLOPs of this op: forward 1x, backward 2x the forward (full score matrix)."""
        return self.forward_model_flops * (2.0 if self.phase.startswith("bwd") else 1.0)

    @property
    def executed_flops(self) -> float:
        """FLOPs a kernel performs: causal fused kernels do half (and only the window's band); unfused ones
        compute the whole score matrix and mask it; fused backward does 2.5x forward."""
        fwd = self.forward_model_flops * (0.5 if (self.causal and self.fused) else 1.0 / self.windowed)
        if self.phase.startswith("bwd"):
            return fwd * (2.5 if self.fused else 2.0)
        return fwd


KernelClass = Literal[
    "copy", "cast", "add", "norm_fwd", "norm_bwd", "activation_fwd", "activation_bwd", "swiglu_fwd",
    "swiglu_bwd", "softmax", "dropout_fwd", "dropout_bwd", "reduce", "embedding", "loss", "fused", "sync",
]


@dataclass(frozen=True, slots=True)
class MemoryOp:
    """A memory-bound op (norm, activation, dropout, residual add, softmax, cast, copy, reduction,
    embedding gather). ``bytes_moved`` counts every tensor read and written once; ``kind`` is its
    kernel class (priced at that class's bandwidth); ``launches`` the kernels it takes (an eager
    hand-written RMSNorm is several); ``bwd_factor`` scales its bytes into its backward kernel's
    (reads of the saved input and of the gradient, write of the input gradient: 1.5x a 1-in/1-out op)
    and ``bwd_kind`` that kernel's class (0 = no backward kernel)."""

    name: str
    bytes_moved: float
    phase: Phase
    kind: KernelClass = "copy"
    launches: int = 1
    bwd_factor: float = 2.0
    bwd_kind: KernelClass | None = None

    @property
    def flops(self) -> float:
        """Memory-bound ops are not counted in model FLOPs."""
        return 0.0


@dataclass(frozen=True, slots=True)
class Collective:
    """A collective over one mesh axis; ``bytes`` is the full buffer (all-reduce input size,
    gathered size for all-gather / reduce-scatter, message size for send-recv), issued as ``calls``
    equal collectives of ``bytes / calls`` each (ZeRO-3 / FSDP: one per sharded unit, i.e. per layer),
    so each call pays the latency term. For an all-to-all ``bytes`` is what each rank sends in
    total (its share for itself included). ``staging_bytes`` (over all calls) and ``staging_kernels`` (per
    call) are the HBM copies and fills the framework runs around each call on the communication stream
    (torch.distributed's tensor-list API copies each rank's chunk with its own kernel; planner.work.zero3_tensors);
    ``staging_views``: Python view ops (no kernel) the framework makes per call; ``staging_host``: the kernels
    are issued one by one from Python in the same loop as the views, each paying the recipe's host dispatch
    (else the views build the call's tensor list before it is issued)."""

    name: str
    kind: CollectiveKind
    axis: Axis
    bytes: float
    phase: Phase
    calls: int = 1
    staging_bytes: float = 0.0
    staging_kernels: int = 0
    staging_views: int = 0
    staging_host: bool = False

    @property
    def flops(self) -> float:
        """Communication carries no model FLOPs."""
        return 0.0


@dataclass(frozen=True, slots=True)
class TokenAllToAll(Collective):
    """The MoE dispatch / combine all-to-all: ``bytes`` carries ``copies`` (top-k) copies of each token, routed
    to ``experts`` experts spread evenly over the group. With ``node_dedup`` (the flex dispatcher: DeepEP,
    HybridEP) a token crosses to each destination node once and is forwarded over the node's links to each
    destination rank once (DeepSeek-V3, arXiv 2412.19437, Sec. 3.2.2; DeepEP ``is_token_in_rank``), reaching
    at most ``max_nodes`` nodes when the router limits the expert groups (node-limited routing). ``combine``:
    the kernel that returns the tokens (the forward combine and the backward of the dispatch), else the one
    that sends them out (the forward dispatch and the backward of the combine)."""

    copies: int = 1
    node_dedup: bool = False
    max_nodes: int | None = None
    experts: int = 0
    combine: bool = False


@dataclass(frozen=True, slots=True)
class HostSync(MemoryOp):
    """A device-to-host copy the CPU waits for before it can launch the next kernel (a dropless MoE
    dispatcher reads the received token counts to size its buffers). Priced as its copy kernel; the
    block holding it cannot be dispatched ahead of the GPU (planner.pricing.synced_block). No backward."""


@dataclass(frozen=True, slots=True)
class CountExchange(Collective):
    """A collective of integer metadata (the MoE token counts per expert that size the all-to-all):
    it carries no gradient, so it has no backward mirror."""


Op = Gemm | ExecutedGemm | Attention | MemoryOp | Collective


def kernel_class(op) -> str:
    """Class of ``op`` in the per-op breakdown: ``gemm``, ``attention``, a memory kernel class, or
    ``comm:<kind>``."""
    if isinstance(op, (Gemm, ExecutedGemm)):
        return "gemm"
    if isinstance(op, Attention):
        return "attention"
    if isinstance(op, MemoryOp):
        return op.kind
    return f"comm:{op.kind}"


def launches(op) -> int:
    """Kernels ``op`` launches (each pays the host's dispatch cost): an ExecutedGemm is one kernel
    (a grouped expert GEMM, priced as one launch by ComputePricer.grouped_gemm_time, or one replicated
    projection)."""
    if isinstance(op, Gemm):
        return op.count
    if isinstance(op, MemoryOp):
        return op.launches
    return 1


def model_flops(ops) -> float:
    """Sum of model FLOPs over ``ops`` (GEMMs and attention)."""
    return sum(op.flops for op in ops)
