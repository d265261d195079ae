"""What a training step keeps in host (CPU) memory instead of HBM: the offload option.

Semantics follow the frameworks that implement them:

- ``optimizer``: fp32 master weights and Adam moments live on the host and the Adam step runs on
  the CPU; gradients are copied to the host once per step and the updated 16-bit parameters back
  (Megatron-Core ``--optimizer-cpu-offload``; DeepSpeed ``offload_optimizer`` moves gradients too).
- ``gradients``: gradients stream to host memory as each micro-batch's backward produces them and
  accumulate there (ZeRO-Offload, Ren et al. 2021, arXiv 2101.06840, Sec. 4; DeepSpeed
  ``offload_optimizer`` = optimizer + gradients).
- ``params``: the parameter shards live on the host and are copied to the GPU for every forward and
  backward use (ZeRO-Infinity ``offload_param``, arXiv 2104.07857; FSDP2 ``CPUOffloadPolicy``, which
  offloads parameters, gradients and optimizer together).
- ``activations``: activation checkpoints (the layer inputs kept under full recompute) are copied to
  the host in forward and back in backward (DeepSpeed ``cpu_checkpointing``).
"""

from __future__ import annotations

from pydantic import Field

from .base import Spec


class OffloadSpec(Spec):
    """Which model states and activations live in host memory."""

    optimizer: bool = Field(False, description="fp32 master weights + Adam moments on the host, CPU Adam step")
    gradients: bool = Field(False, description="gradients streamed to and accumulated in host memory")
    params: bool = Field(False, description="parameter shards on the host, copied in for each use")
    activations: bool = Field(False, description="activation checkpoints on the host (needs full recompute)")

    @property
    def any(self) -> bool:
        """True when anything is offloaded."""
        return self.optimizer or self.gradients or self.params or self.activations

    def describe(self) -> str:
        """``off:opt+grad`` style tag, or '' when nothing is offloaded."""
        names = [n for n, on in (("opt", self.optimizer), ("grad", self.gradients), ("param", self.params),
                                 ("act", self.activations)) if on]
        return "off:" + "+".join(names) if names else ""
