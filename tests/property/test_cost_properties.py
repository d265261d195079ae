"""Property tests of the analytic cost model (hypothesis)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwprofiles import load_hardware
from planner.cost import estimate
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.work.step import build_step

MODEL = ModelSpec(name="p", num_layers=16, hidden_size=2048, num_heads=16, ffn_hidden_size=8192, vocab_size=32000)
HW = load_hardware("h100-sxm-80gb")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

degrees = st.sampled_from([1, 2, 4, 8])
pps = st.sampled_from([1, 2, 4, 8])
recomputes = st.sampled_from(["none", "selective", "full"])
recipes = st.sampled_from(["megatron", "deepspeed", "torch-amp"])


def _train(recompute="none", recipe="megatron", gbs=64):
    return TrainingSpec(seq_length=1024, global_batch_size=gbs, micro_batch_size=1, recompute=recompute, recipe=recipe)


def _state_bytes(est):
    s = est.worst_stage.breakdown
    return s.params + s.grads + s.optimizer


@SETTINGS
@given(tp=degrees, pp=pps, rc=recomputes, recipe=recipes)
def test_memory_never_increases_with_tp(tp, pp, rc, recipe):
    if tp == 8:
        return
    tr = _train(rc, recipe)
    lo = estimate(MODEL, HW, tr, Layout(tp=tp, pp=pp, dp=1))
    hi = estimate(MODEL, HW, tr, Layout(tp=tp * 2, pp=pp, dp=1))
    assert hi.peak_memory_bytes <= lo.peak_memory_bytes + 1


@SETTINGS
@given(tp=degrees, pp=st.sampled_from([1, 2, 4]), rc=recomputes, recipe=recipes)
def test_weights_never_increase_with_pp(tp, pp, rc, recipe):
    tr = _train(rc, recipe)
    lo = estimate(MODEL, HW, tr, Layout(tp=tp, pp=pp, dp=1))
    hi = estimate(MODEL, HW, tr, Layout(tp=tp, pp=pp * 2, dp=1))
    assert _state_bytes(hi) <= _state_bytes(lo) + 1


@SETTINGS
@given(zero=st.sampled_from([0, 1, 2]), dp=st.sampled_from([2, 4, 8]), rc=recomputes, recipe=recipes)
def test_memory_never_increases_with_zero_stage(zero, dp, rc, recipe):
    tr = _train(rc, recipe)
    lo = estimate(MODEL, HW, tr, Layout(dp=dp, zero_stage=zero))
    hi = estimate(MODEL, HW, tr, Layout(dp=dp, zero_stage=zero + 1))
    assert hi.peak_memory_bytes <= lo.peak_memory_bytes + 1


@SETTINGS
@given(tp=degrees, pp=pps, dp=st.sampled_from([1, 2, 4]), rc=recomputes)
def test_total_model_flops_do_not_depend_on_layout(tp, pp, dp, rc):
    tr = _train(rc, gbs=64)
    ref = build_step(MODEL, tr, Layout()).model_flops_per_step
    got = build_step(MODEL, tr, Layout(tp=tp, pp=pp, dp=dp)).model_flops_per_step
    assert abs(got / ref - 1) < 1e-12


@SETTINGS
@given(rc=recomputes, recipe=recipes, flash=st.booleans())
def test_no_communication_when_every_degree_is_one(rc, recipe, flash):
    tr = _train(rc, recipe).replace(flash_attention=flash)
    est = estimate(MODEL, HW, tr, Layout())
    assert est.time.tp_comm == 0 and est.time.pp_comm == 0 and est.time.dp_comm_exposed == 0
    assert est.time.pp_bubble == 0


@SETTINGS
@given(tp=degrees, pp=pps, dp=st.sampled_from([1, 2, 8]), factor=st.sampled_from([1.1, 1.5, 2.0]),
       field=st.sampled_from(["peak", "hbm", "nic", "link"]))
def test_faster_hardware_never_gives_a_slower_step(tp, pp, dp, factor, field):
    data = HW.model_dump()
    if field == "peak":
        data["device"]["peak_tflops"] = {k: (v * factor if v else v) for k, v in data["device"]["peak_tflops"].items()}
    elif field == "hbm":
        data["device"]["hbm_bandwidth_gbps"] *= factor
    elif field == "nic":
        for nic in data["node"]["nics"]:
            nic["bandwidth_gbps"] *= factor
    else:
        for link in data["node"]["links"]:
            link["bandwidth_gbps"] *= factor
    fast = type(HW).model_validate(data)
    tr = _train()
    lay = Layout(tp=tp, pp=pp, dp=dp)
    assert estimate(MODEL, fast, tr, lay).step_time_s <= estimate(MODEL, HW, tr, lay).step_time_s * (1 + 1e-9)


def test_layout_that_does_not_fit_names_stage_and_overflow():
    big = MODEL.replace(num_layers=96, hidden_size=12288, num_heads=96, ffn_hidden_size=49152)
    est = estimate(big, HW, _train(), Layout(pp=2))
    assert not est.fits
    worst = est.worst_stage
    assert not worst.fits and worst.overflow_bytes > 0
    assert worst.overflow_bytes == worst.peak_bytes - worst.capacity_bytes
