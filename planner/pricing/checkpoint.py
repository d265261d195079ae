"""Seconds to save and load a checkpoint, and what each checkpointing mode blocks.

Storage moves a checkpoint at the smaller of what the nodes can push and what the tier accepts
(``planner.specs.hardware.StorageSpec``):

- write time = max(written bytes per node / node write rate, total bytes / aggregate write rate)
  (the aggregate term only when the tier states one); load time the same with the read rates;
- staging time = held bytes per rank / (host link rate x its efficiency): the HBM -> host-memory
  copy each rank makes of its states (``device.host_link_gbps``).

What training waits for:

- **sync** (``torch.distributed.checkpoint.save``, Megatron's synchronous ``dist_checkpointing.save``):
  the whole write, copy to host included: blocked = staging + write;
- **async** (``torch.distributed.checkpoint.async_save``: "first de-stages the state_dict on to the
  staging storage (defaults to CPU memory), and then calls the save in a separate thread",
  torch 2.13 torch/distributed/checkpoint/state_dict_saver.py; Megatron-Core ``--async-save``:
  the same copy, then the write in a background process, megatron/core/dist_checkpointing/
  strategies/async_utils.py): blocked = staging only; the write runs beside training, so a
  checkpoint is durable ``write`` seconds after it started and the next one cannot start before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import SpecError
from ..specs import HardwareProfile
from ..work.checkpoint import CheckpointBytes

CheckpointMode = Literal["sync", "async"]
CHECKPOINT_MODES = ("sync", "async")


@dataclass(frozen=True)
class CheckpointTimes:
    """Seconds of one checkpoint (module docstring)."""

    mode: str
    stage_s: float  # HBM -> host copy per rank
    write_s: float  # to storage
    load_s: float  # from storage, at a restart
    blocked_s: float  # what training waits per checkpoint
    durable_after_s: float  # from the checkpoint's start until it can be restored from
    write_bound: str  # "per-node" or "aggregate": which rate set the write time


def _move_time(total: float, per_node: float, node_gbps: float, aggregate_gbps: float | None) -> tuple[float, str]:
    """Seconds to move ``total`` bytes, ``per_node`` of them through each node, and which rate bound it."""
    node_s = per_node / (node_gbps * 1e9)
    if aggregate_gbps is None:
        return node_s, "per-node"
    agg_s = total / (aggregate_gbps * 1e9)
    return (agg_s, "aggregate") if agg_s > node_s else (node_s, "per-node")


def checkpoint_times(ckpt: CheckpointBytes, hardware: HardwareProfile, mode: str) -> CheckpointTimes:
    """Write, load and blocking seconds of ``ckpt`` on ``hardware``'s storage tier in ``mode``.

    SpecError when the profile has no storage tier (or, for async, no host link)."""
    if mode not in CHECKPOINT_MODES:
        raise SpecError(f"'{mode}' is not one of: {', '.join(CHECKPOINT_MODES)}", field="--checkpoint")
    st = hardware.storage
    if st is None:
        raise SpecError(f"{hardware.name} has no storage tier (profile section 'storage'): checkpoint time "
                        "cannot be priced; add one to the profile or to the run plan", field="--checkpoint")
    dev = hardware.device
    if dev.host_link_gbps is None:
        raise SpecError(f"{hardware.name} has no device.host_link_gbps: the copy to host memory of a "
                        "checkpoint cannot be priced", field="--checkpoint")
    stage = ckpt.held_bytes_per_rank / (dev.host_link_gbps * dev.host_link_efficiency * 1e9)
    write, bound = _move_time(ckpt.total_bytes, ckpt.written_bytes_per_node, st.node_write_gbps,
                              st.aggregate_write_gbps)
    load, _ = _move_time(ckpt.total_bytes, ckpt.written_bytes_per_node, st.node_read_gbps,
                         st.aggregate_read_gbps)
    if mode == "sync":
        blocked = durable = stage + write
    else:
        blocked, durable = stage, stage + write
    return CheckpointTimes(mode=mode, stage_s=stage, write_s=write, load_s=load, blocked_s=blocked,
                           durable_after_s=durable, write_bound=bound)
