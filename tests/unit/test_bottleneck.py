"""One bottleneck story: the breakdown, whatif's bottleneck and sensitivity agree, and the named
bottleneck is the resource whose 2x improvement helps most (issue #15, defect 7)."""

from __future__ import annotations

import pytest

from planner.cost.bottleneck import RESOURCES, analyse_scenario
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec
from planner.whatif import apply_settings, compare, sensitivity

# the same as doubling every compute price: peak FLOP/s and HBM bandwidth x2, launch overhead / 2
COMPUTE_X2 = ["hardware.peak_tflops=x2", "hardware.hbm_bandwidth=x2", "hardware.kernel_overhead=x0.5"]
COMPUTE_FAMILY = {"hardware.peak_tflops", "hardware.hbm_bandwidth", "hardware.kernel_overhead"}
# the hardware resources shared by several breakdown parts, and the sensitivity key doubling each
HARDWARE_KEY = {"links": "hardware.link_bandwidth", "network": "hardware.nic_bandwidth"}


def _scenario(model, hardware, gpus, layout, **training) -> Scenario:
    from hwprofiles import load_hardware, load_model

    t = dict(global_batch_size=128, micro_batch_size=1, seq_length=2048)
    t.update(training)
    return Scenario(model=load_model(model), hardware=load_hardware(hardware), gpus=gpus,
                    training=TrainingSpec(**t), layout=Layout(**layout))


def _with_training(sc: Scenario, **changes) -> Scenario:
    return Scenario(model=sc.model, hardware=sc.hardware, gpus=sc.gpus, training=sc.training.replace(**changes),
                    layout=sc.layout)


LAYOUTS = {
    "dense": lambda: _scenario("llama3-8b", "h100-sxm-80gb", 8, dict(tp=1, pp=1, dp=8, zero_stage=1)),
    # the case: Llama 3 70B on 64 H100, tp4 ZeRO-3, 8k sequences
    "zero3": lambda: _scenario("llama3-70b", "h100-sxm-80gb", 64, dict(tp=4, pp=1, dp=16, zero_stage=3),
                               seq_length=8192),
    # NICs at a quarter: the gathers outlast the compute even with its GEMMs in two waves beside them
    "zero3-slow-nic": lambda: apply_settings(LAYOUTS["zero3"](), ["hardware.nic_bandwidth=x0.25"])[0],
    "pp": lambda: _scenario("frontier-175b", "mi250x-frontier", 128, dict(tp=4, pp=16, dp=2, zero_stage=1),
                            global_batch_size=64, recompute="full", precision="fp16", recipe="deepspeed"),
    # tp 16 spans two nodes: its collectives cross NICs slowed to a quarter
    "tp-heavy": lambda: apply_settings(
        _scenario("llama2-7b", "h100-sxm-80gb", 32, dict(tp=16, pp=1, dp=2, zero_stage=1)),
        ["hardware.nic_bandwidth=x0.25"])[0],
    # the same with TP collectives overlapped with their GEMMs: the passes are collective-bound
    "tp-overlap": lambda: _with_training(LAYOUTS["tp-heavy"](), tp_comm_overlap=True),
    # ring attention over cp 4: its blocks are compute, priced through the ComputePricer
    "cp": lambda: _scenario("llama3-8b", "h100-sxm-80gb", 16, dict(tp=2, pp=1, dp=2, cp=4, zero_stage=1),
                            seq_length=32768, global_batch_size=16),
}


@pytest.fixture(scope="module", params=sorted(LAYOUTS))
def case(request):
    sc = LAYOUTS[request.param]()
    return request.param, sc, analyse_scenario(sc)


def test_named_bottleneck_is_the_resource_whose_2x_helps_most(case):
    name, sc, analysis = case
    neck = compare(sc, []).base.bottleneck
    best = max(analysis.speedups, key=lambda s: s.saving)
    assert neck.resource == best.resource, name
    assert neck.saving_x2 == pytest.approx(best.saving)
    assert all(analysis.saving_of(r) <= neck.saving_x2 + 1e-12 for r in RESOURCES)
    assert neck.saving_x2 > 0


def test_compute_counterfactual_equals_the_hardware_knobs(case):
    """The 2x compute re-estimate is what doubling the chip's compute (peak, HBM, launch overhead)
    does through the ordinary what-if path: the counterfactual prices what the hardware prices."""
    name, sc, analysis = case
    t0 = sc.estimate().step_time_s
    faster = apply_settings(sc, COMPUTE_X2)[0].estimate().step_time_s
    assert analysis.saving_of("compute") == pytest.approx(1 - faster / t0, rel=1e-9, abs=1e-12), name


def test_booked_parts_move_with_their_resource(case):
    """A part is booked only where its resource is on the critical path: compute hidden under
    longer ZeRO-3 traffic is booked as communication, so booked > 0 exactly when 2x helps."""
    name, sc, analysis = case
    est = analysis.estimate
    for resource, part in (("compute", "compute"), ("dp_comm", "dp_comm_exposed"), ("tp_comm", "tp_comm")):
        booked = getattr(est.time, part) / est.step_time_s
        saving = analysis.saving_of(resource)
        assert (booked > 1e-9) == (saving > 1e-9), (name, resource, booked, saving)
        assert saving <= booked + 1e-9, (name, resource)


def test_gather_bound_step_books_its_compute_as_communication():
    """Quarter the NICs of the issue's case: every ZeRO-3 window is gather-bound, 2x compute saves
    nothing, and the breakdown no longer says "compute 53 %"."""
    analysis = analyse_scenario(LAYOUTS["zero3-slow-nic"]())
    est = analysis.estimate
    assert analysis.saving_of("compute") == pytest.approx(0.0, abs=1e-12)
    assert est.time.compute == pytest.approx(0.0, abs=1e-9)
    assert est.time.dp_comm_exposed / est.step_time_s > 0.9
    assert analysis.bottleneck.resource == "dp_comm"


def test_sensitivity_tells_the_same_story(case):
    name, sc, analysis = case
    res = sensitivity(sc, keys=["hardware.peak_tflops", "hardware.hbm_bandwidth", "hardware.nic_bandwidth",
                                "hardware.link_bandwidth"])
    neck = compare(sc, []).base.bottleneck
    assert neck.label in res.bottleneck and f"{neck.saving_x2:.1%}" in res.bottleneck
    top = min((r for r in res.hardware if r.double_delta is not None), key=lambda r: r.double_delta)
    assert top.label in res.headline
    # the headline's parameter belongs to the bottleneck resource's family
    assert (top.key in COMPUTE_FAMILY) == (neck.resource == "compute"), (name, top.key, neck.resource)
    # a hardware bottleneck is the headline's parameter itself, with the same 2x figure
    if neck.resource in HARDWARE_KEY:
        assert top.key == HARDWARE_KEY[neck.resource], (name, top.key, neck.resource)
        assert -top.double_delta == pytest.approx(neck.saving_x2, rel=1e-9), name
    # no hardware parameter alone saves more than the named bottleneck
    assert -top.double_delta <= neck.saving_x2 + 1e-12, (name, top.key, top.double_delta, neck.resource)


def test_hardware_resources_equal_the_sensitivity_knobs(case):
    """Links and NICs are re-estimated on the profile ``--set hardware.link_bandwidth=x2`` /
    ``hardware.nic_bandwidth=x2`` makes: the bottleneck and sensitivity price the same hardware."""
    name, sc, analysis = case
    t0 = sc.estimate().step_time_s
    for resource, key in HARDWARE_KEY.items():
        faster = apply_settings(sc, [f"{key}=x2"])[0].estimate().step_time_s
        assert analysis.saving_of(resource) == pytest.approx(1 - faster / t0, rel=1e-9, abs=1e-12), (name, resource)


def test_links_carry_tp_and_intra_node_zero3_traffic():
    """The issue's case: the intra-node links carry the TP all-reduces and the intra-node level of
    the ZeRO-3 gathers / reduce-scatters (2 dp ranks per node), so doubling them saves more than
    doubling the TP traffic alone. The NICs carry the off-node level of the same ZeRO-3 traffic, beside
    which the H100's persistent GEMMs run in two waves (Pricer.comm_compute_slowdown): doubling them
    shortens that window too, so it saves more than the TP traffic alone."""
    analysis = analyse_scenario(LAYOUTS["zero3"]())
    links = analysis.saving_of("links")
    assert links > analysis.saving_of("tp_comm") > 0
    assert analysis.saving_of("network") > analysis.saving_of("tp_comm")


def test_host_bound_step_names_the_host_dispatch():
    """A tiny model under an eager recipe (15 us of CPU per kernel): every pass is bound by the host
    dispatch floor, no GPU speed-up moves it (2x compute saves nothing) and the bottleneck is the
    host's kernel dispatch, not whichever small overhead came next."""
    sc = _scenario("gpt3-125m", "h100-sxm-80gb", 8, dict(tp=4, pp=1, dp=2, zero_stage=1), seq_length=256,
                   global_batch_size=8, recipe="torch-amp")
    analysis = analyse_scenario(sc)
    assert analysis.saving_of("compute") == pytest.approx(0.0, abs=1e-12)
    assert analysis.bottleneck.resource == "host"
    assert analysis.saving_of("host") > 0.3
    assert "host kernel dispatch" in compare(sc, []).base.bottleneck.label
