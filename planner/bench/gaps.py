"""Why a bench row is off by more than ``WORSE_THAN`` percent: the known gap that row belongs to, by name.

Each reason names the mechanism paraplan does not price (or the data problem) and where it is written
up (README "Known gaps", hwprofiles/data/PUBLISHED_RUNS.md, docs/). A reason explains an error; it never
changes a prediction. A row off by more than the threshold that no rule covers is labelled
``unexplained`` so the table never hides one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

WORSE_THAN = 25.0  # percent; rows beyond it must carry a named reason (issue 22)


@dataclass(frozen=True, slots=True)
class GapRow:
    """What a rule reads of a compared row."""

    source_id: str
    model: str
    recipe: str
    cp: int
    zero_stage: int
    dp: int
    moe: bool
    moe_a2a_overlap: bool = False  # the run overlapped its EP all-to-alls in the combined-1F1B schedule


@dataclass(frozen=True, slots=True)
class GapRule:
    """A known gap: which rows it covers and the reason the bench prints for them."""

    name: str
    covers: Callable[[GapRow], bool]
    reason: str


RULES: tuple[GapRule, ...] = (
    GapRule("deepspeed-2021-zero3", lambda r: r.recipe.startswith("deepspeed") and r.zero_stage == 3 and r.dp >= 256,
            "DeepSpeed 2021 ZeRO-3 at hundreds of ranks: of its per-rank host work the Python get_rank calls and "
            "the C++ dispatch of PyTorch's per-rank copies are not priced (docs/recipes.md, recipe deepspeed-2021)"),
    GapRule("opt175b-quoted-peak", lambda r: r.source_id == "opt175b",
            "OPT-175B's 147 TFLOP/s is a quoted peak with an unstated formula (PUBLISHED_RUNS.md)"),
    GapRule("mtnlg-secondary-quote", lambda r: r.source_id == "mtnlg530b",
            "MT-NLG's figures are secondary quotes; micro-batch and ZeRO stage unstated (priced at micro-batch 1; "
            "at 2 these rows would be +12..+13 %: docs/sharded-data-parallel.md, Known gaps)"),
    GapRule("llama3-405b-cp", lambda r: r.source_id == "llama3_2024_t4",
            "Llama 3's long-context row: virtual pipeline stages unstated, plain 1F1B priced "
            "(docs/context_parallel.md)"),
    GapRule("mcore-h100-compute-bound",
            lambda r: r.source_id in ("mcore_h100_scaling", "nemo_perf_24.07_h100") and not r.moe,
            "compute-bound Megatron-Core H100 row predicted fast for a cause not found "
            "(README Known gaps; docs/tp_overlap_fidelity.md)"),
    GapRule("gpt-oss-sinks", lambda r: r.moe and "gpt-oss" in r.model,
            "attention sinks may run unfused; the 128-token window's kernel efficiency is unmeasured (docs/moe.md)"),
    GapRule("moe-a2a-overlap-realised", lambda r: r.moe and "235b" in r.model and r.moe_a2a_overlap,
            "the combined-1F1B all-to-all overlap realises less than its ideal two-stream schedule (priced without "
            "it these rows are -13 / -11 %; a published same-layout A/B saves 10.7 % where the ideal saves 27 %); "
            "the cause is unmeasured (docs/moe.md)"),
    GapRule("qwen3-30b-container",
            lambda r: r.moe and "30b" in r.model and r.source_id in ("megatron_bridge_26.02", "megatron_bridge_25.11"),
            "container regression: the same layout measured 9,058 tok/s/GPU in 26.02.01 against 5,113 in 26.02 "
            "(docs/moe.md)"),
    GapRule("moe-per-layer-overhead", lambda r: r.moe,
            "MoE rows on H100 are predicted fast by a near-constant 1-3.6 ms per layer and micro-batch whatever the "
            "model's width; per-layer host dispatch of Megatron-Core's MoE layer is the suspected, unmeasured "
            "cause (docs/moe.md)"),
    GapRule("llmfoundry-h100", lambda r: r.source_id == "llmfoundry_h100",
            "LLM Foundry (FSDP1, eager, Triton FlashAttention of the FlashAttention-1 generation) on H100: the "
            "kernel is priced at half the FlashAttention-2 table (FlashAttention-2 abstract); full-recompute "
            "long-sequence rows come out 10-16 % slow (the Triton forward, run twice under recompute, is faster than "
            "FlashAttention-1's per flash_attn_triton.py), MPT-13B micro-batch 2 rows 10-15 % fast; both unmeasured "
            "(docs/sharded-data-parallel.md)"),
    GapRule("torchtitan-asynctp-2025", lambda r: r.source_id == "torchtitan_asynctp_2506",
            "torchtitan's June 2025 async-TP runs: async TP measured 1.09-1.16x where its ring-exchange pricing "
            "gives 1.19-1.21x, and the tp 8 Llama 3.1 8B runs are slower than priced with or without it; the cause "
            "is unmeasured (docs/sharded-data-parallel.md)"),
    GapRule("torch-cp-long-context", lambda r: r.recipe.startswith("torchtitan") and r.cp >= 4,
            "torch context_parallel at cp >= 4: attention is priced at the whole-sequence kernel efficiency; the "
            "efficiency of its per-rotation SDPA calls on load-balanced chunks is unmeasured (README Known gaps)"),
)


def gap_reason(row: GapRow) -> str:
    """The reason of the first rule covering ``row``, or ``unexplained``."""
    return next((rule.reason for rule in RULES if rule.covers(row)), "unexplained")


def gap_flags(row: GapRow, time_error_pct: float, memory_error_pct: float | None) -> list[str]:
    """Flags naming why ``row`` is off by more than ``WORSE_THAN`` percent in time or in memory (none when it
    is within it)."""
    out = []
    if abs(time_error_pct) > WORSE_THAN:
        out.append(f"time {time_error_pct:+.0f} %: {gap_reason(row)}")
    if memory_error_pct is not None and abs(memory_error_pct) > WORSE_THAN:
        out.append(f"memory {memory_error_pct:+.0f} %: {gap_reason(row)}")
    return out
