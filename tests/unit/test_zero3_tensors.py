"""DeepSpeed ZeRO-3 as its 2021 releases ran it (recipe deepspeed-2021, planner/work/zero3_tensors.py): one
collective per parameter tensor, small tensors persistent and gathered once per step through a Python loop,
the replay of full recompute gathering again, per-rank views and copies around each tensor-list call, and
no overlap with compute. Exact counts on GPT-3 175B (Narayanan et al. 2021 Table 2's ZeRO-3 model)."""

from __future__ import annotations

import dataclasses

import pytest

from hwprofiles import load_hardware, load_model
from planner.bench.cells import row_release_recipe
from planner.cost.analytic import price_stages
from planner.pricing import Pricer
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from planner.work.ops import Collective
from planner.work.params import layer_parameter_counts
from planner.work.step import build_step
from planner.work.zero3_tensors import kept_tensors, layer_modules, rank_copies
from simulate import simulate_estimate

H = 12288  # GPT-3 175B width


@pytest.fixture(scope="module")
def gpt175():
    return load_model("gpt3-175b")


def _training(recipe: str, dp: int, recompute: str = "full", mb: int = 1) -> TrainingSpec:
    return TrainingSpec(seq_length=2048, global_batch_size=dp * mb, micro_batch_size=mb, precision="fp16",
                        recompute=recompute, recipe=recipe)


def _comm(model, recipe: str, dp: int, recompute: str = "full"):
    step = build_step(model, _training(recipe, dp, recompute), Layout(dp=dp, zero_stage=3))
    return {c.name: c for c in step.stages[0].per_microbatch_comm + step.stages[0].per_step_comm}


def test_a_gpt_layer_is_its_megatron_modules_in_forward_order(gpt175):
    mods = layer_modules(gpt175, Layout())
    assert mods == ((H, H), (3 * H * H, 3 * H), (H * H, H), (H, H), (4 * H * H, 4 * H), (4 * H * H, H))
    assert sum(sum(m) for m in mods) == layer_parameter_counts(gpt175).total


def test_only_the_fc2_of_a_175b_layer_stays_gathered_from_its_replay_to_its_backward(gpt175):
    # fc1's backward comes after fc2's replay and backward: 2 x 4h^2 = 1.2e9 elements > stage3_max_reuse_distance
    assert kept_tensors(layer_modules(gpt175, Layout()), 1e5, 1e9) == (4 * H * H, 1)
    assert kept_tensors(layer_modules(gpt175, Layout()), 1e5, 0.0) == (0.0, 0)


def test_a_small_layer_stays_gathered_whole():
    small = load_model("gpt3-1.3b")
    mods = layer_modules(small, Layout())
    big = [x for m in mods for x in m if x >= 1e5]
    assert kept_tensors(mods, 1e5, 1e9) == (sum(big), 4)


def test_ranks_holding_part_of_a_padded_tensor():
    assert rank_copies(12288, 1536) == 1536  # 8 elements each
    assert rank_copies(20480, 2240) == 2048  # 10 elements each (padded to 22,400), the last 192 ranks hold padding


def test_2021_calls_are_one_per_tensor_with_the_replay_gathering_again(gpt175):
    c = _comm(gpt175, "deepspeed-2021", 1536)
    # 4 Linear weights per layer and the token + position tables; biases and norms (< 1e5) persist
    assert c["params.allgather.fwd"].calls == 96 * 4 + 2
    assert c["params.allgather.recompute"].calls == 96 * 4
    assert c["params.allgather.bwd"].calls == 96 * 4 + 2 - 96  # fc2 kept from its replay
    assert c["grads.reduce_scatter"].calls == 96 * 12 + 4  # every tensor, the final norm's two included
    assert c["params.allgather.fwd"].staging_kernels == 1536 + 1  # a copy per rank and the zero fill
    assert c["grads.reduce_scatter"].staging_views == 2 * 1536  # a view and a narrow per rank
    persistent = c["params.persistent_allgather"]
    assert persistent.staging_host and persistent.staging_kernels == (96 * 8 + 2) * 1536 + 1536
    assert persistent.bytes == pytest.approx((96 * 13 * H + 2 * H) * 2)  # norms 4h, biases 3h + h + 4h + h


def test_without_recompute_no_replay_gathers(gpt175):
    c = _comm(gpt175, "deepspeed-2021", 64, recompute="none")
    assert "params.allgather.recompute" not in c
    assert c["params.allgather.bwd"].calls == 96 * 4 + 2 - 1  # only the last layer's fc2 stays for backward


def test_current_deepspeed_has_no_python_loops_and_fsdp_stays_per_block(gpt175):
    ds = _comm(gpt175, "deepspeed", 64)
    assert all(not (x.staging_kernels or x.staging_views) for x in ds.values())
    assert ds["params.allgather.fwd"].calls == 96 * 4 + 2
    fsdp = _comm(gpt175, "fsdp1", 64)
    assert fsdp["params.allgather.fwd"].calls == 97 and "params.allgather.recompute" not in fsdp


def test_staging_adds_views_before_the_call_and_overlaps_a_python_copy_loop():
    training = _training("deepspeed-2021", 8)
    pricer = Pricer(load_hardware("a100-sxm-80gb"), training, Layout(dp=8, zero_stage=3), 8)
    base = Collective("x", "all-gather", "dp", 1e6, "fwd", calls=4)
    views = dataclasses.replace(base, staging_views=10)
    assert pricer.collective_time(views) - pricer.collective_time(base) == pytest.approx(4 * 10 * pricer.host_view_s)
    loop = dataclasses.replace(base, staging_kernels=100, staging_views=300, staging_host=True)
    host = 300 * pricer.host_view_s + 100 * pricer.host_dispatch_s
    assert pricer.staging_time(loop) == pytest.approx(host)  # the host loop outlasts 100 tiny copies
    assert pricer.collective_time(loop) - pricer.collective_time(base) == pytest.approx(4 * host)


def test_per_rank_work_grows_with_the_ranks(gpt175):
    t = {}
    for dp in (384, 768):
        training = _training("deepspeed-2021", dp)
        pricer = Pricer(load_hardware("a100-sxm-80gb"), training, Layout(dp=dp, zero_stage=3), dp)
        rs = dataclasses.replace(_comm(gpt175, "deepspeed-2021", dp)["grads.reduce_scatter"], staging_bytes=0.0)
        t[dp] = rs.calls * pricer.staging_time(rs)  # 2 views and a copy kernel per rank per call
    assert t[768] == pytest.approx(2 * t[384], rel=1e-9)


def test_2021_collectives_are_not_hidden_under_compute(gpt175):
    hw = load_hardware("a100-sxm-80gb")
    exposed = {}
    for recipe in ("deepspeed-2021", "deepspeed"):
        training = _training(recipe, 384, mb=4)
        layout = Layout(dp=384, zero_stage=3)
        step = build_step(gpt175, training, layout)
        pricer = Pricer(hw, training, layout, 384)
        times = price_stages(step, pricer)[0]
        comm = sum(pricer.collective_time(c) for c in step.stages[0].per_microbatch_comm)
        exposed[recipe] = (times.zero3_exposed, comm)
    assert exposed["deepspeed-2021"][0] == pytest.approx(exposed["deepspeed-2021"][1], rel=1e-12)
    assert exposed["deepspeed"][0] < 0.5 * exposed["deepspeed"][1]  # prefetched under 4 sequences of compute


def test_the_simulator_prices_the_serialized_collectives_as_the_analytic_model():
    model = load_model("gpt3-1.3b")
    sc = Scenario(model=model, hardware=load_hardware("a100-sxm-80gb"), gpus=64,
                  training=_training("deepspeed-2021", 64, mb=2), layout=Layout(dp=64, zero_stage=3))
    analytic = sc.estimate()
    assert analytic.time.dp_comm_exposed > 0
    for overlap in (False, True):
        assert simulate_estimate(sc, overlap=overlap, contention=False).step_time_s == pytest.approx(
            analytic.step_time_s, rel=1e-6)


def test_bench_rows_naming_2021_deepspeed_take_the_2021_recipe():
    assert row_release_recipe("DeepSpeed ZeRO-3 (2021)") == "deepspeed-2021"
    assert row_release_recipe("DeepSpeed ZeRO-3") is None
    assert row_release_recipe("Megatron-DeepSpeed (3D)") is None
