"""Golden: the work description reproduces published formulas exactly.

- Korthikanti et al. 2022 (arXiv 2205.05198) activation memory per layer, Eqs. 1, 2, 4, 6 and Sec. 5.
- Narayanan et al. 2021 (arXiv 2104.04473) Eq. 3: hardware FLOPs of a step with full recompute.
- Korthikanti et al. 2022 Eq. 7: model FLOPs of a step.
"""

import pytest

from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.work.conventions import korthikanti_model_flops, megatron_eq3_flops
from planner.work.memory import layer_activation_bytes
from planner.work.step import build_step

GPT = ModelSpec(name="gpt", num_layers=8, hidden_size=1024, num_heads=16, ffn_hidden_size=4096,
                vocab_size=51200, linear_bias=True)


def _train(**kw):
    base = dict(seq_length=2048, global_batch_size=8, micro_batch_size=2, flash_attention=False, dropout=True)
    base.update(kw)
    return TrainingSpec(**base)


S, B, H, A = 2048, 2, 1024, 16


@pytest.mark.parametrize("t", [1, 2, 4, 8])
def test_korthikanti_eq2_tensor_parallel(t):
    got = layer_activation_bytes(GPT, _train(), Layout(tp=t))
    assert got == S * B * H * (10 + 24 / t + 5 * A * S / (H * t))


def test_korthikanti_eq1_no_parallelism():
    assert layer_activation_bytes(GPT, _train(), Layout()) == S * B * H * (34 + 5 * A * S / H)


@pytest.mark.parametrize("t", [2, 4, 8])
def test_korthikanti_eq4_sequence_parallel(t):
    got = layer_activation_bytes(GPT, _train(), Layout(tp=t, sequence_parallel=True))
    assert got == pytest.approx(S * B * H / t * (34 + 5 * A * S / H), rel=1e-12)


@pytest.mark.parametrize("t", [2, 8])
def test_korthikanti_eq6_selective_recompute(t):
    got = layer_activation_bytes(GPT, _train(recompute="selective"), Layout(tp=t, sequence_parallel=True))
    assert got == pytest.approx(S * B * H / t * 34, rel=1e-12)


def test_korthikanti_full_recompute_keeps_layer_input():
    assert layer_activation_bytes(GPT, _train(recompute="full"), Layout(tp=4)) == 2 * S * B * H


def _gpt_without_bias(**kw):
    return GPT.replace(linear_bias=False, **kw)


@pytest.mark.parametrize("layout", [Layout(), Layout(tp=4), Layout(tp=2, pp=4), Layout(tp=8, pp=2, dp=2)])
def test_megatron_eq3_equals_hardware_flops_with_full_recompute(layout):
    model = _gpt_without_bias()
    tr = _train(recompute="full", global_batch_size=16)
    step = build_step(model, tr, layout)
    expected = megatron_eq3_flops(16, S, model.num_layers, H, model.vocab_size)
    assert step.hardware_flops_per_step == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("layout", [Layout(), Layout(tp=4, pp=2), Layout(pp=8, dp=2)])
def test_korthikanti_eq7_equals_model_flops(layout):
    model = _gpt_without_bias()
    tr = _train(global_batch_size=16)
    step = build_step(model, tr, layout)
    expected = korthikanti_model_flops(16, S, model.num_layers, H, model.vocab_size)
    assert step.model_flops_per_step == pytest.approx(expected, rel=1e-12)
