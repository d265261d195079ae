"""Time of compute ops on one device: GEMMs from a size-dependent efficiency curve, attention
from measured fused-kernel efficiency, memory-bound ops from HBM bandwidth (roofline:
Williams et al. 2009, CACM 52(4)). Seconds."""

from __future__ import annotations

import bisect
import math
from typing import NamedTuple

from ..errors import SpecError
from ..specs import DeviceSpec
from ..work.ops import Attention, Gemm, MemoryOp


def interpolate_clamped(xs: list[float], ys: list[float], x: float) -> float:
    """Piecewise-linear ``ys`` over ascending ``xs`` at ``x``, held at the end values outside them."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_right(xs, x)
    w = (x - xs[i - 1]) / (xs[i] - xs[i - 1])
    return ys[i - 1] + w * (ys[i] - ys[i - 1])


def attention_generation(device: DeviceSpec, training) -> str:
    """The attention kernel a step prices, as a layout class names it (planner.evidence.classify): ``unfused``
    without flash attention, else its kernel table (``attention_kernel_for``) or ``default``, the profile's own."""
    if not training.flash_attention:
        return "unfused"
    return attention_kernel_for(device, training) or "default"


def attention_kernel_for(device: DeviceSpec, training) -> str | None:
    """The attention kernel table a step runs on ``device``: the training's explicit ``attention_kernel``,
    else the one its recipe's release dispatches to (``recipe.attention_kernel_table``) when the device
    has that table, else None (the profile's default ``attention_table``)."""
    if training.attention_kernel is not None:
        return training.attention_kernel
    table = training.recipe_spec.attention_kernel_table
    return table if table is not None and has_attention_kernel(device, table) else None


class DerivedKernel(NamedTuple):
    """An attention kernel generation priced from another generation's measured table on the same device."""

    base: str  #: the measured generation it is priced from
    speed: float  #: its forward + backward (a training pass) speed relative to ``base``
    forward_speed: float | None  #: its forward speed relative to ``base``; None = ``speed``
    source: str

    @property
    def forward_ratio(self) -> float:
        """Its forward speed relative to ``base`` (``forward_speed``, else ``speed``)."""
        return self.speed if self.forward_speed is None else self.forward_speed


#: Attention kernel generations without a measurement of their own on a device, priced from the generation
#: measured there by published speed ratios. Both derive from FlashAttention-2 (Dao 2023, arXiv 2307.08691),
#: whose abstract reports "around 2x speedup compared to FlashAttention" (forward + backward: fewer non-matmul
#: FLOPs, sequence parallelism, split-Q warp partitioning). These changes do not depend on the architecture, and
#: both generations issue the same Ampere mma.sync instructions on Hopper, so the ratio carries to a profile's fa2
#: table.
#:
#: ``fa1``: FlashAttention-1's CUDA kernels (Dao et al. 2022), half of FlashAttention-2 in both directions.
#:
#: ``fa1-triton``: the Triton FlashAttention of that generation (flash-attention's flash_attn_triton.py of
#: eff9fe6b, which llm-foundry's ``attn_impl: triton`` copies). Its docstring says "Triton forward is generally
#: faster than CUDA forward, while Triton backward is generally slower ... Overall Triton forward + backward is
#: slightly slower than CUDA forward + backward". Measured against FlashAttention-1's CUDA forward (A100, causal,
#: head dim 64, 4,096 tokens, triton 2.0.0.dev20221202: 1.86 ms against 2.87 ms, flash-attention issue #142), its
#: forward runs at 2.87 / 1.86 = 1.54x FlashAttention-1, which is 0.77x FlashAttention-2. Its forward + backward
#: is FlashAttention-1's, so its backward takes the rest of that time (``derived_backward_efficiency``).
DERIVED_ATTENTION_KERNELS = {
    "fa1": DerivedKernel("fa2", 0.5, None, "FlashAttention-2 abstract (arXiv 2307.08691): around 2x FlashAttention-1"),
    "fa1-triton": DerivedKernel("fa2", 0.5, 0.5 * 2.87 / 1.86,
                                "forward 1.54x FlashAttention-1 (flash-attention issue #142), forward + backward "
                                "FlashAttention-1's (flash_attn_triton.py docstring; FlashAttention-2 abstract: 2x)"),
}


def derived_backward_efficiency(forward: float, backward: float, kernel: DerivedKernel) -> float:
    """Backward efficiency of a derived generation at one table point whose base generation runs ``forward`` /
    ``backward`` (fractions of peak; backward FLOPs 2.5x forward, as the tables count them): the time of a
    forward + backward at ``kernel.speed`` of the base's, less its forward at ``kernel.forward_ratio`` (with
    both ratios equal, the backward's own ratio is that one too)."""
    total = (1.0 / forward + 2.5 / backward) / kernel.speed
    return 2.5 / (total - 1.0 / (forward * kernel.forward_ratio))


def has_attention_kernel(device: DeviceSpec, name: str) -> bool:
    """Whether kernel generation ``name`` is priceable on ``device``: measured there, or a
    ``DERIVED_ATTENTION_KERNELS`` entry whose base generation is."""
    if name in device.attention_kernel_tables:
        return True
    derived = DERIVED_ATTENTION_KERNELS.get(name)
    return derived is not None and derived.base in device.attention_kernel_tables


def attention_kernel_names(device: DeviceSpec) -> list[str]:
    """Every kernel generation priceable on ``device``, sorted."""
    return sorted(set(device.attention_kernel_tables) | {n for n in DERIVED_ATTENTION_KERNELS
                                                         if has_attention_kernel(device, n)})


def attention_kernel_tables(device: DeviceSpec) -> dict[str, list]:
    """Every attention kernel generation priceable on ``device`` with its table (``attention_points``)."""
    return {name: attention_points(device, name) for name in attention_kernel_names(device)}


def attention_points(device: DeviceSpec, kernel: str | None) -> list:
    """The fused attention table of kernel generation ``kernel`` (measured: ``device.attention_kernel_tables``;
    derived: ``DERIVED_ATTENTION_KERNELS``; None = the profile's ``attention_table``); SpecError naming the
    generations the profile has otherwise."""
    if kernel is None:
        return device.attention_table
    if not has_attention_kernel(device, kernel):
        have = ", ".join(attention_kernel_names(device)) or "none"
        default = f"; its default table measures {device.attention_kernel}" if device.attention_kernel else ""
        raise SpecError(f"{kernel!r} is not an attention kernel table of {device.name} (other tables: {have}"
                        f"{default}; leave the option out for it)", field="training.attention_kernel")
    if kernel in device.attention_kernel_tables:
        return device.attention_kernel_tables[kernel]
    derived = DERIVED_ATTENTION_KERNELS[kernel]  # each point at the published ratios of its base generation's
    return [p.model_copy(update={"forward": p.forward * derived.forward_ratio,
                                 "backward": derived_backward_efficiency(p.forward, p.backward, derived)})
            for p in device.attention_kernel_tables[derived.base]]


def clock_at_power(device: DeviceSpec, power_w: float) -> float:
    """Tensor-core clock (MHz) of ``device`` at a board power limit of ``power_w`` W: its
    ``tensor_clock_by_power`` interpolated linearly in power, held at the end values outside it."""
    pts = device.tensor_clock_by_power
    return interpolate_clamped([p.power_w for p in pts], [p.clock_mhz for p in pts], power_w)


def power_clock_scale(device: DeviceSpec) -> float:
    """Time factor of compute-bound kernels (GEMMs, fused attention) at the clock the run holds against the
    clock the compute curves were measured at. A tensor-core kernel's time scales with 1 / clock (its work per
    clock is fixed by the kernel); memory-bound kernels and collectives keep their speed (HBM and link clocks do
    not follow the SM clock).

    A training run (``sustained_clock``) holds the clock its power limit sustains, ``tensor_clock_by_power`` at
    ``power_limit_w`` (default: the curves' limit), against the curves' own clock ``compute_curves_clock_mhz``
    (short benchmark runs at the maximum boost clock); a short run holds the curves' clock, scaled only by a
    lower power limit. 1 when the device has no clock table."""
    if not device.tensor_clock_by_power or device.compute_curves_power_w is None:
        return 1.0
    at_curves_limit = clock_at_power(device, device.compute_curves_power_w)
    run = clock_at_power(device, device.power_limit_w or device.compute_curves_power_w)
    if not device.sustained_clock:
        return at_curves_limit / run
    return (device.compute_curves_clock_mhz or at_curves_limit) / run


def sm_share_slowdown(comm_sms: int | None, sm_count: int | None) -> float:
    """Extra compute seconds per second of compute that runs beside communication kernels holding ``comm_sms`` of
    the device's ``sm_count`` SMs: the compute runs on the S - k SMs left, k / (S - k) slower (NCCL runs one CTA
    per channel on its own SM, NCCL docs NCCL_MIN_CTAS / NCCL_MAX_CTAS; DeepEP / HybridEP take a set number of SMs,
    DeepSeek-V3 arXiv 2412.19437 Sec. 3.2.2; Calculon's processor_usage models the same share, Isaev et al. 2023);
    0 when either figure is unknown."""
    if not comm_sms or not sm_count or sm_count <= comm_sms:
        return 0.0
    return comm_sms / (sm_count - comm_sms)


#: Extra seconds per second a persistent GEMM takes while communication kernels hold some of the SMs: it launches
#: one block per SM, the blocks that find no free SM wait for the first wave to finish, and the kernel runs in two
#: waves of equal length (PyTorch PR #144974 / #147966, "This 'wave quantization' can double the latency of the
#: matmul kernels"; pytorch/pytorch#143988, FSDP on H100: "the matmuls take 2x as long to complete when they are
#: overlapped with a NCCL kernel"; NVIDIA developer forum thread 337991, a 132-block H100 GEMM beside a 24-block
#: ncclAllGather: "execution time nearly doubles"). With the one-formula fold of
#: ``beside_slowdown`` below (max(comm, compute + min(comm, compute) x rate)), a rate of 1 is the two-wave
#: schedule: a GEMM of W seconds beside c seconds of communication ends at W + min(c, W).
PERSISTENT_GEMM_WAVE_RATE = 1.0


def gemm_share(gemm_s: float, compute_s: float) -> float:
    """The share (0-1, by time) of ``compute_s`` seconds of compute that ``gemm_s`` seconds of single-stream GEMMs
    are (``overlap_slowdown``'s ``gemm_share``); 0 without compute."""
    return gemm_s / compute_s if compute_s > 0 else 0.0


def overlap_slowdown(gemm_share: float, comm_sms: int | None, sm_count: int | None, persistent_gemms: bool) -> float:
    """Extra compute seconds per second of compute that runs beside communication kernels holding ``comm_sms`` of
    ``sm_count`` SMs, for compute of which ``gemm_share`` (0-1, by time) is single-stream GEMMs: on a device whose
    GEMM library schedules persistent kernels (``device.persistent_gemms``) those GEMMs run in two waves
    (``PERSISTENT_GEMM_WAVE_RATE``) and the rest on the SMs left (``sm_share_slowdown``); elsewhere all of it runs on
    the SMs left. 0 when the SM figures are unknown."""
    share = sm_share_slowdown(comm_sms, sm_count)
    if share <= 0 or not persistent_gemms:
        return share
    g = min(max(gemm_share, 0.0), 1.0)
    return g * PERSISTENT_GEMM_WAVE_RATE + (1.0 - g) * share


def beside_slowdown(compute_s: float, comm_s: float, slowdown: float) -> float:
    """Seconds a pass of ``compute_s`` overlapped with ``comm_s`` of collectives takes beyond max(compute, comm)
    because the compute beside the collectives runs on the SMs they leave free (``slowdown`` extra seconds per
    second beside them, ``overlap_slowdown``): the pass ends at max(comm, compute + min(comm, compute)
    x slowdown)."""
    if slowdown <= 0 or comm_s <= 0 or compute_s <= 0:
        return 0.0
    extra = compute_s + min(comm_s, compute_s) * slowdown - max(comm_s, compute_s)
    return extra if extra > 0 else 0.0


#: Time of torch's multi-tensor (foreach) AdamW over the fused one on the same parameters: 0.02227 s / 0.008505 s
#: for 1e9 fp32 parameters measured on one H200 (hwprofiles/data/h200_microbench.json, optimizer rows: 4.49e10
#: vs 1.176e11 params/s); both are HBM-bound, so the ratio of passes carries to other devices.
FOREACH_ADAMW_SLOWDOWN = 0.022272319793701173 / 0.00850499153137207

#: Host calls per parameter tensor of Composer's DecoupledAdamW loop (composer/optim/decoupled_weight_decay.py
#: ``adamw`` at v0.17.2): the step count's increment and its ``.item()`` read, then param.mul_ (weight decay),
#: exp_avg.mul_ / add_, exp_avg_sq.mul_ / addcmul_, sqrt, div, add_ (eps) and param.addcdiv_: 11 launches.
OPTIMIZER_LOOP_LAUNCHES = 11

#: HBM bytes a fused fp32 AdamW step moves per parameter: reads p, g, m, v and writes p, m, v (4 B each).
ADAMW_BYTES_PER_PARAM = 28


class ComputePricer:
    """Prices compute ops on ``device`` for a training ``precision`` (bf16 / fp16 / fp8)."""

    def __init__(self, device: DeviceSpec, precision: str, attention_kernel: str | None = None):
        self.device = device
        self.precision = precision
        half = "fp16" if precision == "fp16" else "bf16"
        self.peak_flops = device.peak_tflops.for_dtype(half) * 1e12
        self.gemm_speedup = 1.0
        self._fp8_curve = None
        if precision == "fp8":
            fp8_peak = device.peak_tflops.for_dtype("fp8") * 1e12  # raises a clear error when the chip has no fp8
            self.gemm_speedup = device.fp8_gemm_speedup
            if device.fp8_gemm_efficiency:
                # a size-dependent fp8 curve, expressed against the 16-bit peak so the knee logic is shared
                self._fp8_curve = ([math.log(p.gflop) for p in device.fp8_gemm_efficiency],
                                   [p.efficiency * fp8_peak / self.peak_flops for p in device.fp8_gemm_efficiency])
        pts = device.gemm_efficiency
        self._log_sizes = [math.log(p.gflop) for p in pts]
        self._effs = [p.efficiency for p in pts]
        self.memory_bw = device.hbm_bandwidth_gbps * 1e9 * device.memory_efficiency
        hbm = device.hbm_bandwidth_gbps * 1e9
        self._class_bw = {k: hbm * v for k, v in device.memory_class_efficiency.items()}
        self.overhead_s = device.kernel_overhead_us * 1e-6
        self.clock_scale = power_clock_scale(device)  # compute-bound kernels at the device's power limit
        self._cache: dict[tuple[int, int, int], float] = {}
        self._attn_cache: dict[tuple[int, int, bool], float] = {}
        table: dict[int, list] = {}
        for p in attention_points(device, attention_kernel):
            table.setdefault(p.head_dim, []).append(p)
        self._attn_table = {hd: sorted(pts, key=lambda p: p.seq) for hd, pts in table.items()}

    def gemm_efficiency(self, m: int, n: int, k: int) -> float:
        """Fraction of the 16-bit dense peak a GEMM of this shape reaches: the device curve,
        log-interpolated in GEMM size (clamped at its ends), times a linear fall-off when the
        smallest dimension is under ``gemm_min_dim_knee`` (tile under-utilisation)."""
        return self._efficiency_at(2.0 * m * n * k, min(m, n, k))

    def _efficiency_at(self, flops: float, min_dim: int, curve=None) -> float:
        """The curve at ``flops`` (GEMM work, FLOPs) with the small-dimension fall-off at ``min_dim``."""
        xs, ys = curve if curve is not None else (self._log_sizes, self._effs)
        eff = interpolate_clamped(xs, ys, math.log(max(flops / 1e9, 1e-12)))
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
            if self._fp8_curve is not None and math.log(flops / 1e9) >= self._fp8_curve[0][0]:
                # fp8: its own measured size curve (1x bf16 at the smallest measured shape, ~2x at large);
                # below it, the bf16 curve (the measured ratio there is 1.0)
                eff = max(self._efficiency_at(flops, min(key), self._fp8_curve), self.gemm_efficiency(*key))
                per = flops / (self.peak_flops * eff)
            else:
                speedup = 1.0 if self._fp8_curve is not None else self.gemm_speedup
                per = flops / (self.peak_flops * self.gemm_efficiency(*key) * speedup)
            per *= self.clock_scale
            self._cache[key] = per
        return op.count * (per + self.overhead_s)

    def attention_efficiency(self, head_dim: int, seq: int, backward: bool) -> float:
        """Fused attention efficiency: the profile's table at the nearest measured head dim,
        log-interpolated in sequence length (clamped at its ends); the scalar efficiencies when the
        profile has no table."""
        key = (head_dim, seq, backward)
        hit = self._attn_cache.get(key)
        if hit is not None:
            return hit
        if not self._attn_table:
            eff = self.device.attention_backward_efficiency if backward else self.device.attention_efficiency
        else:
            hd = min(self._attn_table, key=lambda d: (abs(d - head_dim), d))
            pts = self._attn_table[hd]
            ys = [p.backward if backward else p.forward for p in pts]
            eff = interpolate_clamped([math.log(p.seq) for p in pts], ys, math.log(seq))
        self._attn_cache[key] = eff
        return eff

    def grouped_gemm_time(self, op: Gemm) -> float:
        """Seconds for ``op.count`` GEMMs of one shape run as one grouped kernel (Megatron-Core
        ``--moe-grouped-gemm``, CUTLASS grouped GEMM): each at the efficiency of its own shape, one launch."""
        return self.gemm_time(op) - (op.count - 1) * self.overhead_s

    def attention_time(self, op: Attention) -> float:
        """Seconds for the attention core. Fused: executed FLOPs at the measured kernel efficiency
        (forward / backward). Unfused: QK^T and PV as batched GEMMs (the softmax is a MemoryOp)."""
        if op.fused:
            bwd = op.phase.startswith("bwd")
            eff = self.attention_efficiency(op.head_dim, op.seq_k, bwd)
            if not op.window_share or op.window_fraction == 1.0:
                return op.executed_flops / (self.peak_flops * eff) * self.clock_scale + self.overhead_s
            # sliding-window layers: their band of W keys per query at the kernel's efficiency at W keys
            whole = op.executed_flops / op.windowed
            band = whole * op.window_share * op.window_fraction
            eff_w = self.attention_efficiency(op.head_dim, op.window, bwd)
            return ((whole * (1 - op.window_share) / (self.peak_flops * eff) + band / (self.peak_flops * eff_w))
                    * self.clock_scale + self.overhead_s)
        # QK^T and PV run as batched GEMMs over every local head (Megatron's baddbmm/bmm): the
        # efficiency of a GEMM of the batch's total size, with the tile fall-off of its smallest dim
        fwd_flops = op.forward_model_flops / 2  # one of the two batched GEMMs
        eff = self._efficiency_at(fwd_flops, min(op.seq_q, op.seq_k, op.head_dim))
        return op.executed_flops / (self.peak_flops * eff) * self.clock_scale + 2 * self.overhead_s

    def memory_bandwidth(self, kind: str) -> float:
        """Achieved bytes/s of a memory-bound kernel class (the copy bandwidth when the profile
        does not list the class)."""
        return self._class_bw.get(kind, self.memory_bw)

    def memory_time(self, op: MemoryOp) -> float:
        """Seconds for a memory-bound op: bytes / its class's achieved HBM bandwidth + launch
        overhead per kernel."""
        return op.bytes_moved / self._class_bw.get(op.kind, self.memory_bw) + op.launches * self.overhead_s

    def optimizer_stream_time(self, nbytes: float) -> float:
        """Seconds of ``nbytes`` of the optimizer step's memory-bound passes (gradient zeroing, master ->
        parameter copy, clipping), streamed at the bandwidth the measured fused AdamW reaches: its params/s
        times the 28 bytes it moves per fp32 parameter (reads parameter, gradient, exp_avg, exp_avg_sq;
        writes parameter, exp_avg, exp_avg_sq). Kept with the optimizer's own rate, so the optimizer is one
        resource of the what-if analysis (planner.cost.bottleneck)."""
        return nbytes / (self.device.optimizer_params_per_s * ADAMW_BYTES_PER_PARAM)

    def optimizer_time(self, params: float) -> float:
        """Seconds for a fused Adam step over ``params`` parameters (measured params/s)."""
        return params / self.device.optimizer_params_per_s
