"""Attention kernel generations: a profile's extra attention tables (device.attention_kernel_tables),
selected by training.attention_kernel / --attention-kernel, and the bench rows that imply one."""

from __future__ import annotations

import json

import pytest

from hwprofiles import load_hardware
from planner.bench.cells import row_attention_kernel
from planner.errors import SpecError
from planner.pricing.compute import DERIVED_ATTENTION_KERNELS, ComputePricer, attention_kernel_tables


def test_fa2_table_is_read_from_the_h100_profile():
    dev = load_hardware("h100-sxm-80gb").device
    default, fa2 = ComputePricer(dev, "bf16"), ComputePricer(dev, "bf16", "fa2")
    # Shah et al. 2024, Fig. 4 (causal forward, hd 128, 4k): FA2 319 TFLOP/s; Fig. 5 (backward): 310
    assert fa2.attention_efficiency(128, 4096, backward=False) == pytest.approx(319 / 989.4, abs=1e-3)
    assert fa2.attention_efficiency(128, 4096, backward=True) == pytest.approx(310 / 989.4, abs=1e-3)
    for seq in (4096, 8192, 131072):  # the 2026 cuDNN / SDPA default table is faster from 4k up
        for bwd in (False, True):
            assert fa2.attention_efficiency(128, seq, bwd) < default.attention_efficiency(128, seq, bwd)


def test_unknown_kernel_names_the_tables_the_profile_has():
    dev = load_hardware("h100-sxm-80gb").device
    with pytest.raises(SpecError, match="fa2"):
        ComputePricer(dev, "bf16", "fa9")


@pytest.mark.parametrize("command", ["estimate", "plan"])
def test_cli_refuses_an_unknown_kernel_with_exit_2(run_cli, command):
    result = run_cli(command, "-m", "llama2-7b", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "64",
                     "--attention-kernel", "fa3")
    assert result.exit_code == 2
    assert "--attention-kernel" in result.stderr and "Traceback" not in result.stderr


def test_estimate_with_fa2_is_slower_and_says_so(run_cli):
    args = ["estimate", "-m", "llama3-8b", "-H", "h100-sxm-80gb", "-g", "8", "--global-batch", "64",
            "--seq", "8192", "--recipe", "megatron-core", "--json"]
    base = json.loads(run_cli(*args).stdout)
    fa2 = json.loads(run_cli(*args, "--attention-kernel", "fa2").stdout)
    assert fa2["step_time_s"] > base["step_time_s"]
    assert fa2["training"]["attention_kernel"] == "fa2"
    assert any("fa2 kernel table" in n for n in fa2["notes"])


@pytest.mark.parametrize(("framework", "hardware", "kernel"), [
    ("NeMo 24.03.01 (Megatron-Core, Transformer Engine)", "h100-sxm-80gb", "fa2"),
    ("NeMo 24.07 (Megatron-Core, Transformer Engine)", "h100-sxm-80gb", "fa2"),
    ("NeMo 24.09 (Megatron-Core)", "h100-sxm-80gb", None),  # cuDNN attention enabled from 24.09
    ("Megatron-Core r0.8.0", "h100-sxm-80gb", None),
    ("NeMo 24.07 (Megatron-Core, Transformer Engine)", "a100-sxm-80gb", "fa2"),  # its default point, named
    ("MI250X run", "mi250x-frontier", None),
])
def test_row_attention_kernel_follows_the_release(framework, hardware, kernel):
    assert row_attention_kernel(framework, load_hardware(hardware)) == kernel


@pytest.mark.parametrize("hardware", ["h100-sxm-80gb", "a100-sxm-80gb"])
def test_fa1_is_the_fa2_table_at_the_published_speed_ratio(hardware):
    dev = load_hardware(hardware).device
    kernel = DERIVED_ATTENTION_KERNELS["fa1"]
    assert (kernel.base, kernel.speed, kernel.forward_speed) == ("fa2", 0.5, None)  # FlashAttention-2: ~2x FA1
    fa1, fa2 = ComputePricer(dev, "bf16", "fa1"), ComputePricer(dev, "bf16", "fa2")
    for seq in (512, 2048, 16384, 65536):
        for bwd in (False, True):
            assert fa1.attention_efficiency(128, seq, bwd) == pytest.approx(0.5 * fa2.attention_efficiency(128, seq, bwd))


def test_fa1_exists_only_where_its_base_table_does():
    assert "fa1" not in attention_kernel_tables(load_hardware("mi250x-frontier").device)
    with pytest.raises(SpecError, match="fa1"):
        ComputePricer(load_hardware("mi250x-frontier").device, "bf16", "fa1")


@pytest.mark.parametrize(("cell", "kernel"), [
    ("yes: Triton FlashAttention (FlashAttention-1 generation). attn_impl triton ...", "fa1-triton"),
    ("yes: FlashAttention-1 (flash-attn 1.0.9)", "fa1"),
    ("yes: FlashAttention-2 (flash-attn 2.4.2; attn_impl flash)", "fa2"),
    ("yes (FA3)", "fa3"),
    ("yes", None),
])
def test_the_flash_attention_cell_names_the_generation(cell, kernel):
    hw = load_hardware("h100-sxm-80gb")
    expected = kernel if kernel is None or kernel in attention_kernel_tables(hw.device) else None
    assert row_attention_kernel("Composer + LLM Foundry", hw, cell) == expected


def test_triton_fa1_runs_a_faster_forward_and_the_same_training_pass_as_fa1():
    """flash_attn_triton.py: forward 1.54x FlashAttention-1 (flash-attention issue #142, 2.87 / 1.86 ms), forward +
    backward FlashAttention-1's (its docstring), which is half FlashAttention-2's."""
    dev = load_hardware("h100-sxm-80gb").device
    tri, fa1, fa2 = (ComputePricer(dev, "bf16", k) for k in ("fa1-triton", "fa1", "fa2"))
    for seq in (512, 4096, 16384):
        assert tri.attention_efficiency(128, seq, False) == pytest.approx(0.5 * 2.87 / 1.86 * fa2.attention_efficiency(128, seq, False))

        def pass_time(p):  # seconds per forward FLOP of a forward + backward (backward 2.5x the FLOPs)
            return 1 / p.attention_efficiency(128, seq, False) + 2.5 / p.attention_efficiency(128, seq, True)

        assert pass_time(tri) == pytest.approx(pass_time(fa1)) == pytest.approx(2 * pass_time(fa2))
        assert tri.attention_efficiency(128, seq, True) < fa1.attention_efficiency(128, seq, True)
