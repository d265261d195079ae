"""Hardware specs: device, node (intra-node link graph and NICs), network, profile, cluster.

Units are in the field names: ``_gbps`` is GB/s (1e9 bytes per second, per direction),
``_tflops`` is 1e12 FLOP/s dense, ``_gib`` is 2**30 bytes, ``_us`` is microseconds.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ..errors import SpecError
from .base import PrintableStr, Spec
from .bounds import MAX_BANDWIDTH_GBPS, MAX_CAPACITY_GIB, MAX_RANKS, MAX_TFLOPS

DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8")
DEVICE_NODE = re.compile(r"^gpu(\d+)$")


class PeakTflops(Spec):
    """Peak dense (no sparsity) throughput per datatype, TFLOP/s; ``None`` where the chip lacks it."""

    fp32: float | None = Field(None, gt=0, le=MAX_TFLOPS, description="FP32 peak (matrix units where present), TFLOP/s")
    tf32: float | None = Field(None, gt=0, le=MAX_TFLOPS, description="TF32 dense peak, TFLOP/s")
    fp16: float | None = Field(None, gt=0, le=MAX_TFLOPS, description="FP16 dense matrix peak, TFLOP/s")
    bf16: float | None = Field(None, gt=0, le=MAX_TFLOPS, description="BF16 dense matrix peak, TFLOP/s")
    fp8: float | None = Field(None, gt=0, le=MAX_TFLOPS, description="FP8 dense matrix peak, TFLOP/s")

    def for_dtype(self, dtype: str) -> float:
        """Peak TFLOP/s for ``dtype``; raises SpecError if the chip has no such datatype."""
        value = getattr(self, dtype, None)
        if value is None:
            have = [d for d in DTYPES if getattr(self, d) is not None]
            raise SpecError(f"device has no {dtype} peak; available: {', '.join(have)}", field="precision")
        return value


class EfficiencyPoint(Spec):
    """One point of a GEMM efficiency curve: efficiency reached by a GEMM of this size."""

    gflop: float = Field(gt=0, description="GEMM work 2*M*N*K, in GFLOP")
    efficiency: float = Field(gt=0, le=1, description="achieved fraction of the dtype's dense peak")


class AttentionPoint(Spec):
    """Measured fused (flash) attention efficiency at one head dim and sequence length."""

    head_dim: int = Field(gt=0, description="per-head width")
    seq: int = Field(gt=0, description="sequence length (queries = keys), tokens")
    forward: float = Field(gt=0, le=1, description="forward achieved fraction of the 16-bit peak (causal half counted)")
    backward: float = Field(gt=0, le=1, description="backward achieved fraction of the 16-bit peak (2.5x forward FLOPs)")


class PowerClockPoint(Spec):
    """The tensor-core clock a vendor states for one board power limit of a chip (its datasheet peak
    TFLOP/s divided by the FLOPs per clock of the chip's tensor cores)."""

    power_w: float = Field(gt=0, description="board power limit, W")
    clock_mhz: float = Field(gt=0, description="tensor-core clock the datasheet peak implies at that limit, MHz")


class DeviceSpec(Spec):
    """One accelerator as one rank sees it (an MI250X GCD, an H100 SXM, ...)."""

    name: PrintableStr = Field(description="device name")
    peak_tflops: PeakTflops = Field(description="dense peak per datatype")
    hbm_capacity_gib: float = Field(gt=0, le=MAX_CAPACITY_GIB, description="HBM capacity, GiB")
    hbm_bandwidth_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="HBM peak bandwidth, GB/s")
    sm_count: int | None = Field(
        None, gt=0, description="streaming multiprocessors per device (TE userbuffers run their pipeline / bulk "
        "GEMMs on sm_count minus the communication SMs, planner/pricing/tp_overlap.py); None = not priced")
    persistent_gemms: bool = Field(
        False, description="the GEMM library launches persistent kernels (one block per SM, each looping over "
        "tiles: cuBLAS / CUTLASS on Hopper), so a GEMM beside communication kernels that hold SMs runs in two "
        "waves (planner.pricing.compute.overlap_slowdown); false = it runs on the SMs left")
    gemm_efficiency: list[EfficiencyPoint] = Field(
        min_length=1, description="GEMM efficiency vs GEMM size (log-interpolated, clamped at the ends)"
    )
    gemm_min_dim_knee: int = Field(
        0, ge=0, description="below this smallest GEMM dimension efficiency falls off linearly (0 = off)"
    )
    fp8_gemm_speedup: float = Field(
        1.0, ge=1, description="achieved fp8 GEMM speed over bf16 at the same shape (1 = no fp8)"
    )
    fp8_gemm_efficiency: list[EfficiencyPoint] = Field(
        default_factory=list,
        description="fp8 GEMM efficiency vs GEMM size as a fraction of the fp8 peak (log-interpolated, clamped); "
        "empty = the bf16 curve times fp8_gemm_speedup")
    memory_efficiency: float = Field(gt=0, le=1, description="achieved fraction of HBM bandwidth, streaming ops")
    memory_class_efficiency: dict[str, float] = Field(
        default_factory=dict,
        description="achieved fraction of HBM bandwidth per memory-bound kernel class (norm_fwd, norm_bwd, "
        "activation_fwd, softmax, ...; planner/work/ops.py KernelClass); a class not listed runs at "
        "memory_efficiency, the copy bandwidth")
    attention_efficiency: float = Field(
        gt=0, le=1, description="flash-attention forward achieved fraction of the 16-bit peak"
    )
    attention_backward_efficiency: float = Field(
        gt=0, le=1, description="flash-attention backward achieved fraction of the 16-bit peak"
    )
    attention_table: list[AttentionPoint] = Field(
        default_factory=list,
        description="fused attention efficiency by head dim and sequence (nearest head dim, log-interpolated in "
        "sequence, clamped); empty = attention_efficiency / attention_backward_efficiency everywhere")
    attention_kernel: str = Field("", description="the attention kernel generation the table measures (FA2, FA3, cuDNN SDPA)")
    attention_kernel_tables: dict[str, list[AttentionPoint]] = Field(
        default_factory=dict,
        description="other fused attention kernel generations measured on this device, by name (e.g. fa2: "
        "FlashAttention-2 kernels on Hopper); training.attention_kernel selects one instead of attention_table")
    optimizer_params_per_s: float = Field(
        gt=0, description="fused Adam step throughput, fp32 parameters per second"
    )
    kernel_overhead_us: float = Field(0.0, ge=0, description="fixed launch/dispatch cost per kernel, us")
    concurrent_streams: bool = Field(
        True, description="the device runs work queued on separate streams at the same time (GPUs: CUDA / HIP "
        "streams); false for a CPU, whose torch.cpu.Stream runs nothing concurrently, so the overlap frameworks "
        "build on side streams (FSDP2 / FSDP1 / ZeRO-3 prefetched gathers and reduce-scatters) does not happen "
        "(planner.pricing.pricer.Pricer.zero3_serialized)")
    reserved_memory_gib: float = Field(
        0.0, ge=0, description="memory the runtime, context and allocator fragmentation keep, GiB"
    )
    tdp_w: float | None = Field(
        None, gt=0, description="board power limit (TDP / TGP) of one device, W; default power of the run budget"
    )
    power_limit_w: float | None = Field(
        None, gt=0, description="board power limit the device runs at, W (nvidia-smi -pl); None = the limit its "
        "compute curves were measured at (compute_curves_power_w). Compute-bound kernels run at the clock "
        "tensor_clock_by_power gives for it (planner.pricing.compute.power_clock_scale)")
    compute_curves_power_w: float | None = Field(
        None, gt=0, description="board power limit under which gemm_efficiency, the fp8 curve and the attention "
        "tables were measured, W")
    compute_curves_clock_mhz: float | None = Field(
        None, gt=0, description="SM clock the compute curves ran at, MHz: microbenchmarks of a few timed runs per "
        "shape run at the maximum boost clock, above what a long run sustains at the power limit "
        "(tensor_clock_by_power); None = the clock tensor_clock_by_power gives at compute_curves_power_w")
    sustained_clock: bool = Field(
        True, description="the run lasts long enough to settle at the clock its power limit sustains (a training "
        "run: compute-bound kernels at tensor_clock_by_power's clock); false for a short benchmark run, which holds "
        "the compute curves' own clock (planner.pricing.compute.power_clock_scale)")
    tensor_clock_by_power: list[PowerClockPoint] = Field(
        default_factory=list, description="tensor-core clock vs board power limit for this chip (datasheet peaks of "
        "its SKUs at their limits), increasing power; interpolated linearly, clamped at the ends")
    host_link_gbps: float | None = Field(
        None, gt=0, description="device <-> host-memory bandwidth per direction, GB/s (PCIe, NVLink-C2C, "
        "Infinity Fabric); None = unknown, offload cannot be priced"
    )
    host_link_kind: str | None = Field(None, description="host-link technology (pcie-gen5-x16, nvlink-c2c, ...)")
    host_link_efficiency: float = Field(
        1.0, gt=0, le=1, description="achieved fraction of host_link_gbps for large pinned copies"
    )

    @field_validator("gemm_efficiency")
    @classmethod
    def _sorted_curve(cls, pts: list[EfficiencyPoint]) -> list[EfficiencyPoint]:
        sizes = [p.gflop for p in pts]
        if sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
            raise ValueError(f"gemm_efficiency points must have strictly increasing gflop, got {sizes}")
        return pts

    @field_validator("tensor_clock_by_power")
    @classmethod
    def _sorted_clocks(cls, pts: list[PowerClockPoint]) -> list[PowerClockPoint]:
        powers = [p.power_w for p in pts]
        if powers != sorted(powers) or len(set(powers)) != len(powers):
            raise ValueError(f"tensor_clock_by_power points must have strictly increasing power_w, got {powers}")
        return pts

    @model_validator(mode="after")
    def _power_limit_priced(self):
        if self.power_limit_w is not None and (not self.tensor_clock_by_power or self.compute_curves_power_w is None):
            raise ValueError(f"power_limit_w({self.power_limit_w:g}) needs tensor_clock_by_power and "
                             "compute_curves_power_w (the clock at each limit); this device has none")
        if self.power_limit_w is not None and self.power_limit_w < self.tensor_clock_by_power[0].power_w:
            low = self.tensor_clock_by_power[0].power_w
            raise ValueError(f"power_limit_w({self.power_limit_w:g}) is below the lowest limit of tensor_clock_by_power "
                             f"({low:g} W): no clock is stated there (allowed: >= {low:g})")
        return self


class LinkSpec(Spec):
    """A bidirectional link of the intra-node graph; ``bandwidth_gbps`` is per direction."""

    a: str = Field(description="endpoint: 'gpuN', a NIC name, or a switch name")
    b: str = Field(description="other endpoint")
    bandwidth_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="bandwidth per direction, GB/s")
    kind: str = Field("link", description="link technology (xgmi, nvlink, pcie, ...)")


class NicSpec(Spec):
    """A network interface of the node and the devices it serves."""

    name: str = Field(description="NIC name, a node of the intra-node graph")
    bandwidth_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="injection bandwidth per direction, GB/s")
    devices: list[int] = Field(min_length=1, description="indices of the devices this NIC serves")


class NodeSpec(Spec):
    """A node: its devices, the links between them, its NICs, and intra-node collective tuning."""

    devices_per_node: int = Field(gt=0, le=MAX_RANKS, description="accelerators (ranks) per node")
    links: list[LinkSpec] = Field(description="intra-node links (devices, switches, NICs)")
    nics: list[NicSpec] = Field(min_length=1, description="network interfaces")
    collective_efficiency: float = Field(
        gt=0, le=1.2, description="achieved fraction of the ring bound for intra-node collectives"
    )
    collective_latency_us: float = Field(ge=0, description="latency per intra-node collective step, us")
    p2p_efficiency: float = Field(1.0, gt=0, le=1, description="achieved fraction of link bw for send/recv")
    collective_sms: int | None = Field(
        None, gt=0, description="SMs (CUs) the collective library's kernels hold while a collective runs (NCCL: one "
        "CTA per channel); compute overlapped with a collective runs on the rest (planner.pricing "
        "comm_compute_slowdown); None = not priced")
    p2p_latency_us: float | None = Field(
        None, ge=0, description="latency of one intra-node send/recv, us (None = collective_latency_us)"
    )
    host_memory_gib: float | None = Field(None, gt=0, description="host (CPU) memory of the node, GiB")
    cpu_adam_params_per_s: float | None = Field(
        None, gt=0, description="Adam steps the node's CPUs perform per second (all sockets), parameters/s"
    )
    fast_domain_nodes: int = Field(
        1, gt=0, description="nodes whose devices share one NVLink/xGMI domain (GB200 NVL72: 18 trays x 4 "
        "GPUs = 72); 1 = the fast domain is the node"
    )
    fast_domain_bandwidth_gbps: float | None = Field(
        None, gt=0, description="per-device bandwidth per direction between devices of different nodes "
        "inside the fast domain, GB/s (needed when fast_domain_nodes > 1)"
    )

    @model_validator(mode="after")
    def _check_graph(self):
        n = self.devices_per_node
        for i, link in enumerate(self.links):
            for end in (link.a, link.b):
                m = DEVICE_NODE.match(end)
                if m and int(m.group(1)) >= n:
                    raise ValueError(
                        f"links[{i}] names {end} but devices_per_node is {n} (allowed gpu0..gpu{n - 1})"
                    )
        served = set()
        for nic in self.nics:
            for d in nic.devices:
                if d >= n or d < 0:
                    raise ValueError(f"nic {nic.name} serves device {d}, allowed 0..{n - 1}")
                served.add(d)
        if served != set(range(n)):
            missing = sorted(set(range(n)) - served)
            raise ValueError(f"devices {missing} are served by no NIC")
        if self.fast_domain_nodes > 1 and self.fast_domain_bandwidth_gbps is None:
            raise ValueError(f"fast_domain_nodes({self.fast_domain_nodes}) > 1 needs fast_domain_bandwidth_gbps")
        return self

    @property
    def fast_domain_devices(self) -> int:
        """Devices of one fast (NVLink/xGMI) domain: devices_per_node * fast_domain_nodes."""
        return self.devices_per_node * self.fast_domain_nodes

    @property
    def nic_bandwidth_gbps(self) -> float:
        """Total NIC injection bandwidth of the node, GB/s per direction."""
        return sum(nic.bandwidth_gbps for nic in self.nics)


class EpDispatchPoint(Spec):
    """Throughput an expert-parallel dispatch library reached across nodes in its own benchmark: the bytes the
    benchmark counts (every token once per selected node, the sender's own node included: DeepEP
    tests/test_internode.py ``num_rdma_token_sent``, HybridEP tests/utils.py ``count_rdma_send_from_routing_map``)
    over the kernel time."""

    backend: Literal["deepep", "hybridep"] = Field(description="the dispatch library")
    ranks: int = Field(gt=1, le=MAX_RANKS, description="expert-parallel ranks of the benchmark (several nodes)")
    dispatch_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="dispatch throughput, GB/s (16-bit)")
    combine_gbps: float = Field(gt=0, le=MAX_BANDWIDTH_GBPS, description="combine throughput, GB/s (16-bit)")


class NetworkSpec(Spec):
    """The inter-node network."""

    topology: Literal["fat-tree", "dragonfly"] = Field(description="topology kind")
    latency_us: float = Field(ge=0, description="latency per inter-node collective step, us")
    efficiency: float = Field(gt=0, le=1, description="achieved fraction of NIC bandwidth in collectives")
    group_size_nodes: int = Field(
        gt=0, description="nodes with full bisection (dragonfly group, fat-tree pod)"
    )
    taper: float = Field(1.0, ge=1, description="oversubscription of traffic leaving a group (1 = none)")
    ep_dispatch: list[EpDispatchPoint] = Field(
        default_factory=list, description="measured throughput of the flex MoE dispatch libraries across nodes, by "
        "library and rank count (planner.pricing.collectives prices their all-to-alls on it; none = the NIC model)")


class StorageSpec(Spec):
    """The shared storage tier checkpoints are written to and read from (parallel file system,
    object store). A checkpoint moves at ``min(nodes * per-node rate, aggregate rate)``
    (planner/pricing/checkpoint.py). Rates are GB/s (1e9 bytes per second)."""

    kind: str = Field(description="storage technology (Lustre, Tectonic, VAST/NFS, ...)")
    node_write_gbps: float = Field(gt=0, description="write bandwidth one node reaches, GB/s")
    node_read_gbps: float = Field(gt=0, description="read bandwidth one node reaches, GB/s")
    aggregate_write_gbps: float | None = Field(
        None, gt=0, description="write bandwidth of the whole tier, GB/s (None = not stated: nodes x per-node)")
    aggregate_read_gbps: float | None = Field(
        None, gt=0, description="read bandwidth of the whole tier, GB/s (None = not stated: nodes x per-node)")


class HardwareProfile(Spec):
    """A hardware profile: one device kind, one node design, one network; sources for every number."""

    schema_version: Literal[1] = Field(description="profile schema version")
    name: PrintableStr = Field(description="profile name")
    description: PrintableStr = Field(description="one line on what this profile is")
    device: DeviceSpec = Field(description="the accelerator (one rank)")
    node: NodeSpec = Field(description="the node")
    network: NetworkSpec = Field(description="the inter-node network")
    storage: StorageSpec | None = Field(
        None, description="the checkpoint storage tier (optional: None = checkpoint time cannot be priced)")
    sources: dict[str, str] = Field(
        description="citation per field path; a path covers every number below it"
    )
    notes: list[str] = Field(default_factory=list, description="what is inferred rather than published")

    def source_for(self, path: str) -> str | None:
        """Citation covering dotted ``path`` (the longest matching prefix), or ``None``."""
        parts = path.split(".")
        for k in range(len(parts), 0, -1):
            key = ".".join(parts[:k])
            if key in self.sources:
                return self.sources[key]
        return None


class ClusterSpec(Spec):
    """A cluster: a hardware profile times a node count."""

    hardware: HardwareProfile = Field(description="profile of every node")
    nodes: int = Field(gt=0, description="number of nodes")

    @property
    def gpus(self) -> int:
        """Total accelerators (ranks)."""
        return self.nodes * self.hardware.node.devices_per_node
