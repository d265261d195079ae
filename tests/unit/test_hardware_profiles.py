"""Shipped hardware profiles: they load, every number is sourced, fitted fields match the data."""

from __future__ import annotations

import copy

import pytest
import yaml

from hwprofiles.loader import (
    hardware_dir,
    hardware_from_dict,
    list_hardware,
    load_hardware,
    unsourced_numbers,
)
from planner.errors import NotFoundError, SpecError
from validate import fit_microbench as fit

EXPECTED = {"a100-sxm-40gb", "a100-sxm-80gb", "h100-sxm-80gb", "h200-sxm-141gb", "mi250x-frontier", "mi300x", "h800"}


def _raw(name: str) -> dict:
    return yaml.safe_load((hardware_dir() / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def h200_fit() -> dict:
    return fit.fit_device_fields(fit.load_microbench(), 989.4, 4800.0)


def _close(a: float, b: float, rel: float = 0.02) -> bool:
    return abs(a - b) <= rel * abs(b)


def test_all_expected_profiles_are_shipped():
    assert EXPECTED <= set(list_hardware())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_loads_with_every_number_sourced(name):
    hw = load_hardware(name)
    assert hw.name == name
    assert unsourced_numbers(_raw(name)) == []
    assert hw.notes, "inferred figures must be listed in notes"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_profile_sources_are_non_empty_citations(name):
    for key, text in load_hardware(name).sources.items():
        assert len(text) > 10, f"{name}: source of {key} is too short to be a citation"


def test_profile_with_an_unsourced_number_is_rejected():
    data = _raw("h100-sxm-80gb")
    del data["sources"]["device.hbm_bandwidth_gbps"]
    with pytest.raises(SpecError, match="device.hbm_bandwidth_gbps"):
        hardware_from_dict(data, "test.yaml")


def test_unknown_profile_name_suggests_the_closest():
    with pytest.raises(NotFoundError, match="h100-sxm-80gb"):
        load_hardware("h100-sxm")


def _curve_matches(shipped, fresh) -> None:
    assert len(shipped) == len(fresh)
    for s, f in zip(shipped, fresh, strict=True):
        assert _close(s.gflop, f["gflop"]) and _close(s.efficiency, f["efficiency"]), (s, f)


@pytest.mark.parametrize("name", ["h200-sxm-141gb", "h100-sxm-80gb", "h800"])
def test_hopper_gemm_curve_equals_a_fresh_fit_of_the_microbenchmark(name, h200_fit):
    _curve_matches(load_hardware(name).device.gemm_efficiency, h200_fit["gemm_efficiency"])


# mi250x-frontier is left out: its efficiencies are fitted to the Frontier study separately.
@pytest.mark.parametrize(
    "name,peak,plateau", [("a100-sxm-80gb", 312.0, 0.7395), ("a100-sxm-40gb", 312.0, 0.7395),
                          ("mi300x", 1307.4, 0.51)],
)
def test_transferred_gemm_curves_equal_the_scaled_h200_fit(name, peak, plateau, h200_fit):
    hw = load_hardware(name)
    assert hw.device.peak_tflops.bf16 == peak
    expected = fit.scale_curve(h200_fit["gemm_efficiency"], peak / 989.4, plateau)
    _curve_matches(hw.device.gemm_efficiency, expected)


@pytest.mark.parametrize("name", ["h200-sxm-141gb", "h100-sxm-80gb", "h100-sxm-96gb-500w", "h800", "a100-sxm-80gb",
                                  "a100-sxm-40gb"])
def test_memory_classes_equal_a_fresh_fit_of_the_microbenchmark(name):
    """Every profile that takes the H200's per-class HBM fractions carries exactly what the fit gives (backward
    classes with the benchmark's gradient handling taken out, planner.pricing.kernel_fit)."""
    import json
    from pathlib import Path

    from planner.pricing.kernel_fit import fit_kernel_classes

    bench = json.loads((Path(__file__).resolve().parents[2] / "hwprofiles/data/h200_microbench.json").read_text())
    fresh = fit_kernel_classes(bench, 4800.0)
    shipped = load_hardware(name).device.memory_class_efficiency
    assert {k: v for k, v in fresh.items() if k != "copy"} == shipped


def test_h200_scalar_fields_equal_a_fresh_fit(h200_fit):
    dev = load_hardware("h200-sxm-141gb").device
    for field in ("fp8_gemm_speedup", "memory_efficiency", "attention_efficiency",
                  "attention_backward_efficiency", "optimizer_params_per_s"):
        assert _close(getattr(dev, field), h200_fit[field]), field
    assert dev.gemm_min_dim_knee == h200_fit["gemm_min_dim_knee"]


def test_fit_of_the_shipped_data_has_expected_shape(h200_fit):
    curve = h200_fit["gemm_efficiency"]
    sizes = [p["gflop"] for p in curve]
    assert sizes == sorted(sizes)
    # tiny GEMMs are launch-bound, large ones reach ~0.68 of 989.4 TFLOP/s (transformer shapes)
    assert curve[0]["efficiency"] < 0.01
    assert 0.6 < fit.curve_plateau(curve) < 0.75
    assert h200_fit["gemm_min_dim_knee"] == 0
    assert 1.5 < h200_fit["fp8_gemm_speedup"] < 2.5


def test_gemm_curve_bins_are_medians():
    samples = [(1.0, 0.1, 64), (1.5, 0.3, 64), (1.2, 0.2, 64), (100.0, 0.7, 4096)]
    curve = fit.fit_gemm_curve(samples, bins_per_decade=1)
    assert curve == [{"gflop": 1.2, "efficiency": 0.2}, {"gflop": 100.0, "efficiency": 0.7}]


def test_min_dim_knee_is_found_when_small_dims_are_slow():
    # same size bin; shapes with smallest dim 128 run at half the speed of the 1024 ones
    samples = [(10.0, 0.3, 128)] * 4 + [(10.0, 0.6, 1024)] * 6
    assert fit.fit_min_dim_knee(samples, candidates=(128, 256, 512)) == 256
    assert fit.fit_min_dim_knee([(10.0, 0.6, 128)] * 4 + [(10.0, 0.6, 1024)] * 6) == 0


def test_scale_curve_shifts_sizes_and_caps_efficiency():
    pts = [{"gflop": 1.0, "efficiency": 0.2}, {"gflop": 10.0, "efficiency": 0.5}]
    out = fit.scale_curve(pts, peak_ratio=0.5, plateau=1.5)
    # plateau of the input = 0.5 (its upper half), so efficiencies scale by 3, capped at 1
    assert [p["gflop"] for p in out] == [0.5, 5.0]
    assert [p["efficiency"] for p in out] == pytest.approx([0.6, 1.0])


def test_attention_backward_uses_two_and_a_half_times_forward_flops():
    data = {"attn": [{"hd": 128, "tflops_fwd": 100.0, "s_fwd": 1.0, "s_fwdbwd": 3.5}]}
    fwd, bwd = fit.attention_efficiencies(data, peak_tflops=200.0)
    assert fwd == pytest.approx(0.5)
    assert bwd == pytest.approx(2.5 * 100.0 / 2.5 / 200.0)


def test_frontier_node_matches_the_olcf_description():
    hw = load_hardware("mi250x-frontier")
    node = hw.node
    assert node.devices_per_node == 8
    assert node.nic_bandwidth_gbps == 100.0
    assert sorted(tuple(n.devices) for n in node.nics) == [(0, 1), (2, 3), (4, 5), (6, 7)]
    nic_ends = {link.a: link.b for link in node.links if link.a.startswith("nic")}
    assert sorted(nic_ends.values()) == ["gpu1", "gpu3", "gpu5", "gpu7"]
    assert (hw.network.topology, hw.network.group_size_nodes, hw.network.taper) == ("dragonfly", 128, 1.75)
    assert any("unconfirmed" in note for note in hw.notes)


def test_negative_bandwidth_in_a_profile_is_rejected():
    data = copy.deepcopy(_raw("mi300x"))
    data["node"]["links"][0]["bandwidth_gbps"] = -64
    with pytest.raises(SpecError, match=r"node\.links\.0\.bandwidth_gbps"):
        hardware_from_dict(data, "bad.yaml")
