"""Property tests of spec validation: valid values are accepted, invalid ones rejected with the arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from planner.errors import SpecError
from planner.specs import Layout, ModelSpec, NodeSpec, TrainingSpec, check_layout

settings.register_profile("specs", max_examples=60, deadline=None)
settings.load_profile("specs")

degree = st.integers(min_value=1, max_value=64)
bad_int = st.integers(max_value=0)


def _model(heads: int = 16, kv: int | None = None, layers: int = 32, ffn: int = 4096) -> ModelSpec:
    return ModelSpec(name="m", num_layers=layers, hidden_size=heads * 64, num_heads=heads, num_kv_heads=kv,
                     ffn_hidden_size=ffn, vocab_size=32000)


# -- Layout -----------------------------------------------------------------------------------------

@given(tp=degree, pp=degree, dp=degree, cp=degree)
def test_positive_degrees_are_accepted_and_multiply_to_gpus(tp, pp, dp, cp):
    layout = Layout(tp=tp, pp=pp, dp=dp, cp=cp)
    assert layout.gpus == tp * pp * dp * cp


@given(field=st.sampled_from(["tp", "pp", "dp", "vpp", "cp", "ep"]), value=bad_int)
def test_non_positive_degrees_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        Layout(**{field: value})


@given(vpp=st.integers(min_value=2, max_value=8), schedule=st.sampled_from(["gpipe", "1f1b", "zb-h1"]))
def test_vpp_needs_the_interleaved_schedule(vpp, schedule):
    with pytest.raises(ValidationError, match=rf"vpp\({vpp}\) > 1 needs schedule"):
        Layout(pp=2, vpp=vpp, schedule=schedule)


@given(dp=degree, shard=degree)
def test_dp_shard_must_divide_dp(dp, shard):
    if dp % shard:
        with pytest.raises(ValidationError, match=rf"dp\({dp}\) % dp_shard\({shard}\) = {dp % shard} != 0"):
            Layout(dp=dp, dp_shard=shard)
    else:
        assert Layout(dp=dp, dp_shard=shard).shard_degree == shard


@given(tp=degree, pp=degree, dp=degree, cp=degree, gpus=st.integers(min_value=1, max_value=10**6))
def test_check_layout_shows_the_gpu_arithmetic(tp, pp, dp, cp, gpus):
    layout = Layout(tp=tp, pp=pp, dp=dp, cp=cp)
    product = tp * pp * dp * cp
    if product == gpus:
        return
    training = TrainingSpec(global_batch_size=dp, seq_length=4096)
    with pytest.raises(SpecError) as exc:
        check_layout(layout, _model(), training, gpus)
    assert f"tp({tp}) * pp({pp}) * dp({dp}) * cp({cp}) = {product} != gpus({gpus})" in str(exc.value)


@given(tp=st.sampled_from([1, 2, 4, 8, 16]), pp=st.sampled_from([1, 2, 4, 8]), dp=degree,
       micro=st.integers(min_value=1, max_value=4), accum=st.integers(min_value=1, max_value=8))
def test_consistent_layouts_pass_check_layout(tp, pp, dp, micro, accum):
    layout = Layout(tp=tp, pp=pp, dp=dp)
    training = TrainingSpec(global_batch_size=dp * micro * accum, micro_batch_size=micro)
    check_layout(layout, _model(heads=16, layers=32, ffn=4096), training, tp * pp * dp)


@given(tp=st.sampled_from([3, 5, 6, 7, 12]))
def test_heads_not_divisible_by_tp_show_the_remainder(tp):
    with pytest.raises(SpecError, match=rf"num_heads\(16\) % tp\({tp}\) = {16 % tp} != 0"):
        check_layout(Layout(tp=tp), _model(heads=16), TrainingSpec(global_batch_size=8), tp)


@given(dp=degree, micro=st.integers(min_value=1, max_value=8), gbs=st.integers(min_value=1, max_value=4096))
def test_global_batch_must_split_over_dp_micro_batches(dp, micro, gbs):
    if gbs % micro:
        return
    training = TrainingSpec(global_batch_size=gbs, micro_batch_size=micro)
    if gbs % (micro * dp):
        with pytest.raises(SpecError, match=rf"global_batch\({gbs}\) % \(micro_batch\({micro}\) \* dp\({dp}\)\)"):
            check_layout(Layout(dp=dp), _model(), training, dp)
    else:
        check_layout(Layout(dp=dp), _model(), training, dp)


# -- TrainingSpec -----------------------------------------------------------------------------------

@given(gbs=st.integers(min_value=1, max_value=10**5), micro=st.integers(min_value=1, max_value=64),
       seq=st.integers(min_value=1, max_value=10**5))
def test_training_batch_divisibility(gbs, micro, seq):
    if gbs % micro:
        with pytest.raises(ValidationError, match=rf"global_batch_size\({gbs}\) % micro_batch_size\({micro}\)"):
            TrainingSpec(global_batch_size=gbs, micro_batch_size=micro, seq_length=seq)
    else:
        spec = TrainingSpec(global_batch_size=gbs, micro_batch_size=micro, seq_length=seq)
        assert spec.tokens_per_step == gbs * seq


@given(field=st.sampled_from(["global_batch_size", "micro_batch_size", "seq_length"]), value=bad_int)
def test_training_rejects_non_positive_sizes(field, value):
    args = {"global_batch_size": 8, field: value}
    with pytest.raises(ValidationError, match=field):
        TrainingSpec(**args)


@given(value=st.text(min_size=1, max_size=8).filter(lambda s: s not in ("bf16", "fp16", "fp8")))
def test_training_rejects_unknown_precision(value):
    with pytest.raises(ValidationError, match="precision"):
        TrainingSpec(global_batch_size=8, precision=value)


# -- ModelSpec --------------------------------------------------------------------------------------

@given(heads=st.integers(min_value=1, max_value=128), kv=st.integers(min_value=1, max_value=128))
def test_kv_heads_must_divide_heads(heads, kv):
    if heads % kv:
        with pytest.raises(ValidationError, match=rf"num_heads\({heads}\) % num_kv_heads\({kv}\) = {heads % kv}"):
            _model(heads=heads, kv=kv)
    else:
        assert _model(heads=heads, kv=kv).kv_heads == kv


@given(field=st.sampled_from(["num_layers", "hidden_size", "num_heads", "ffn_hidden_size", "vocab_size"]),
       value=bad_int)
def test_model_rejects_non_positive_sizes(field, value):
    args = _model().model_dump()
    args[field] = value
    with pytest.raises(ValidationError, match=field):
        ModelSpec(**args)


def test_model_rejects_unknown_keys():
    with pytest.raises(ValidationError, match="num_layer"):
        ModelSpec(**{**_model().model_dump(), "num_layer": 3})


# -- NodeSpec ---------------------------------------------------------------------------------------

def _node_args(n: int, bw: float = 100.0) -> dict:
    return {
        "devices_per_node": n,
        "links": [{"a": f"gpu{i}", "b": "sw", "bandwidth_gbps": bw} for i in range(n)],
        "nics": [{"name": "nic0", "bandwidth_gbps": 25.0, "devices": list(range(n))}],
        "collective_efficiency": 0.8,
        "collective_latency_us": 2.0,
    }


@given(n=st.integers(min_value=1, max_value=16), bw=st.floats(min_value=0.1, max_value=1e4))
def test_valid_nodes_are_accepted(n, bw):
    node = NodeSpec(**_node_args(n, bw))
    assert node.nic_bandwidth_gbps == 25.0


@given(n=st.integers(min_value=1, max_value=16), bw=st.floats(max_value=0.0, allow_nan=False))
def test_non_positive_link_bandwidth_is_rejected(n, bw):
    with pytest.raises(ValidationError, match="bandwidth_gbps"):
        NodeSpec(**_node_args(n, bw))


@given(n=st.integers(min_value=1, max_value=16), extra=st.integers(min_value=0, max_value=16))
def test_links_to_missing_devices_name_the_allowed_range(n, extra):
    args = _node_args(n)
    args["links"].append({"a": f"gpu{n + extra}", "b": "sw", "bandwidth_gbps": 1.0})
    with pytest.raises(ValidationError, match=rf"gpu{n + extra} but devices_per_node is {n} \(allowed gpu0..gpu{n - 1}\)"):
        NodeSpec(**args)


@given(n=st.integers(min_value=2, max_value=16), data=st.data())
def test_every_device_needs_a_nic(n, data):
    missing = data.draw(st.integers(min_value=0, max_value=n - 1))
    args = _node_args(n)
    args["nics"][0]["devices"] = [d for d in range(n) if d != missing]
    with pytest.raises(ValidationError, match=rf"devices \[{missing}\] are served by no NIC"):
        NodeSpec(**args)


@given(eff=st.one_of(st.floats(max_value=0.0, allow_nan=False), st.floats(min_value=1.2001, max_value=1e3)))
def test_collective_efficiency_bounds(eff):
    with pytest.raises(ValidationError, match="collective_efficiency"):
        NodeSpec(**{**_node_args(2), "collective_efficiency": eff})
