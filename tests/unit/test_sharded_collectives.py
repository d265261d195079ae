"""ZeRO-3 / FSDP communication is issued one sharded unit (layer) at a time: the work description
says how many calls, the pricer charges the latency term once per call (issue 7: the validator's
FSDP2 jobs issue one all-gather / reduce-scatter per layer, and the model now prices the same)."""

import dataclasses

import pytest

from hwprofiles import load_hardware
from planner.pricing import Pricer
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.work.step import build_step

GPT = ModelSpec(name="gpt", num_layers=8, hidden_size=1024, num_heads=16, ffn_hidden_size=4096, vocab_size=51200)
TRAIN = TrainingSpec(seq_length=2048, global_batch_size=32, micro_batch_size=1)


@pytest.mark.parametrize(("pp", "expected"), [(1, [9]), (2, [5, 5]), (4, [3, 2, 2, 3])])
def test_zero3_calls_are_one_per_layer_plus_the_embedding_or_head_unit(pp, expected):
    step = build_step(GPT, TRAIN, Layout(pp=pp, dp=4, zero_stage=3))
    for stage, calls in zip(step.stages, expected, strict=True):
        assert {c.calls for c in stage.per_microbatch_comm} == {calls}


def test_zero1_reduction_stays_one_call():
    step = build_step(GPT, TRAIN, Layout(dp=4, zero_stage=1))
    assert {c.calls for c in step.stages[0].per_step_comm} == {1}


def test_each_call_pays_the_latency_term():
    layout = Layout(dp=16, zero_stage=3)
    pricer = Pricer(load_hardware("h100-sxm-80gb"), TRAIN, layout, 16)
    op = build_step(GPT, TRAIN, layout).stages[0].per_microbatch_comm[0]
    group = pricer.groups[op.axis]
    one_piece = pricer.collectives.time(op.kind, op.bytes / op.calls, group)
    assert pricer.collective_time(op) == pytest.approx(op.calls * one_piece, rel=1e-12)
    assert pricer.collective_time(op) > pricer.collective_time(dataclasses.replace(op, calls=1))
