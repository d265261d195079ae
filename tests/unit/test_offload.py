"""CPU offload: bytes (planner.work.offload), host-link time (planner.pricing.hostlink), search."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.cost import estimate
from planner.errors import InfeasibleError, SpecError
from planner.pricing.hostlink import cpu_adam_time, host_link_bps, offload_time
from planner.search import SearchConstraints, search
from planner.specs import Layout, TrainingSpec
from planner.work.offload import OFFLOAD_LEVELS, check_offload
from planner.work.step import build_step


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm-80gb")


def _stage(model, recipe, offload, layout=None, **kw):
    training = TrainingSpec(global_batch_size=8, seq_length=2048, recipe=recipe, offload=offload, **kw)
    step = build_step(load_model(model), training, layout or Layout())
    return step, step.stages[0]


def test_megatron_optimizer_offload_moves_fp32_grads_out_and_bf16_params_back():
    step, s = _stage("llama3-8b", "megatron", {"optimizer": True})
    p = s.params
    assert s.offload.d2h_per_step == pytest.approx(4 * p) and s.offload.h2d_per_step == pytest.approx(2 * p)
    assert s.offload.d2h_per_microbatch == 0 and s.optimizer_bytes == 0 and s.grads_bytes == pytest.approx(4 * p)
    assert s.offload.host_bytes == pytest.approx(12 * p)


def test_memory_never_grows_with_the_offload_level():
    lay = Layout(dp=8, zero_stage=3)
    peaks = []
    for level in (None, *OFFLOAD_LEVELS):
        off = level.model_dump() if level else {}
        _, s = _stage("llama3-8b", "deepspeed", off, lay, recompute="full")
        peaks.append(s.weights_bytes + s.grads_bytes + s.optimizer_bytes + s.activation_bytes_per_microbatch)
    assert peaks == sorted(peaks, reverse=True) and peaks[-1] < peaks[0]


@pytest.mark.parametrize("recipe,off,layout", [
    ("megatron", {"optimizer": True, "gradients": True}, Layout()),
    ("fsdp", {"optimizer": True}, Layout(dp=2, fsdp=True)),
    ("deepspeed", {"gradients": True}, Layout()),
    ("deepspeed", {"optimizer": True, "gradients": True, "params": True}, Layout(dp=2, zero_stage=1)),
])
def test_offload_the_recipe_cannot_express_is_refused(recipe, off, layout):
    training = TrainingSpec(global_batch_size=8, recipe=recipe, offload=off)
    with pytest.raises(SpecError, match="offload"):
        check_offload(training, layout)


def test_activation_offload_needs_full_recompute():
    training = TrainingSpec(global_batch_size=8, recipe="deepspeed", offload={"optimizer": True, "activations": True})
    with pytest.raises(SpecError, match="recompute"):
        check_offload(training, Layout())


def test_host_link_time_and_cpu_adam_share(h100):
    step, s = _stage("llama3-8b", "megatron", {"optimizer": True})
    t = offload_time(s.offload, 1.0, h100)
    bw = 63e9 * 0.81
    adam = s.params / (1.1e10 / 8)  # the node's CPUs serve 8 GPUs
    assert host_link_bps(h100) == pytest.approx(bw)
    assert cpu_adam_time(s.params, h100) == pytest.approx(adam)
    assert t.step == pytest.approx(4 * s.params / bw + adam + 2 * s.params / bw)
    assert t.microbatch_exposed == 0


def test_per_microbatch_copies_hide_under_compute_only_up_to_their_length(h100):
    _, s = _stage("llama3-8b", "deepspeed", {"optimizer": True, "gradients": True})
    copy = s.offload.d2h_per_microbatch / host_link_bps(h100)
    assert offload_time(s.offload, 2 * copy, h100).microbatch_exposed == 0
    assert offload_time(s.offload, copy / 4, h100).microbatch_exposed == pytest.approx(0.75 * copy)


def test_slower_host_link_never_gives_a_faster_step(h100):
    model = load_model("llama3-8b")
    training = TrainingSpec(global_batch_size=8, seq_length=2048, offload={"optimizer": True})
    lay = Layout(tp=8)
    slow = h100.model_copy(update={"device": h100.device.model_copy(update={"host_link_gbps": 16.0})})
    assert estimate(model, slow, training, lay, 8).step_time_s > estimate(model, h100, training, lay, 8).step_time_s


def test_plan_70b_on_8_h100_needs_offload_and_misses_without(h100):
    model = load_model("llama3-70b")
    training = TrainingSpec(global_batch_size=64, seq_length=4096)
    result = search(model, h100, 8, training, top=3)
    assert all(p.training.offload.optimizer for p in result.plans)
    assert result.best.estimate.fits
    with pytest.raises(InfeasibleError, match="short by"):
        search(model, h100, 8, training, SearchConstraints(offload="none"), top=1)


def test_no_host_memory_no_offload_plan(h100):
    tiny = h100.model_copy(update={"node": h100.node.model_copy(update={"host_memory_gib": 64.0})})
    with pytest.raises(InfeasibleError):
        search(load_model("llama3-70b"), tiny, 8, TrainingSpec(global_batch_size=64, seq_length=4096), top=1)


def test_offload_only_appears_when_needed(h100):
    result = search(load_model("llama3-8b"), h100, 8, TrainingSpec(global_batch_size=64, seq_length=4096), top=5)
    assert not any(p.training.offload.any for p in result.plans)
