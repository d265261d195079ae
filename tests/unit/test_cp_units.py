"""planner.work.context and its pricing: ring transfers exposed only beyond their block, defaults per
recipe, refusals, cp = 1 unchanged, the --cp-kind option."""

from __future__ import annotations

import json

import pytest

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.pricing import Pricer
from planner.specs import Layout, TrainingSpec, check_layout
from planner.work.context import RingAttention, attention_core, resolve_cp_kind
from planner.work.layer import layer_forward
from planner.work.ops import Attention


@pytest.fixture(scope="module")
def llama():
    return load_model("llama3-8b"), load_hardware("h100-sxm-80gb")


def _ring(seq: int, cp: int) -> RingAttention:
    (op,) = attention_core(batch=1, heads_local=4, kv_heads_local=1, head_dim=128, seq_local=seq // cp, cp=cp,
                           kind="ring", phase="fwd", fused=True)
    return op


@pytest.mark.parametrize("seq", [4096, 131072])
def test_ring_send_is_exposed_only_beyond_its_block(llama, seq):
    model, hw = llama
    trn = TrainingSpec(seq_length=seq, global_batch_size=8)
    lay = Layout(tp=8, cp=8)
    pricer = Pricer(hw, trn, lay, 64)
    for op in (_ring(seq, 8), _ring(seq, 8).backward()):
        compute, exposed = pricer.ring_attention_time(op)
        block = pricer.compute.attention_time(op.block)
        corr = pricer.compute.memory_time(op.correction)
        send = pricer.collectives.p2p_time(op.transfer_bytes, pricer.groups["cp"])
        tail = pricer.collectives.p2p_time(op.tail_bytes, pricer.groups["cp"]) if op.tail_bytes else 0.0
        assert compute == pytest.approx(8 * block + 7 * corr)
        assert exposed == pytest.approx(7 * max(0.0, send - block - corr) + tail)
    forward_exposed = pricer.ring_attention_time(_ring(seq, 8))[1]
    assert (forward_exposed > 0) == (seq == 4096)  # 512-token blocks cannot hide an inter-node K/V send


def test_cp1_keeps_one_causal_attention(llama):
    model, _ = llama
    ops = layer_forward(model, TrainingSpec(seq_length=8192, global_batch_size=8), Layout(tp=2))
    cores = [op for op in ops if isinstance(op, (Attention, RingAttention))]
    assert len(cores) == 1 and isinstance(cores[0], Attention) and cores[0].seq_q == cores[0].seq_k == 8192


def test_default_exchange_follows_the_recipe():
    assert resolve_cp_kind(Layout(cp=2), TrainingSpec(global_batch_size=2)) == "ring"
    assert resolve_cp_kind(Layout(cp=2), TrainingSpec(global_batch_size=2, recipe="fsdp")) == "allgather"
    assert resolve_cp_kind(Layout(cp=2, cp_kind="allgather"), TrainingSpec(global_batch_size=2)) == "allgather"
    for recipe, kind in (("megatron-core", "ring"), ("deepspeed", "ring"), ("torchtitan", "allgather"),
                         ("torch-amp", "allgather")):
        assert resolve_cp_kind(Layout(cp=2), TrainingSpec(global_batch_size=2, recipe=recipe)) == kind


def test_cp_needs_fused_attention_and_2cp_chunks(llama):
    model, _ = llama
    with pytest.raises(SpecError, match="flash_attention"):
        check_layout(Layout(cp=2), model, TrainingSpec(seq_length=8192, global_batch_size=2, flash_attention=False), 2)
    with pytest.raises(SpecError, match=r"2 \* cp"):
        check_layout(Layout(cp=4), model, TrainingSpec(seq_length=8196, global_batch_size=2), 4)


def test_cli_cp_kind(run_cli):
    args = ["estimate", "-m", "llama3-8b", "-H", "h100-sxm-80gb", "-g", "16", "--tp", "8", "--cp", "2",
            "--seq", "32768", "--global-batch", "8", "--json"]
    ring = json.loads(run_cli(*args).stdout)
    gather = json.loads(run_cli(*args, "--cp-kind", "allgather").stdout)
    assert gather["layout"]["cp_kind"] == "allgather" and ring["layout"]["cp_kind"] is None
    assert ring["time"]["cp_comm"] != gather["time"]["cp_comm"]
    bad = run_cli(*args, "--cp-kind", "ulysses")
    assert bad.exit_code == 2
    assert "--cp-kind" in bad.stderr and "ring, allgather" in bad.stderr


def test_validator_layout_keys():
    from validate.job import layout_for_nproc, layout_text, parse_layout

    lay = parse_layout("cp=2")
    assert (lay.cp, lay.cp_kind) == (2, "ring")
    assert parse_layout("cp=2,cp_kind=allgather").cp_kind == "allgather"
    assert layout_text(lay) == "tp=1,pp=1,dp=1,cp=2,cp_kind=ring"
    assert layout_for_nproc("cp=2", 4).dp == 2
    with pytest.raises(SpecError, match="cp_kind"):
        parse_layout("cp=2,cp_kind=ulysses")


def test_layer_op_cache_keeps_the_cp_exchange(llama):
    """build_step caches each layer's ops (planner.work.step._layer_work): a ring layout built first must
    not hand its ring core to an all-gather layout of the same model, training, tp, cp and sp (or back)."""
    from planner.work.ops import Collective
    from planner.work.step import build_step

    model, _ = llama
    trn = TrainingSpec(seq_length=32768, global_batch_size=8)

    def cores(kind):
        layer = build_step(model, trn, Layout(tp=8, cp=2, cp_kind=kind)).stages[0].layer
        return ([type(op) for op in layer.forward if isinstance(op, (Attention, RingAttention))],
                [op.name for op in layer.forward if isinstance(op, Collective) and op.axis == "cp"])

    for _ in range(2):  # the second round reads the cache
        assert cores("ring") == ([RingAttention], [])
        assert cores("allgather") == ([Attention], ["attention.kv_allgather"])
        assert cores(None) == ([RingAttention], [])  # the megatron-lm recipe's default
