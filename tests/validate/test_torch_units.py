"""In-process torch checks of the validator's pieces: model determinism, recompute, memory tracking."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.validate


def _spec(**kw):
    from validate.job import tiny_model

    return tiny_model(layers=2, hidden=32, heads=4, vocab=64, seq=16, **kw)


def test_same_seed_same_weights_and_spec_shapes():
    from validate.model import build_model

    a, b = build_model(_spec(), 16, seed=3), build_model(_spec(), 16, seed=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    assert a.layers["0"].feed_forward.w1.weight.shape == (128, 32)
    c = build_model(_spec(), 16, seed=4)
    assert not torch.equal(a.output.weight, c.output.weight)


def test_gqa_swiglu_rope_model_from_spec():
    from planner.specs import ModelSpec
    from validate.model import build_model

    spec = ModelSpec(name="t", num_layers=2, hidden_size=32, num_heads=4, num_kv_heads=2, ffn_hidden_size=48,
                     ffn_kind="swiglu", norm_kind="rmsnorm", position_kind="rope", linear_bias=False,
                     vocab_size=64)
    net = build_model(spec, 16, seed=0)
    assert net.layers["0"].attention.wk.weight.shape == (2 * 8, 32)
    assert net.layers["0"].feed_forward.w3.weight.shape == (48, 32)
    assert net.pos_embeddings is None and net.output.weight is net.tok_embeddings.weight
    assert net(torch.randint(0, 64, (2, 16))).shape == (2, 16, 64)


@pytest.mark.parametrize("mode", ["selective", "full"])
def test_recompute_leaves_gradients_unchanged(mode):
    from validate.model import build_model, loss_fn, make_batch

    x, y = make_batch(64, 2, 16, seed=1)
    grads = []
    for m in ("none", mode):
        net = build_model(_spec(), 16, seed=0)
        net.set_recompute(m)
        loss_fn(net(x), y).backward()
        grads.append([p.grad for p in net.parameters()])
    for g0, g1 in zip(*grads):
        torch.testing.assert_close(g0, g1, rtol=1e-6, atol=1e-7)


def test_memory_tracker_counts_live_storages_exactly():
    from validate.memory import TensorMemoryTracker

    lin = torch.nn.Linear(8, 16)
    x = torch.randn(4, 8)
    tracker = TensorMemoryTracker()
    with tracker:
        for t in (x, lin.weight, lin.bias):
            tracker.track(t)
        y = lin(x)
    # x 4*8*4 + weight 16*8*4 + bias 16*4 + output 4*16*4 bytes (the weight's transpose is a view)
    assert tracker.peak_bytes == 128 + 512 + 64 + 256
    del y


def test_memory_tracker_releases_freed_storages():
    from validate.memory import TensorMemoryTracker

    tracker = TensorMemoryTracker()
    with tracker:
        a = torch.ones(256)  # 1 KiB
        del a
        b = torch.ones(128)  # 512 B, after a was freed
    assert tracker.peak_bytes == 1024
    assert tracker.current_bytes == 512
    del b


def test_relative_error_uses_floor_for_zero_gradients():
    from validate.numerics import compare, relative_error

    want = {"big": torch.tensor([1.0, -2.0]), "tiny": torch.tensor([1e-9, 0.0])}
    got = {"big": torch.tensor([1.0, -2.0002]), "tiny": torch.tensor([-1e-9, 0.0])}
    assert relative_error(got["big"], want["big"]) == pytest.approx(1e-4, rel=1e-3)
    err, where = compare(got, want, floor_fraction=1e-2)
    assert where == "big" and err == pytest.approx(1e-4, rel=1e-3)  # tiny: 2e-9 / 0.02, negligible


def test_parameter_check_skips_undetermined_adam_directions_but_catches_a_missed_update():
    from validate.numerics import compare_params

    grads = {"w": torch.tensor([1e-2, 1e-9, -3e-3])}  # the middle one is zero within tolerance
    before = torch.tensor([1.0, 0.5, -0.5])
    want = {"w": before - 1e-3 * torch.sign(grads["w"])}  # Adam's first step: about lr * sign(g)
    noisy = {"w": want["w"] + torch.tensor([0.0, 8e-4, 0.0])}  # undetermined entry moved the other way
    assert compare_params(noisy, want, grads, 1e-4) == (0.0, "")
    missed = {"w": torch.tensor([1.0, want["w"][1].item(), want["w"][2].item()])}  # first entry not updated
    err, where = compare_params(missed, want, grads, 1e-4)
    assert where == "w" and err == pytest.approx(1e-3 / 1.0, rel=1e-3)
