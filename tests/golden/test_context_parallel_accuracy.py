"""Golden: published long-context runs with context parallelism are predicted (none skipped), and the
median |throughput error| over the cp > 1 rows is pinned.

Rows (hwprofiles/data/published_runs.csv, ids 301-308, 311-312): NeMo 24.03 Long Sequence Performance,
LLAMA2-7B FP8 on DGX-H100, 4K-1024K tokens with cp 1-32 (ring); Llama 3 405B long-context stage,
16,384 H100, tp 8 cp 16 pp 16 (all-gather; arXiv 2407.21783 Table 4). The prediction path sees only
the scenario (test_published_accuracy.py checks that); nothing here is a per-row factor.
"""

from __future__ import annotations

import pytest

from planner.bench.accuracy import run_accuracy

SOURCES = {"nemo_long_seq_h100", "llama3_2024_t4"}
# re-pinned 2026-12-01 after the integration of h1 (recipes, attention table) with h7 (context parallelism),
# `paraplan bench accuracy` (summary.context_parallel): 7 rows, median |error| 60.7 % (row 303), all NeMo rows
# predicted faster (+53 to +68 %), the Llama 3 row slower (-33.5 %). It was 23.0 % on h7 alone; per row
# (one change reverted at a time, docs/context_parallel.md "Accuracy after the recipe integration"):
# - the h100 profile's attention table (H200 causal SDPA by head dim and sequence, PyTorch 2.11 / cuDNN,
#   2026) replaces the scalar medians over 1K-8K (fwd 0.524 / bwd 0.384): the 16K-32K ring blocks and the
#   131K all-gather block read its 8K entry (0.607 / 0.529): +30 to +39 points on rows 303-307, +23 on 302,
#   +7 on 308. NeMo 24.03.01 ran 2024 Transformer Engine kernels, slower than the 2026 kernels measured.
# - the megatron-core recipe inferred from the "NeMo" framework column turns TP-comm overlap on (Megatron-LM
#   sizes its userbuffers seq*mb/cp, so it runs under cp): +4 to +16 points on 302-307 (the 'pass' style
#   hides the TP collectives under the whole pass, ring attention included; TE's per-GEMM 'ring-exchange' style
#   would keep only 1-4 of these points on 303-307).
# - its distributed optimizer (states sharded over dp x cp) lets row 302 fit without recompute, so the
#   documented recompute default picks none instead of full: +34 points on 302.
# - fp8 size curve: -0.1 to -1.1 points (slower); the kernels the recipe adds (fp8 casts, RoPE, per-class bandwidth):
#   -3 to 0 points; the host floor does not bind (dispatch under 2 % of each pass).
# Faithful consequences of the profile and the recipe defaults, not a per-row factor. The one bug found (the
# layer op cache dropped cp_kind, so row 308 ran the ring core instead of the all-gather it states) is fixed
# and tested in tests/unit/test_cp_units.py; it moved row 308 only (-32.4 -> -33.5 %), not the median.
# re-pinned 2026-12-02 at 54.3 % (row 304; was 60.7 %): the megatron-core recipe's TP overlap is now TE
# userbuffers' per-GEMM form (recipe field tp_overlap_style_default: ring-exchange; chunk GEMMs priced on TE's
# 3 concurrent compute streams; the GEMMs beside a pipeline / bulk reduce-scatter on sm_count - 16 SMs;
# planner/pricing/tp_overlap.py, docs/tp_overlap_fidelity.md) instead of the whole-pass bound: rows 301-307
# move -2.0 to -9.1 points (+46.4 -> +37.6, +52.6 -> +46.1, +60.7 -> +51.6, +59.4 -> +54.3, +63.2 -> +60.3,
# +62.8 -> +59.1, +68.2 -> +66.2); row 308 (megatron-lm, no overlap) unchanged.
# re-pinned 2026-12-02 at 2.7 % (row 329; was 54.3 %), 9 cp rows (302-308 and the NeMo 24.07 perf-summary rows
# 328-329, cp 2): NeMo 24.03.01-24.07 launch with NVTE_FUSED_ATTN=0 (NeMo-Framework-Launcher
# launcher_scripts/conf/config.yaml, "Disable cudnn FA until we've tested it more"), so Transformer Engine runs
# flash-attn's FlashAttention-2 kernels on Hopper, not cuDNN; rows naming those releases are priced with the
# h100 profile's fa2 attention table (Shah et al. 2024, arXiv 2407.08608, Figs. 4-5: FA2 on H100, hd 128) through
# planner.bench.cells.row_attention_kernel: rows 302-307 move from +46..+66 % to -0.5..+7.3 %; row 308
# (Llama 3, megatron-lm recipe, default table) unchanged at -33.5 %.
# re-pinned 2026-12-02 at 4.4 % (row 303): Megatron-Core's interleaved schedule overlaps its pipeline sends
# (recipe field p2p_overlap_interleaved, Megatron-LM --no-overlap-p2p-communication default): row 329
# (LLAMA3-70B tp4 pp4 v5 cp2) moves +2.7 -> +5.1 %; the other cp rows are not interleaved.
# re-pinned 2026-12-07 at 5.4 %: Hopper's persistent GEMMs run in two waves beside the distributed optimizer's
# overlapped reduce-scatter (planner.pricing.compute.overlap_slowdown; PyTorch PR #144974, pytorch/pytorch#143988):
# the NeMo cp rows move 1-3 points slower (signed median -5.4 %).
MEDIAN_ABS_ERROR_PCT = 5.4
TOLERANCE_POINTS = 2.0


@pytest.fixture(scope="module")
def report():
    return run_accuracy()


def test_long_context_rows_are_all_predicted(report):
    skipped = [s for s in report.skipped if s.source_id in SOURCES]
    assert skipped == []
    rows = [r for r in report.rows if r.source_id in SOURCES]
    assert len(rows) == 10  # 301-308 and the table's 4K / 8K rows 311-312 (cp 1)
    assert sum(r.cp > 1 for r in rows) == 7
    assert all(r.fits for r in rows)


def test_context_parallel_median_error_is_pinned(report):
    stats = report.summary.context_parallel
    assert stats is not None and stats.rows >= 7
    assert stats.median_abs_error_pct == pytest.approx(MEDIAN_ABS_ERROR_PCT, abs=TOLERANCE_POINTS)


def test_no_row_is_skipped_because_cp_is_not_priced(report):
    assert not any("context" in s.reason.lower() or " cp" in s.reason.lower() for s in report.skipped)
