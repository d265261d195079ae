"""What the calibration microbenchmarks measure (torch-free): shapes from the planner's own work
description, so the GEMMs and attention timed are exactly the ones the cost model prices.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from planner.specs.base import Spec
from planner.work.ops import Attention, Gemm
from planner.work.step import build_step

from .job import JobSpec

KB, MB = 1024, 1024 * 1024


class BenchSpec(Spec):
    """Microbenchmarks over ``nproc`` ranks. Sizes in bytes; times are medians of repeats, s."""

    nproc: int = Field(2, gt=0, description="ranks (all of them run each benchmark at once)")
    backend: Literal["gloo", "nccl"] = Field("gloo", description="torch.distributed backend")
    compute_dtype: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="dtype of GEMMs and attention")
    gemms: list[tuple[int, int, int]] = Field(default_factory=list, description="(m, n, k) GEMM shapes")
    attention: list[tuple[int, int, int]] = Field(
        default_factory=list, description="(batch*heads, seq, head_dim) causal attention shapes")
    copy_bytes: list[int] = Field(default_factory=lambda: [1 * MB, 8 * MB, 32 * MB],
                                  description="element-wise copy sizes, bytes")
    collective_bytes: list[int] = Field(
        default_factory=lambda: [4 * KB, 64 * KB, 1 * MB, 8 * MB, 32 * MB], description="collective sizes, bytes")
    optimizer_params: int = Field(1_000_000, gt=0, description="parameters of the Adam-step benchmark")
    min_time_s: float = Field(0.02, gt=0, description="repeat each measurement at least this long, s")
    max_repeats: int = Field(30, gt=0, description="at most this many repeats")


def shapes_from_jobs(jobs: list[JobSpec]) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Distinct GEMM (m, n, k) and attention (batch*heads, seq, head_dim) shapes of the jobs' steps,
    as ``planner.work.build_step`` describes them (forward and backward)."""
    gemms: set[tuple[int, int, int]] = set()
    attn: set[tuple[int, int, int]] = set()
    for job in jobs:
        step = build_step(job.effective_model(), job.training_spec(), job.layout)
        for stage in step.stages:
            for opset in (stage.layer, stage.pre, stage.post):
                for op in opset.forward + opset.backward_input + opset.backward_weight:
                    if isinstance(op, Gemm):
                        gemms.add((op.m, op.n, op.k))
                    elif isinstance(op, Attention):
                        attn.add((op.batch_heads, op.seq_q, op.head_dim))
    return sorted(gemms), sorted(attn)
