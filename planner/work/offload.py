"""Bytes of CPU offload: what leaves HBM, what host memory holds, what crosses the host link.

One place for the offload byte formulas (time is planner.pricing.hostlink). Per GPU, for the
``optimizer_params`` parameters this GPU updates (its ZeRO shard) and the ``params`` it holds:

- ZeRO-Offload (Ren et al. 2021, arXiv 2101.06840, Sec. 4.1, Fig. 4): the GPU keeps 16-bit
  parameters; gradients go to the CPU (2M bytes for M parameters in fp16), the CPU runs Adam on the
  fp32 master weights and moments (12M bytes held there), and the updated 16-bit parameters come
  back (2M bytes): **4M bytes over PCIe per step** (2M each way), sharded over dp with ZeRO.
  With gradient accumulation the gradients stream to the host every micro-batch (DeepSpeed stage-2
  offload accumulates them on the CPU), the parameters return once per step.
- Optimizer-only offload (Megatron-Core ``--optimizer-cpu-offload``): gradients accumulate on the
  GPU and cross once per step.
- Parameter offload (ZeRO-Infinity, arXiv 2104.07857 Sec. 5; FSDP2 ``CPUOffloadPolicy``): every
  forward and backward copies the parameter shard in (2 x gather bytes per micro-batch); the GPU
  keeps the two units in flight that ZeRO-3 already counts as working memory.
- Activation offload (DeepSpeed ``cpu_checkpointing``): the checkpointed layer inputs (2sbh per
  layer, Korthikanti et al. 2022 Sec. 5) go out in forward and come back in backward.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from ..specs import Layout, TrainingSpec
from ..specs.offload import OffloadSpec
from ..specs.recipe_source import recipe_named
from .memory import StateBytes, grad_reduce_bytes_per_param, param_gather_bytes_per_param

#: Offload kinds each recipe (framework) can express.
#: Keyed by the canonical recipe names (hwprofiles/recipes; the aliases 'megatron' -> megatron-lm and
#: 'fsdp' -> torchtitan are resolved by TrainingSpec).
RECIPE_OFFLOAD = {
    "megatron-lm": ("optimizer",),  # --optimizer-cpu-offload (Megatron-Core >= 0.11, HybridDeviceOptimizer)
    "megatron-core": ("optimizer",),
    "deepspeed": ("optimizer", "gradients", "params", "activations"),  # offload_optimizer/_param, cpu_checkpointing
    "torchtitan-0.3": ("optimizer", "gradients", "params"),  # FSDP2 CPUOffloadPolicy: all three (and releases)
    "fsdp1": ("optimizer", "gradients", "params"),  # FSDP1 CPUOffload(offload_params=True): likewise together
    "torch-amp": (),
}

#: Levels the search tries, lightest first (each a superset of the one before).
OFFLOAD_LEVELS = (
    OffloadSpec(optimizer=True),
    OffloadSpec(optimizer=True, gradients=True),
    OffloadSpec(optimizer=True, gradients=True, params=True),
    OffloadSpec(optimizer=True, gradients=True, params=True, activations=True),
)


def offload_kinds(training: TrainingSpec) -> tuple[str, ...]:
    """The offload kinds ``training``'s recipe can express (RECIPE_OFFLOAD); a derived recipe (``base:``, e.g.
    torchtitan-2506 from torchtitan from torchtitan-0.3) runs the offload of the first recipe up its chain that
    has an entry."""
    name, spec = training.recipe, training.recipe_spec
    while name not in RECIPE_OFFLOAD and spec.base:
        name = spec.base
        spec = recipe_named(name)
    return RECIPE_OFFLOAD.get(name, ())


def check_offload(training: TrainingSpec, layout: Layout) -> None:
    """SpecError naming the field when the recipe cannot express the offload asked for."""
    off = training.offload
    if not off.any:
        return
    allowed = offload_kinds(training)
    asked = [k for k in ("optimizer", "gradients", "params", "activations") if getattr(off, k)]
    missing = [k for k in asked if k not in allowed]
    if missing:
        raise SpecError(f"recipe '{training.recipe}' cannot offload {', '.join(missing)}; it can offload: "
                        f"{', '.join(allowed) or 'nothing'}", field="training.offload")
    if training.recipe_spec.fsdp_sharding and not (off.optimizer and off.gradients and off.params):
        raise SpecError("FSDP2 CPUOffloadPolicy offloads params, gradients and optimizer together",
                        field="training.offload")
    if (off.gradients or off.params) and not off.optimizer:
        raise SpecError("offloading gradients or params needs the optimizer offloaded too (the update runs "
                        "where the gradients are)", field="training.offload")
    if off.activations and training.recompute != "full":
        raise SpecError(f"offload.activations needs recompute 'full' (it offloads the checkpoints), got "
                        f"'{training.recompute}'", field="training.offload")
    if off.params and layout.effective_zero_stage != 3:
        raise SpecError("offload.params needs ZeRO-3 / FSDP (zero_stage 3)", field="training.offload")


@dataclass(frozen=True, slots=True)
class OffloadWork:
    """Host-side bytes of one GPU: held in host memory, and moved over its host link per step /
    per micro-batch (device-to-host and host-to-device separately; the link is full duplex)."""

    host_bytes: float  # model states this GPU keeps in host memory
    host_checkpoint_bytes: float  # activation checkpoints per micro-batch in flight kept in host memory
    d2h_per_step: float
    h2d_per_step: float
    d2h_per_microbatch: float
    h2d_per_microbatch: float
    cpu_optimizer_params: float  # parameters the CPU updates for this GPU (0 = Adam stays on the GPU)

    def per_step_bytes(self, micro_batches: int) -> tuple[float, float]:
        """(device-to-host, host-to-device) bytes of one whole step."""
        return (self.d2h_per_step + micro_batches * self.d2h_per_microbatch,
                self.h2d_per_step + micro_batches * self.h2d_per_microbatch)


NO_OFFLOAD = OffloadWork(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def apply_offload(states: StateBytes, params: float, optimizer_params: float, checkpoint_bytes: float,
                  training: TrainingSpec) -> tuple[StateBytes, float, OffloadWork]:
    """(states left in HBM, activation bytes per micro-batch left in HBM, host work) for the
    stage holding ``params`` parameters, updating ``optimizer_params`` of them, with
    ``checkpoint_bytes`` of activations held per micro-batch (module docstring for the formulas)."""
    off = training.offload
    if not off.any:
        return states, checkpoint_bytes, NO_OFFLOAD
    grad_b = grad_reduce_bytes_per_param(training)
    gather_b = param_gather_bytes_per_param(training)
    weights, grads, optimizer, act = states.weights, states.grads, states.optimizer, checkpoint_bytes
    host = 0.0
    d2h_step = h2d_step = d2h_mb = h2d_mb = 0.0
    if off.optimizer:
        host += optimizer
        optimizer = 0.0
        h2d_step += optimizer_params * gather_b  # updated 16-bit parameters back to the GPU
        if not off.gradients:
            d2h_step += optimizer_params * grad_b  # accumulated gradients once per step (Megatron)
    if off.gradients:
        host += grads
        grads = 0.0  # the reduction buckets stay (StageWork.buffer_bytes)
        d2h_mb += optimizer_params * grad_b  # each micro-batch's (reduced) gradient shard streams out
    if off.params:
        host += weights
        weights = 0.0  # the two gathered units in flight are ZeRO-3 working memory already
        h2d_mb += 2 * optimizer_params * gather_b  # the shard, copied in for forward and for backward
        h2d_step = 0.0  # the CPU writes the updated shard where the next gather reads it
    host_ckpt = 0.0
    if off.activations:
        host_ckpt = checkpoint_bytes  # per micro-batch in flight
        d2h_mb += checkpoint_bytes
        h2d_mb += checkpoint_bytes
        act = 0.0
    cpu_params = optimizer_params if off.optimizer else 0.0
    return (StateBytes(weights, grads, optimizer), act,
            OffloadWork(host, host_ckpt, d2h_step, h2d_step, d2h_mb, h2d_mb, cpu_params))


def host_bytes_per_node(work: OffloadWork, in_flight: float, devices_per_node: int) -> float:
    """Host memory the node needs when each of its ``devices_per_node`` GPUs holds ``work``, bytes."""
    return devices_per_node * (work.host_bytes + work.host_checkpoint_bytes * in_flight)
