"""Golden: ZeRO-Offload's host traffic and memory split for one step (Ren et al. 2021,
"ZeRO-Offload: Democratizing Billion-Scale Model Training", arXiv 2101.06840, Sec. 4.1 and Fig. 4).

Single GPU, mixed precision (fp16 parameters and gradients), Adam, one micro-batch: the GPU keeps
the fp16 parameters (2M bytes for M parameters); fp16 gradients (2M) go to the CPU during backward;
the CPU holds them plus fp32 parameters, momentum and variance (12M), runs Adam, and sends the
updated fp16 parameters back (2M). Communication over PCIe: 4M bytes per step (2M each way).
Exact figures from the paper, so the tolerance is float rounding only.
"""

from __future__ import annotations

import pytest

from hwprofiles import load_model
from planner.specs import Layout, TrainingSpec
from planner.work.params import parameter_counts
from planner.work.step import build_step


@pytest.mark.parametrize("model_name", ["gpt3-1.3b", "gpt3-13b"])
def test_zero_offload_one_step_host_traffic_is_4m(model_name):
    model = load_model(model_name)
    training = TrainingSpec(global_batch_size=1, seq_length=1024, precision="fp16", recipe="deepspeed",
                            offload={"optimizer": True, "gradients": True})
    step = build_step(model, training, Layout())
    stage = step.stages[0]
    m = stage.params
    assert m == pytest.approx(parameter_counts(model).total, rel=1e-9)
    down, up = stage.offload.per_step_bytes(step.micro_batches)
    assert step.micro_batches == 1
    assert down == pytest.approx(2 * m) and up == pytest.approx(2 * m)
    assert down + up == pytest.approx(4 * m)  # the paper's 4M
    assert stage.offload.host_bytes == pytest.approx(14 * m)  # g16 + p32 + m32 + v32 on the CPU
    assert stage.weights_bytes == pytest.approx(2 * m)  # p16 on the GPU
    assert stage.grads_bytes == 0 and stage.optimizer_bytes == 0
    assert stage.offload.cpu_optimizer_params == pytest.approx(m) and stage.optimizer_params == 0
