"""Time of CPU offload: copies over the device's host link and the CPU Adam step. Seconds.

- A copy of S bytes takes S / (host_link_gbps * 1e9 * host_link_efficiency) — the profile's
  per-direction link (PCIe Gen5 x16 63 GB/s, NVLink-C2C, Infinity Fabric), each direction its own
  lane (PCIe and C2C are full duplex).
- The CPU Adam step over P parameters takes P / (cpu_adam_params_per_s / devices_per_node): the
  node's CPUs serve all its GPUs at once (ZeRO-Offload's CPU-Adam, Ren et al. 2021, Sec. 5.1).
- Overlap, as ZeRO-Offload schedules it (Ren et al. 2021, Sec. 4.1, Fig. 5; DeepSpeed stage-2
  offload): per-micro-batch copies (gradients out during backward, parameter shards in before
  forward/backward, activation checkpoints) run on their own CUDA streams under that micro-batch's
  compute, so only max(0, copy - compute) is exposed, per direction; the per-step part — the
  accumulated gradients out (optimizer-only offload), the CPU Adam step and the parameters back —
  is on the critical path (the one-step-delayed update, DPU, that hides it changes the optimizer's
  semantics and is off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..specs import HardwareProfile
from ..work.offload import OffloadWork


def host_link_bps(hardware: HardwareProfile) -> float:
    """Achieved per-direction host-link bandwidth of one device, bytes/s."""
    dev = hardware.device
    if dev.host_link_gbps is None:
        raise SpecError(f"{hardware.name} has no device.host_link_gbps: offload cannot be priced",
                        field="device.host_link_gbps")
    return dev.host_link_gbps * 1e9 * dev.host_link_efficiency


def cpu_adam_time(params: float, hardware: HardwareProfile) -> float:
    """Seconds of the CPU Adam step over ``params`` parameters of one GPU (its share of the node's CPUs)."""
    if params <= 0:
        return 0.0
    rate = hardware.node.cpu_adam_params_per_s
    if rate is None:
        raise SpecError(f"{hardware.name} has no node.cpu_adam_params_per_s: optimizer offload cannot be priced",
                        field="node.cpu_adam_params_per_s")
    return params / (rate / hardware.node.devices_per_node)


@dataclass(frozen=True, slots=True)
class OffloadTime:
    """Seconds offload adds to one step: exposed per-micro-batch copies and the per-step part."""

    microbatch_exposed: float  # per micro-batch, not hidden by its compute
    step: float  # gradients out + CPU Adam + parameters back, once per step
    cpu_adam: float  # the CPU Adam part of ``step``


def offload_time(work: OffloadWork, compute_per_microbatch: float, hardware: HardwareProfile) -> OffloadTime:
    """Seconds of ``work`` for one GPU whose micro-batch computes for ``compute_per_microbatch`` s."""
    if work.d2h_per_microbatch == work.h2d_per_microbatch == work.d2h_per_step == work.h2d_per_step == 0 \
            and work.cpu_optimizer_params == 0:
        return OffloadTime(0.0, 0.0, 0.0)
    bw = host_link_bps(hardware)
    exposed = max(0.0, max(work.d2h_per_microbatch, work.h2d_per_microbatch) / bw - compute_per_microbatch)
    adam = cpu_adam_time(work.cpu_optimizer_params, hardware)
    step = work.d2h_per_step / bw + adam + work.h2d_per_step / bw
    return OffloadTime(exposed, step, adam)
