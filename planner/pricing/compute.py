"""Time of compute ops on one device: GEMMs from a size-dependent efficiency curve, attention
from measured fused-kernel efficiency, memory-bound ops from HBM bandwidth (roofline:
Williams et al. 2009, CACM 52(4)). Seconds."""

from __future__ import annotations

import bisect
import math

from ..specs import DeviceSpec
from ..work.ops import Attention, Gemm, MemoryOp


class ComputePricer:
    """Prices compute ops on ``device`` for a training ``precision`` (bf16 / fp16 / fp8)."""

    def __init__(self, device: DeviceSpec, precision: str):
        self.device = device
        self.precision = precision
        half = "fp16" if precision == "fp16" else "bf16"
        self.peak_flops = device.peak_tflops.for_dtype(half) * 1e12
        self.gemm_speedup = 1.0
        if precision == "fp8":
            device.peak_tflops.for_dtype("fp8")  # raises a clear error when the chip has no fp8
            self.gemm_speedup = device.fp8_gemm_speedup
        pts = device.gemm_efficiency
        self._log_sizes = [math.log(p.gflop) for p in pts]
        self._effs = [p.efficiency for p in pts]
        self.memory_bw = device.hbm_bandwidth_gbps * 1e9 * device.memory_efficiency
        self.overhead_s = device.kernel_overhead_us * 1e-6
        self._cache: dict[tuple[int, int, int], float] = {}

    def gemm_efficiency(self, m: int, n: int, k: int) -> float:
        """Fraction of the 16-bit dense peak a GEMM of this shape reaches: the device curve,
        log-interpolated in GEMM size (clamped at its ends), times a linear fall-off when the
        smallest dimension is under ``gemm_min_dim_knee`` (tile under-utilisation)."""
        return self._efficiency_at(2.0 * m * n * k, min(m, n, k))

    def _efficiency_at(self, flops: float, min_dim: int) -> float:
        """The curve at ``flops`` (GEMM work, FLOPs) with the small-dimension fall-off at ``min_dim``."""
        x = math.log(max(flops / 1e9, 1e-12))
        xs, ys = self._log_sizes, self._effs
        if x <= xs[0]:
            eff = ys[0]
        elif x >= xs[-1]:
            eff = ys[-1]
        else:
            i = bisect.bisect_right(xs, x)
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
            eff = ys[i - 1] + w * (ys[i] - ys[i - 1])
        knee = self.device.gemm_min_dim_knee
        if knee:
            eff *= min(1.0, min_dim / knee)
        return max(eff, 1e-4)

    def gemm_time(self, op: Gemm) -> float:
        """Seconds for ``op``: FLOPs / (peak * efficiency * fp8 speed-up) + launch overhead."""
        key = (op.m, op.n, op.k)
        per = self._cache.get(key)
        if per is None:
            flops = 2.0 * op.m * op.n * op.k
            per = flops / (self.peak_flops * self.gemm_efficiency(*key) * self.gemm_speedup)
            self._cache[key] = per
        return op.count * (per + self.overhead_s)

    def grouped_gemm_time(self, op: Gemm) -> float:
        """Seconds for ``op.count`` GEMMs of one shape run as one grouped kernel (Megatron-Core
        ``--moe-grouped-gemm``, CUTLASS grouped GEMM): each at the efficiency of its own shape, one launch."""
        return self.gemm_time(op) - (op.count - 1) * self.overhead_s

    def attention_time(self, op: Attention) -> float:
        """Seconds for the attention core. Fused: executed FLOPs at the measured kernel efficiency
        (forward / backward). Unfused: QK^T and PV as batched GEMMs (the softmax is a MemoryOp)."""
        if op.fused:
            eff = (self.device.attention_backward_efficiency if op.phase.startswith("bwd")
                   else self.device.attention_efficiency)
            return op.executed_flops / (self.peak_flops * eff) + self.overhead_s
        # QK^T and PV run as batched GEMMs over every local head (Megatron's baddbmm/bmm): the
        # efficiency of a GEMM of the batch's total size, with the tile fall-off of its smallest dim
        fwd_flops = op.forward_model_flops / 2  # one of the two batched GEMMs
        eff = self._efficiency_at(fwd_flops, min(op.seq_q, op.seq_k, op.head_dim))
        return op.executed_flops / (self.peak_flops * eff) + 2 * self.overhead_s

    def memory_time(self, op: MemoryOp) -> float:
        """Seconds for a memory-bound op: bytes / achieved HBM bandwidth + launch overhead."""
        return op.bytes_moved / self.memory_bw + self.overhead_s

    def optimizer_time(self, params: float) -> float:
        """Seconds for a fused Adam step over ``params`` parameters (measured params/s)."""
        return params / self.device.optimizer_params_per_s
