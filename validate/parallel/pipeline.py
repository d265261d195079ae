"""Pipeline parallelism with ``torch.distributed.pipelining``: stage chunks and schedules.

GPipe (Huang et al. 2019, arXiv 1811.06965), 1F1B (PipeDream-Flush, Narayanan et al. 2021,
arXiv 2104.04473) and interleaved 1F1B (same paper, section 2.2.2) are PyTorch's own schedules.
A rank holds ``vpp`` chunks: chunk ``c`` of ``pp * vpp`` goes to pipeline rank ``c % pp``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe, ScheduleInterleaved1F1B

from planner.specs import Layout

from ..model import GPT


def chunk_layers(num_layers: int, chunks: int) -> list[list[int]]:
    """Layer indices of each of ``chunks`` pipeline chunks (even split, earlier chunks take the rest)."""
    base, extra = divmod(num_layers, chunks)
    out, start = [], 0
    for c in range(chunks):
        n = base + (1 if c < extra else 0)
        out.append(list(range(start, start + n)))
        start += n
    return out


def make_chunk(full: GPT, layers: list[int], first: bool, last: bool) -> GPT:
    """A copy of ``full`` keeping only ``layers`` (names unchanged), embeddings if first, head if last."""
    chunk = copy.deepcopy(full)
    keep = {str(i) for i in layers}
    for name in list(chunk.layers.keys()):
        if name not in keep:
            del chunk.layers[name]
    if not first:
        chunk.tok_embeddings = None
        chunk.pos_embeddings = None
        chunk.embedding_norm = None
    if not last:
        chunk.norm = None
        chunk.output = None
    return chunk


def stage_chunk_ids(layout: Layout, pp_rank: int) -> list[int]:
    """Global chunk (stage) indices held by pipeline rank ``pp_rank``."""
    return [pp_rank + k * layout.pp for k in range(layout.vpp)]


def build_chunks(full: GPT, layout: Layout, pp_rank: int) -> list[tuple[int, GPT]]:
    """(stage index, module) for every chunk this pipeline rank holds."""
    chunks = layout.pp * layout.vpp
    groups = chunk_layers(full.spec.num_layers, chunks)
    return [(c, make_chunk(full, groups[c], c == 0, c == chunks - 1)) for c in stage_chunk_ids(layout, pp_rank)]


def build_schedule(
    modules: list[tuple[int, nn.Module]], layout: Layout, pp_mesh: DeviceMesh, device: torch.device,
    micro_batches: int, loss_fn: Callable,
):
    """The pipeline schedule (PipelineStage per chunk) for ``layout.schedule``."""
    num_stages = layout.pp * layout.vpp
    group = pp_mesh.get_group()
    stages = [PipelineStage(m, idx, num_stages, device, group=group) for idx, m in modules]
    if layout.schedule == "interleaved-1f1b":
        return ScheduleInterleaved1F1B(stages, micro_batches, loss_fn=loss_fn)
    cls = {"gpipe": ScheduleGPipe, "1f1b": Schedule1F1B}[layout.schedule]
    return cls(stages[0], micro_batches, loss_fn=loss_fn)
