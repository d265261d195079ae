"""Property tests (hypothesis) of offload, fast domains and TP overlap styles."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwprofiles import load_hardware
from planner.cost import estimate
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.work.offload import OFFLOAD_LEVELS, check_offload

MODEL = ModelSpec(name="p", num_layers=16, hidden_size=2048, num_heads=16, ffn_hidden_size=8192, vocab_size=32000)
HW = load_hardware("h100-sxm-80gb")
NVL = load_hardware("gb200-nvl72")
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(level=st.sampled_from(range(len(OFFLOAD_LEVELS))), dp=st.sampled_from([1, 2, 8]),
       zero=st.sampled_from([0, 1, 3]), rc=st.sampled_from(["none", "full"]))
def test_offload_never_adds_hbm_and_never_speeds_up(level, dp, zero, rc):
    tr = TrainingSpec(seq_length=1024, global_batch_size=16, recompute=rc, recipe="deepspeed")
    lay = Layout(dp=dp, zero_stage=zero if dp > 1 else 0)
    off = tr.replace(offload=OFFLOAD_LEVELS[level].model_dump())
    try:
        check_offload(off, lay)
    except ValueError:
        return
    base, moved = estimate(MODEL, HW, tr, lay), estimate(MODEL, HW, off, lay)
    assert moved.peak_memory_bytes <= base.peak_memory_bytes + 1
    # the CPU Adam is slower than the GPU's and copies only add time
    assert moved.step_time_s >= base.step_time_s - 1e-12


@SETTINGS
@given(tp=st.sampled_from([1, 2, 4, 8]), pp=st.sampled_from([1, 2, 3, 9]), order=st.sampled_from(
    ["tp-cp-pp-dp", "tp-cp-dp-pp"]))
def test_a_larger_fast_domain_never_slows_a_step(tp, pp, order):
    gpus = 144
    dp = gpus // (tp * pp)
    tr = TrainingSpec(seq_length=1024, global_batch_size=144)
    lay = Layout(tp=tp, pp=pp, dp=dp, sequence_parallel=tp > 1, rank_order=order)
    tray = NVL.model_copy(update={"node": NVL.node.model_copy(update={"fast_domain_nodes": 1})})
    assert estimate(MODEL, NVL, tr, lay, gpus).step_time_s <= estimate(MODEL, tray, tr, lay, gpus).step_time_s + 1e-12


@SETTINGS
@given(tp=st.sampled_from([2, 4, 8]), rc=st.sampled_from(["none", "selective", "full"]))
def test_ring_exchange_hides_tp_comm_but_never_beats_ideal_overlap(tp, rc):
    lay = Layout(tp=tp, dp=8 // tp, sequence_parallel=True)
    base = TrainingSpec(seq_length=2048, global_batch_size=16, recompute=rc)
    off = estimate(MODEL, HW, base, lay, 8)
    ring = estimate(MODEL, HW, base.replace(tp_comm_overlap=True, tp_overlap_style="ring-exchange"), lay, 8)
    ideal = estimate(MODEL, HW, base.replace(tp_comm_overlap=True, tp_overlap_style="pass"), lay, 8)
    assert ring.time.tp_comm <= off.time.tp_comm + 1e-12
    assert ideal.step_time_s <= ring.step_time_s + 1e-12
