"""Hopper's persistent GEMMs beside communication kernels (planner.pricing.compute.overlap_slowdown): a GEMM that
launches one block per SM runs in two waves while a collective holds some SMs, so overlapped FSDP / ZeRO traffic
and the MoE all-to-all overlap cost more on H100 than the SM share alone. One behaviour per test."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost.analytic import estimate
from planner.pricing import Pricer
from planner.pricing.compute import (
    PERSISTENT_GEMM_WAVE_RATE,
    beside_slowdown,
    overlap_slowdown,
    sm_share_slowdown,
)
from planner.pricing.compute_part import single_stream_gemm
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from planner.work.ops import ExecutedGemm, Gemm

H100 = load_hardware("h100-sxm-80gb")
A100 = load_hardware("a100-sxm-80gb")


def test_two_waves_end_a_gemm_at_w_plus_the_overlapped_comm():
    """A W-second GEMM beside c seconds of traffic: its delayed blocks start when the traffic frees its SMs or the
    first wave ends, so it ends at W + min(c, W); the pass ends at max(that, c)."""
    w = 1.0
    for c in (0.3, 1.0, 1.7, 2.5):
        assert max(w, c) + beside_slowdown(w, c, PERSISTENT_GEMM_WAVE_RATE) == pytest.approx(max(c, w + min(c, w)))


def test_only_devices_with_persistent_gemms_pay_the_second_wave():
    share = sm_share_slowdown(16, 132)
    assert overlap_slowdown(1.0, 16, 132, persistent_gemms=False) == pytest.approx(share)
    assert overlap_slowdown(1.0, 16, 132, persistent_gemms=True) == pytest.approx(PERSISTENT_GEMM_WAVE_RATE)
    assert overlap_slowdown(0.25, 16, 132, True) == pytest.approx(0.25 + 0.75 * share)
    assert overlap_slowdown(1.0, None, 132, True) == 0.0  # no SM figure: not priced


def test_the_profiles_say_which_devices_schedule_persistent_gemms():
    assert H100.device.persistent_gemms and load_hardware("h200-sxm-141gb").device.persistent_gemms
    assert not A100.device.persistent_gemms and not load_hardware("mi250x-frontier").device.persistent_gemms


def test_a_grouped_gemm_of_several_experts_is_not_single_stream():
    """Transformer Engine runs one cuBLAS GEMM per local expert on several streams: another GEMM's blocks fill the
    SMs a tail leaves, so only the SM share applies to it."""
    one = Gemm("experts.fc1", 512, 1024, 2048, "fwd", 1)
    four = Gemm("experts.fc1", 512, 1024, 2048, "fwd", 4)
    assert single_stream_gemm(one) and single_stream_gemm(four)  # a plain (batched) GEMM is one launch
    assert single_stream_gemm(ExecutedGemm("experts.fc1", one, one.flops, "fwd"))
    assert not single_stream_gemm(ExecutedGemm("experts.fc1", four, four.flops, "fwd"))


def _fsdp(hardware, persistent: bool | None = None) -> Scenario:
    if persistent is not None:
        hardware = hardware.model_copy(update={"device": hardware.device.model_copy(
            update={"persistent_gemms": persistent})})
    return Scenario(model=load_model("llama3-8b"), hardware=hardware, gpus=64,
                    training=TrainingSpec(global_batch_size=128, seq_length=8192, recipe="torchtitan"),
                    layout=Layout(dp=64, fsdp=True))


def test_fsdp_without_recompute_on_h100_pays_for_its_overlapped_traffic():
    """The class `plan` ranks first: turning the device's persistent GEMMs off (the SM share alone) makes the same
    step faster, and estimate --json names the mechanism with the stage's slowdown."""
    sc = _fsdp(H100)
    waves = estimate(sc.model, sc.hardware, sc.training, sc.layout, sc.gpus, breakdown=True)
    share_only = _fsdp(H100, persistent=False).estimate()
    assert waves.step_time_s > share_only.step_time_s
    overlap = waves.mechanisms.comm_overlap
    assert overlap.persistent_gemms and overlap.slowdown > sm_share_slowdown(16, 132)


def test_a100_steps_do_not_change():
    assert _fsdp(A100).estimate().step_time_s == pytest.approx(_fsdp(A100, persistent=False).estimate().step_time_s)


def test_the_pricer_slowdown_takes_the_gemm_share():
    p = Pricer(H100, TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, fsdp=True), 8)
    assert p.comm_compute_slowdown(0.0) == pytest.approx(sm_share_slowdown(16, 132))
    assert p.comm_compute_slowdown(1.0) == pytest.approx(1.0)


def test_whatif_prices_gemms_that_leave_the_collectives_sms_free():
    """`whatif --set hardware.device.persistent_gemms=false`: the SM share alone, the gain an SM carve-out
    (PyTorch's sm_carveout) could give at most."""
    from planner.whatif import apply_settings

    sc = _fsdp(load_hardware("h100-sxm-96gb-500w"))
    variant = apply_settings(sc, ["hardware.device.persistent_gemms=false"])[0]
    assert not variant.hardware.device.persistent_gemms
    assert variant.estimate().step_time_s < sc.estimate().step_time_s
