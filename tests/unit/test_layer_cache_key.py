"""The per-layer op-set cache (planner.work.step._layer_work) is keyed by every layout field the layer
ops read: layouts that differ only in cp_kind, ep or etp get their own op sets."""

from __future__ import annotations

from hwprofiles import load_model
from planner.specs import Layout, TrainingSpec
from planner.work.context import RingAttention
from planner.work.ops import Collective
from planner.work.step import LAYER_FIELDS, build_step, layer_layout


def _names(step):
    return [op.name for op in step.stages[0].layer.forward]


def test_cp_kind_gets_its_own_op_set():
    model = load_model("llama3-8b")
    trn = TrainingSpec(global_batch_size=8, seq_length=16384)
    ring = build_step(model, trn, Layout(tp=1, cp=2, dp=4, cp_kind="ring"))
    gather = build_step(model, trn, Layout(tp=1, cp=2, dp=4, cp_kind="allgather"))
    assert any(isinstance(op, RingAttention) for op in ring.stages[0].layer.forward)
    assert not any(isinstance(op, RingAttention) for op in gather.stages[0].layer.forward)
    assert "attention.kv_allgather" in _names(gather) and "attention.kv_allgather" not in _names(ring)


def test_ep_and_etp_get_their_own_op_sets():
    model = load_model("qwen3-30b-a3b")
    trn = TrainingSpec(global_batch_size=64, seq_length=4096)

    def a2a(layout):
        ops = build_step(model, trn, layout).stages[0].layer.forward
        return [(op.axis, op.bytes) for op in ops if isinstance(op, Collective) and op.axis in ("ep", "etp")]

    one = a2a(Layout(tp=2, dp=4, ep=1, sequence_parallel=True))
    four = a2a(Layout(tp=2, dp=4, ep=4, sequence_parallel=True))
    etp1 = a2a(Layout(tp=2, dp=4, ep=4, etp=1, sequence_parallel=True))
    assert four and four != one
    assert etp1 != four


def test_layer_layout_keeps_exactly_the_layer_fields():
    lay = Layout(tp=2, pp=4, dp=8, cp=2, cp_kind="allgather", ep=4, etp=1, sequence_parallel=True)
    key = layer_layout(lay)
    assert all(getattr(key, f) == getattr(lay, f) for f in LAYER_FIELDS)
    assert key == layer_layout(lay.model_copy(update={"pp": 2, "dp": 16}))  # placement-only fields drop out
