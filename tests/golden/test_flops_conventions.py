"""Published FLOPs conventions reproduce the published throughput numbers from the rows' own values.

Rows copied from the project's hand-over table of published runs (shared/data/published_runs.csv),
with their row ids; each cites its paper.
"""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware
from hwprofiles.loader import load_model
from planner.bench.accuracy import default_csv
from planner.bench.cells import flops_convention
from planner.bench.rows import build_case, read_rows
from planner.work.conventions import (
    bigscience_flops,
    flops_utilization,
    gpt_neox_flops,
    korthikanti_model_flops,
    korthikanti_selective_recompute_flops,
    megatron_bridge_flops,
    megatron_eq3_flops,
    mosaicml_hardware_flops_per_sequence,
    mosaicml_model_flops_per_sequence,
    palm_model_flops_per_token,
    training_flops_per_token,
)
from planner.work.params import parameter_counts

A100_PEAK = 312.0  # TFLOP/s dense fp16/bf16, the basis of every percentage below

# Narayanan et al. 2021 (SC21, arXiv 2104.04473) Table 1 (rows 1-10): s=2048, V=51200.
# (gpus, batch, layers, hidden, tflops_per_gpu, sec_per_iter back-computed by the hand-over from Eq. 3)
NARAYANAN_T1 = [
    (32, 512, 24, 2304, 137, 3.528), (64, 512, 30, 3072, 138, 3.697), (128, 512, 36, 4096, 142, 3.696),
    (256, 1024, 40, 6144, 135, 9.399), (512, 1536, 48, 8192, 138, 14.453), (1024, 1792, 60, 10240, 140, 16.058),
    (1536, 2304, 80, 12288, 148, 24.817), (1920, 2160, 96, 16384, 155, 37.614),
    (2520, 2520, 105, 20480, 163, 54.085), (3072, 3072, 128, 25600, 163, 102.63),
]


@pytest.mark.parametrize(("gpus", "batch", "layers", "hidden", "tflops", "seconds"), NARAYANAN_T1)
def test_megatron_eq3_reproduces_table_1(gpus, batch, layers, hidden, tflops, seconds):
    flops = megatron_eq3_flops(batch, 2048, layers, hidden, 51200)
    assert flops / (seconds * gpus) / 1e12 == pytest.approx(tflops, rel=0.001)


def test_megatron_eq3_one_trillion_row_percent_of_peak():
    # Table 1, 1T row: 163 TFLOP/s per GPU = 52 % of 312 on 3072 GPUs.
    flops = megatron_eq3_flops(3072, 2048, 128, 25600, 51200)
    assert 100 * flops_utilization(flops, 102.63, 3072, A100_PEAK) == pytest.approx(52, abs=0.5)


def test_eq3_recompute_factor_is_linear():
    assert megatron_eq3_flops(8, 2048, 4, 1024, 51200, recompute_factor=3) * 4 == pytest.approx(
        megatron_eq3_flops(8, 2048, 4, 1024, 51200) * 3)


# Korthikanti et al. 2022 (arXiv 2205.05198) Table 5 / §6 (rows 23-31): s=2048, V=51200.
# (row, gpus, batch, layers, hidden, sec_per_iter, mfu_pct, hfu_pct or None)
KORTHIKANTI = [
    (23, 8, 4, 48, 6144, 1.42, 32.1, None), (24, 8, 4, 48, 6144, 1.10, 41.5, 43.7),
    (25, 64, 64, 96, 12288, 18.13, 39.0, None), (26, 64, 64, 96, 12288, 13.75, 51.4, 52.8),
    (27, 280, 280, 105, 20480, 49.05, 43.2, None), (28, 280, 280, 105, 20480, 37.83, 56.0, 57.0),
    (29, 512, 512, 128, 25600, 94.42, 42.6, None), (30, 512, 512, 128, 25600, 71.49, 56.3, 57.0),
    (31, 2240, 2240, 105, 20480, 39.15, 54.2, None),
]


@pytest.mark.parametrize(("row", "gpus", "batch", "layers", "hidden", "seconds", "mfu", "hfu"), KORTHIKANTI)
def test_korthikanti_eq7_mfu_and_eq8_hfu(row, gpus, batch, layers, hidden, seconds, mfu, hfu):
    model = korthikanti_model_flops(batch, 2048, layers, hidden, 51200)
    assert 100 * flops_utilization(model, seconds, gpus, A100_PEAK) == pytest.approx(mfu, abs=0.3)
    if hfu is not None:
        hardware = korthikanti_selective_recompute_flops(batch, 2048, layers, hidden, 51200)
        assert 100 * flops_utilization(hardware, seconds, gpus, A100_PEAK) == pytest.approx(hfu, abs=0.3)


# MosaicML llm-foundry benchmark table (A100 rows 69-80 of the hand-over): s, N, L, d, tokens/s/GPU, MFU, HFU.
MOSAICML = [
    (69, 2048, 64.862e9, 80, 8192, 410.0, 53.33, 71.1), (71, 2048, 29.975e9, 48, 7168, 916.0, 55.3, 73.74),
    (72, 2048, 12.854e9, 40, 5120, 2262.0, 59.57, None), (74, 32768, 6.785e9, 32, 4096, 1672.0, 49.46, 65.94),
    (75, 2048, 1.316e9, 24, 2048, 20513.0, 59.86, None),
]


@pytest.mark.parametrize(("row", "seq", "params", "layers", "d_model", "tokens_per_s", "mfu", "hfu"), MOSAICML)
def test_mosaicml_mfu_and_hfu(row, seq, params, layers, d_model, tokens_per_s, mfu, hfu):
    per_second = tokens_per_s / seq
    model = mosaicml_model_flops_per_sequence(params, layers, d_model, seq) * per_second
    assert 100 * flops_utilization(model, 1.0, 1, A100_PEAK) == pytest.approx(mfu, abs=0.2)
    if hfu is not None:
        hardware = mosaicml_hardware_flops_per_sequence(params, layers, d_model, seq) * per_second
        assert 100 * flops_utilization(hardware, 1.0, 1, A100_PEAK) == pytest.approx(hfu, abs=0.2)


def test_palm_per_token_equals_korthikanti_eq7_per_token_for_a_gpt():
    # 6*(12Lh^2 + Vh) + 12Lhs == 72Lh^2 (1 + s/6h + V/12hL) per token.
    L, h, s, V = 96, 12288, 2048, 51200
    assert palm_model_flops_per_token(12 * L * h * h + V * h, L, h, s) == pytest.approx(
        korthikanti_model_flops(1, s, L, h, V) / s, rel=1e-12)


def test_training_flops_per_token_matches_eq7_within_bias_terms():
    model = load_model("megatron-145.6b")
    eq7 = korthikanti_model_flops(1, 2048, model.num_layers, model.hidden_size, model.vocab_size) / 2048
    assert training_flops_per_token(model, 2048) == pytest.approx(eq7, rel=1e-3)
    assert training_flops_per_token(model, 2048, full_recompute=True) == pytest.approx(eq7 * 4 / 3, rel=1e-3)


def test_training_flops_per_token_uses_active_experts():
    model = load_model("mixtral-8x7b")
    counts = parameter_counts(model)
    expected = 6 * (counts.active_non_embedding + 4096 * 32000) + 12 * 32 * 4096 * 4096
    assert training_flops_per_token(model, 4096) == pytest.approx(expected, rel=1e-12)


def test_bigscience_convention():
    # BLOOM log: 8*N*tokens; 176.2B x 2048 seqs x 2048 tokens in 104.70 s on 384 GPUs ~ 147 TFLOP/s
    # (the log prints 149.77; its N differs slightly, so only the convention's size is checked here).
    flops = bigscience_flops(176_247_271_424, 2048 * 2048)
    assert flops / (104.70 * 384) / 1e12 == pytest.approx(149.77, rel=0.02)


def test_megatron_bridge_moe_formula_reproduces_its_tables():
    """Megatron-Bridge prints tokens/s/GPU and "Model TFLOP / sec / GPU" side by side: their ratio is its
    FLOPs per token, which planner.work.conventions.megatron_bridge_flops must reproduce for every MoE row
    (routed top-k and shared experts, dense-first layers, MLA, GQA, MTP, the gpt-oss quick-GELU gate, the
    vocabulary padded to 128 * tp) within the tables' 3-digit rounding."""
    checked = 0
    for row in read_rows(default_csv()):
        if not row["moe"] or "megatron_bridge" not in row["source_id"]:
            continue
        case = build_case(row, (), load_hardware, lambda s: True)
        i = case.inputs
        per_token = megatron_bridge_flops(i.model, 1, i.seq, i.tp, i.mtp_layers) / i.seq
        table = case.measured_tflops * 1e12 / case.measured_tokens_per_gpu
        assert per_token == pytest.approx(table, rel=0.005), row["row_id"]
        checked += 1
    assert checked >= 10


def test_gpt_neox_logging_convention():
    """gpt-neox get_flops (megatron/logging.py, 2021-05 .. 2023-09): 6N + 60 s h L per token. For GPT-NeoX-20B
    (N 20.6B, s 2048, h 6144, L 44) that is 0.92x Megatron's Eq. 3 with recompute per token, and its published row
    is read on it."""
    per_token = gpt_neox_flops(20.6e9, 44, 6144, 2048, 1)
    assert per_token == pytest.approx(6 * 20.6e9 + 60 * 2048 * 6144 * 44)
    eq3 = megatron_eq3_flops(1, 2048, 44, 6144, 50432, 4) / 2048
    assert per_token / eq3 == pytest.approx(0.922, abs=0.005)
    row = next(r for r in read_rows(default_csv()) if r["row_id"] == "39")
    assert flops_convention(row) == ("gpt-neox", False)
