"""Per-class HBM fractions read from the H200 microbenchmark (planner.pricing.kernel_fit): the backward rows carry
the benchmark's own gradient handling of their leaf inputs, which the residual_add row measures alone."""

from __future__ import annotations

import pytest

from planner.pricing.kernel_fit import fit_kernel_classes, grad_handling_s

PEAK_GBPS = 1000.0
T, H = 1024, 1024
N = T * H


def _bench(handling_s: float) -> dict:
    """A synthetic row: every kernel at half of peak, each backward plus ``handling_s`` per (T, h) leaf input."""
    rate = 0.5 * PEAK_GBPS * 1e9

    def op(fwd_bytes, bwd_bytes, inputs):
        return {"s_fwd": fwd_bytes * N / rate, "s_fwdbwd": (fwd_bytes + bwd_bytes) * N / rate + inputs * handling_s}

    ops = {"gelu": op(4, 6, 1), "layernorm": op(4, 6, 1), "swiglu": op(6, 10, 2), "dropout": op(5, 5, 1),
           "residual_add": {"s_fwd": 6 * N / rate, "s_fwdbwd": 6 * N / rate + 2 * handling_s}}
    return {"elementwise": [{"T": T, "h": H, "ops": ops}]}


def test_the_residual_add_backward_is_two_inputs_of_gradient_handling():
    assert grad_handling_s(_bench(1e-3)["elementwise"][0]["ops"]) == pytest.approx(1e-3)
    assert grad_handling_s({"gelu": {"s_fwd": 1.0, "s_fwdbwd": 2.0}}) == 0.0  # no residual_add row: nothing taken


@pytest.mark.parametrize("handling", [0.0, 1e-4, 1e-3])
def test_backward_classes_come_out_at_the_kernels_own_rate(handling):
    fit = fit_kernel_classes(_bench(handling), PEAK_GBPS)
    for cls in ("activation_fwd", "activation_bwd", "norm_fwd", "norm_bwd", "swiglu_fwd", "swiglu_bwd",
                "dropout_fwd", "dropout_bwd"):
        assert fit[cls] == pytest.approx(0.5, abs=1e-3), cls
