"""A real expert-parallel gloo job on CPU: a small MoE GPT (4 experts, top-2) with its experts split over
2 ranks by all_to_all; numerics against the single-process reference, each rank holding only its own
experts, and the measured all-to-all calls of one step equal to the priced ones."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


@pytest.mark.validate
def test_ep2_job_numerics_and_calls(tmp_path, validate_run):
    from validate.job import JobSpec
    from validate.report import predicted_collective_calls

    out = validate_run(tmp_path / "ep.json", "--layout", "ep=2", "--steps", "1", "--warmup", "1",
                       "--ffn-kind", "swiglu")
    job = json.loads(out.read_text())["jobs"][0]
    assert job["layout"] == "tp=1,pp=1,dp=2,ep=2" and job["numerics_passed"] is True
    checks = [r["numerics"] for r in job["ranks"]]
    assert all(c["grad_error"] <= c["tolerance"] for c in checks)
    spec = JobSpec.model_validate(job["job"])
    priced = predicted_collective_calls(spec)
    measured = job["ranks"][0]["collective_calls"]
    # 4 layers x 2 micro-batches x (dispatch + combine, forward and backward)
    assert measured["all-to-all"] == priced["all-to-all"] == 4 * 2 * 4
    # one bucketed non-expert gradient all-reduce, plus the validator's loss all-reduce (not priced)
    assert measured["all-reduce"] == priced["all-reduce"] + 1


def test_moe_layer_matches_a_dense_loop():
    """Single process: the MoE FFN equals a per-token loop over its top-k experts."""
    import torch

    from validate.job import tiny_model
    from validate.moe import MoEFeedForward, route

    spec = tiny_model(hidden=16, heads=2, ffn=32, ffn_kind="swiglu").replace(num_experts=4, moe_top_k=2,
                                                                             expert_ffn_hidden_size=8)
    torch.manual_seed(0)
    layer = MoEFeedForward(spec)
    x = torch.randn(2, 5, 16)
    got = layer(x)
    flat = x.reshape(-1, 16)
    idx, w = route(layer.router(flat), 2)
    want = torch.stack([sum(w[t, j] * layer.experts[str(int(idx[t, j]))](flat[t]) for j in range(2))
                        for t in range(flat.shape[0])])
    assert torch.allclose(got.reshape(-1, 16), want, atol=1e-6)
