"""How long the pipeline schedule keeps each micro-batch's stage output (recipe ``pipeline_outputs_kept``), by the
numbers of the mechanism: torch.distributed.pipelining's fwd_cache and output_chunks (planner.work.memory
``pipeline_output_bytes``). Expected bytes are computed here from the tensor shapes, not read back from paraplan."""

from __future__ import annotations

import pytest

from hwprofiles import load_model
from hwprofiles.recipe_loader import load_recipe
from planner.specs import Layout, TrainingSpec
from planner.work.memory import pipeline_output_bytes
from planner.work.step_bytes import step_bytes

L405 = "llama3.1-405b"
LAYOUT = Layout(tp=8, pp=8, dp=8, zero_stage=3, sequence_parallel=True)


def _training(recipe: str) -> TrainingSpec:
    return TrainingSpec(global_batch_size=256, micro_batch_size=4, seq_length=8192, recipe=recipe, recompute="full")


def test_each_torchtitan_release_keeps_what_its_torch_kept():
    assert load_recipe("torchtitan").pipeline_outputs_kept == "step-all"  # torch 1963fc8, before #153383
    assert load_recipe("torchtitan-2506").pipeline_outputs_kept == "step-last"  # after #153383, before #1922
    assert load_recipe("torchtitan-0.3").pipeline_outputs_kept == "backward"  # return_outputs=False
    assert load_recipe("megatron-core").pipeline_outputs_kept == "none"  # deallocate_output_tensor


def test_the_last_stage_keeps_every_micro_batchs_16_bit_logits_to_the_step_end():
    model = load_model(L405)
    logits = 4 * 8192 * (model.vocab_size // 8) * 2  # mb x seq tokens x vocabulary shard x bf16
    sent = 1e6
    for recipe, held in (("torchtitan", 8 * logits), ("torchtitan-2506", 8 * logits), ("torchtitan-0.3", logits)):
        assert pipeline_output_bytes(model, _training(recipe), LAYOUT, True, sent, 8) == pytest.approx((0.0, held))


def test_a_middle_stage_keeps_its_sent_activation_per_micro_batch_in_flight_or_all_of_them():
    model = load_model(L405)
    sent = 4 * 8192 * 16384 * 2 / 8  # what it sends with sequence parallelism
    assert pipeline_output_bytes(model, _training("torchtitan"), LAYOUT, False, sent, 8) == (0.0, 8 * sent)
    assert pipeline_output_bytes(model, _training("torchtitan-2506"), LAYOUT, False, sent, 8) == (sent, 0.0)
    assert pipeline_output_bytes(model, _training("megatron-core"), LAYOUT, False, sent, 8) == (0.0, 0.0)


def test_without_pipelining_nothing_is_kept():
    one = Layout(tp=8, pp=1, dp=64, zero_stage=3, sequence_parallel=True)
    assert pipeline_output_bytes(load_model(L405), _training("torchtitan"), one, True, 1e6, 8) == (0.0, 0.0)


def test_the_kept_logits_sit_in_the_last_stages_buffers():
    model = load_model(L405)
    logits = 4 * 8192 * (model.vocab_size // 8) * 2
    records = {rec.index: rec for rec, _ in step_bytes(model, _training("torchtitan-2506"), LAYOUT).runs}
    first, last = records[0], records[max(records)]
    # both hold the same gradient buckets and pipeline buffers; the last stage adds its logits, every micro-batch's
    # (and the first stage, under step-last, keeps its sent activation only while its micro-batch is in flight)
    assert last.buffer_bytes - first.buffer_bytes == pytest.approx(8 * logits, rel=0.01)


def test_estimate_names_the_kept_outputs():
    from hwprofiles import load_hardware
    from planner.cost import estimate

    model = load_model(L405)
    logits = 4 * 8192 * (model.vocab_size // 8) * 2
    est = estimate(model, load_hardware("h100-sxm-96gb-500w"), _training("torchtitan"), LAYOUT, LAYOUT.gpus,
                   breakdown=True)
    kept = est.mechanisms.pipeline_outputs
    assert kept.kept == "step-all"
    assert kept.held_bytes_last_stage == pytest.approx(8 * logits)
    assert kept.held_bytes_first_stage == pytest.approx(8 * 4 * 8192 * 16384 * 2 / 8)  # its sent activations
