"""What-if library: settings, re-derivation, comparison, sweep efficiency, sensitivity."""

from __future__ import annotations

import pytest

from planner.errors import SpecError
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from planner.whatif import apply_settings, compare, read_key, sensitivity, sweep, valid_keys


@pytest.fixture(scope="module")
def base() -> Scenario:
    from hwprofiles import load_hardware, load_model

    return Scenario(
        model=load_model("frontier-175b"), hardware=load_hardware("mi250x-frontier"), gpus=128,
        training=TrainingSpec(global_batch_size=64, micro_batch_size=1, recompute="full", precision="fp16",
                              recipe="deepspeed"),
        layout=Layout(tp=4, pp=16, dp=2, zero_stage=1))


def test_nic_multiplier_scales_every_nic(base):
    new, notes = apply_settings(base, ["hardware.nic_bandwidth=x2"])
    assert [n.bandwidth_gbps for n in new.hardware.node.nics] == [2 * n.bandwidth_gbps for n in base.hardware.node.nics]
    assert read_key(new, "hardware.nic_bandwidth") == 2 * read_key(base, "hardware.nic_bandwidth")
    assert notes


def test_absolute_nic_value_in_bits(base):
    new, _ = apply_settings(base, ["hardware.nic_bandwidth=400Gb/s"])
    assert {n.bandwidth_gbps for n in new.hardware.node.nics} == {50.0}


def test_dotted_path_and_list_index(base):
    new, _ = apply_settings(base, ["hardware.node.nics.0.bandwidth_gbps=50GB/s", "hardware.hbm_capacity=80GB"])
    assert new.hardware.node.nics[0].bandwidth_gbps == 50.0
    assert new.hardware.node.nics[1].bandwidth_gbps == base.hardware.node.nics[1].bandwidth_gbps
    assert new.hardware.device.hbm_capacity_gib == pytest.approx(80e9 / 2**30)


def test_peak_tflops_per_dtype(base):
    new, _ = apply_settings(base, ["hardware.peak_tflops.bf16=x1.5"])
    assert new.hardware.device.peak_tflops.bf16 == pytest.approx(1.5 * base.hardware.device.peak_tflops.bf16)
    assert new.hardware.device.peak_tflops.fp16 == base.hardware.device.peak_tflops.fp16


def test_tp_change_rederives_dp_and_says_so(base):
    new, notes = apply_settings(base, ["layout.tp=8"])
    assert (new.layout.tp, new.layout.dp, new.gpus) == (8, 1, 128)
    assert any("dp re-derived: 2 -> 1" in n for n in notes)


def test_gpus_change_rederives_dp(base):
    new, notes = apply_settings(base, ["gpus=256"])
    assert new.layout.dp == 4 and any("dp re-derived" in n for n in notes)


def test_dp_change_rederives_gpus(base):
    new, notes = apply_settings(base, ["layout.dp=4"])
    assert new.gpus == 256 and any("gpus re-derived" in n for n in notes)


def test_hidden_alias_keeps_ffn_ratio(base):
    new, _ = apply_settings(base, ["model.hidden=16384"])
    assert new.model.hidden_size == 16384
    assert new.model.ffn_hidden_size == 4 * 16384
    assert new.model.num_heads == 128  # 16384 % 96 != 0: head width 128 kept
    assert apply_settings(base, ["model.hidden=x1.25"])[0].model.num_heads == 96


def test_unknown_key_is_one_short_line_with_the_closest_keys(base):
    with pytest.raises(SpecError) as exc:
        apply_settings(base, ["hardware.nic_bw=x2"])
    msg = str(exc.value)
    assert "did you mean: hardware.nic_bandwidth" in msg
    assert "paraplan whatif --list-keys" in msg
    assert "\n" not in msg and len(msg) < 200
    assert set(valid_keys()) >= {"hardware.link_bandwidth", "model.layers", "training.global_batch", "tp", "zero"}


def test_unknown_key_in_a_sweep_names_vary(base):
    with pytest.raises(SpecError) as exc:
        sweep(base, [("tpx", ["1", "2"])])
    assert str(exc.value).startswith("--vary: unknown key 'tpx' (did you mean: tp")


@pytest.mark.parametrize("short, full, value", [
    ("tp", "layout.tp", 8), ("pp", "layout.pp", 8), ("zero", "layout.zero_stage", 2),
    ("micro_batch", "training.micro_batch_size", 2), ("micro-batch", "training.micro_batch_size", 2),
    ("seq", "training.seq_length", 4096), ("schedule", "layout.schedule", "gpipe"),
    ("recompute", "training.recompute", "selective"),
])
def test_short_names_like_gpus(base, short, full, value):
    new, notes = apply_settings(base, [f"{short}={value}"])
    section, name = full.split(".")
    assert getattr(getattr(new, section), name) == value
    if short in ("tp", "pp"):
        assert any("dp re-derived" in n for n in notes)


@pytest.mark.parametrize("setting, fragment", [
    ("layout.tp=7", "% (tp(7)"), ("hardware.nic_bandwidth=25GHz", "25GB/s"), ("layout.schedule=zigzag", "1f1b"),
    ("model.layers=x1.01", "whole number"), ("layout.fsdp=maybe", "true"), ("gpus", "KEY=VALUE"),
])
def test_bad_values_are_spec_errors(base, setting, fragment):
    with pytest.raises(SpecError, match=None) as exc:
        apply_settings(base, [setting])
    assert fragment in str(exc.value)


def test_compare_deltas_and_bottlenecks(base):
    cmp = compare(base, [["hardware.nic_bandwidth=x2"], ["hardware.peak_tflops=x0.5"]])
    b = cmp.base.estimate
    faster, slower = cmp.variants
    assert faster.delta.step_time == pytest.approx(faster.estimate.step_time_s / b.step_time_s - 1)
    assert faster.delta.step_time <= 0 < slower.delta.step_time
    assert cmp.base.bottleneck.seconds == getattr(b.time, cmp.base.bottleneck.part)
    assert cmp.base.bottleneck.saving_x2 > 0  # measured: the resource whose 2x helps most (test_bottleneck.py)
    assert cmp.base.overhead.part != "compute"


def test_bottleneck_shift_is_reported(base):
    cmp = compare(base, [["hardware.peak_tflops=x100"]])
    var = cmp.variants[0]
    assert cmp.base.bottleneck.part == "compute"
    assert var.bottleneck.part != "compute"
    assert var.bottleneck_shift and var.bottleneck.label in var.bottleneck_shift


def test_weak_sweep_grows_global_batch_and_efficiency_is_per_gpu_ratio(base):
    res = sweep(base, [("gpus", ["128", "256"])], mode="weak")
    p0, p1 = res.points
    assert (p0.global_batch, p1.global_batch) == (64, 128)
    assert p1.layout.startswith("tp4 pp16 dp4")
    assert p0.efficiency == 1.0
    assert p1.efficiency == pytest.approx(p1.tokens_per_s_per_gpu / p0.tokens_per_s_per_gpu)


def test_strong_sweep_efficiency_is_speedup_over_ideal(base):
    res = sweep(base, [("gpus", ["128", "256"])], mode="strong")
    p0, p1 = res.points
    assert p0.global_batch == p1.global_batch == 64
    assert p1.efficiency == pytest.approx((p0.step_time_s / p1.step_time_s) / 2)
    assert p1.efficiency < 1  # the pipeline bubble grows as micro-batches per replica halve


def test_sweep_point_error_is_recorded(base):
    res = sweep(base, [("gpus", ["128", "192"])], mode="strong")
    assert res.points[1].error and "!= 0" in res.points[1].error


def test_sensitivity_matches_direct_recomputation(base):
    res = sensitivity(base, keys=["hardware.nic_bandwidth", "hardware.peak_tflops", "model.layers"])
    t0 = base.estimate().step_time_s
    nic = next(r for r in res.hardware if r.key == "hardware.nic_bandwidth")
    t_hi = apply_settings(base, ["hardware.nic_bandwidth=x1.1"])[0].estimate().step_time_s
    assert nic.improve_delta == pytest.approx(t_hi / t0 - 1)
    assert nic.elasticity <= 0
    peak = res.hardware[0]
    assert peak.key == "hardware.peak_tflops" and -1 <= peak.elasticity < 0
    assert abs(res.hardware[0].elasticity) >= abs(res.hardware[-1].elasticity)
    assert res.model[0].elasticity > 0  # more layers, slower step
    assert f"{peak.bound_share:.0%} bound by" in res.headline and "step time" in res.headline
