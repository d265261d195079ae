"""Fast domains larger than a node (GB200 NVL72) and the rank order that maps dims to network tiers."""

from __future__ import annotations

import pytest
import yaml

from hwprofiles import load_hardware, load_model
from hwprofiles.loader import hardware_dir, unsourced_numbers
from planner.pricing import Pricer
from planner.pricing.collectives import CollectivePricer, level_time
from planner.pricing.placement import axis_placement, axis_stride, place, pp_boundary_devices, tier_mapping
from planner.search import SearchConstraints, search
from planner.specs import Layout, TrainingSpec

GB = 1e9


@pytest.fixture(scope="module")
def nvl72():
    return load_hardware("gb200-nvl72")


def _tray_only(hw):
    """The same profile with the NVLink domain cut to one tray (what a node-sized domain would give)."""
    return hw.model_copy(update={"node": hw.node.model_copy(update={"fast_domain_nodes": 1})})


def test_gb200_profile_every_number_sourced(nvl72):
    raw = yaml.safe_load((hardware_dir() / "gb200-nvl72.yaml").read_text())
    assert unsourced_numbers(raw) == []
    assert nvl72.node.fast_domain_devices == 72 and nvl72.node.devices_per_node == 4
    assert nvl72.device.peak_tflops.bf16 == 2500 and nvl72.device.hbm_bandwidth_gbps == 8000


def test_group_across_trays_inside_the_domain(nvl72):
    g = place(8, 1, 4, 18)
    assert (g.ranks_per_node, g.nodes, g.domain_nodes, g.node_devices) == (8, 1, 2, (0, 1, 2, 3))
    g = place(16, 72, 4, 18)  # dp16 over tp8 x pp9 = 72 per rack: one member per rack
    assert (g.ranks_per_node, g.nodes) == (1, 16)


def test_in_domain_all_reduce_prices_at_nvlink_bandwidth(nvl72):
    pricer = CollectivePricer(nvl72, 18)
    group = place(8, 1, 4, 18)
    expected = level_time("all-reduce", 8, GB, 900e9 * nvl72.node.collective_efficiency,
                          nvl72.node.collective_latency_us * 1e-6)
    assert pricer.time("all-reduce", GB, group) == pytest.approx(expected)
    tray = _tray_only(nvl72)
    slower = CollectivePricer(tray, 18).time("all-reduce", GB, place(8, 1, 4, 1))
    assert slower > 2 * expected  # the same group, its two trays joined by 50 GB/s NICs


def test_rank_order_strides():
    lay = Layout(tp=8, pp=9, dp=16)
    assert axis_stride(lay, "pp") == (9, 8) and axis_stride(lay, "dp") == (16, 72)
    alt = lay.model_copy(update={"rank_order": "tp-cp-dp-pp"})
    assert axis_stride(alt, "dp") == (16, 8) and axis_stride(alt, "pp") == (9, 128)


def test_pipeline_inside_the_domain_does_not_use_nics(nvl72):
    lay = Layout(tp=8, pp=9, dp=16)
    senders, crosses = pp_boundary_devices(lay, nvl72)
    assert not crosses
    pricer = Pricer(nvl72, TrainingSpec(global_batch_size=16), lay, 1152)
    assert pricer.p2p_time(1e8) == pytest.approx(1e8 / (900e9 * nvl72.node.p2p_efficiency)
                                                 + nvl72.node.collective_latency_us * 1e-6)
    _, crosses_tray = pp_boundary_devices(lay, _tray_only(nvl72))
    assert crosses_tray


def test_default_order_unchanged_on_a_dgx():
    hw = load_hardware("h100-sxm-80gb")
    assert tier_mapping(Layout(tp=4, pp=2, dp=4), hw) == ["tp4: node", "pp2: node", "dp4: network"]
    assert tier_mapping(Layout(tp=4, pp=2, dp=4, rank_order="tp-cp-dp-pp"), hw) == [
        "tp4: node", "dp4: 2 per node x 2 over the network", "pp2: network"]


def test_plan_on_1152_gb200_places_tp_x_pp_inside_the_rack(nvl72):
    model = load_model("llama3.1-405b")
    training = TrainingSpec(global_batch_size=1152, seq_length=8192)
    result = search(model, nvl72, 1152, training, SearchConstraints(pp=9, max_tp=8), top=40)
    domain = nvl72.node.fast_domain_devices  # 72
    # whichever tp ranks first (tp4 or tp8 depends on the kernel pricing, not on the tiers), the best
    # plan keeps tp inside the NVLink domain and packs the next dim of its rank order into the rest of it
    best = result.plans[0].layout
    assert best.pp == 9 and best.tp in (4, 8)
    tp_group = axis_placement(best, "tp", nvl72)
    assert tp_group.nodes == 1  # one fast domain
    order = [a for a in best.rank_order.split("-") if a != "tp" and getattr(best, a) > 1]
    nxt = axis_placement(best, order[0], nvl72)
    assert nxt.ranks_per_node == min(nxt.size, domain // best.tp)  # as many as the rack holds
    tiers = tier_mapping(best, nvl72)
    assert tiers[0] == f"tp{best.tp}: " + ("node" if best.tp <= nvl72.node.devices_per_node
                                           else f"fast domain ({domain} GPUs)")
    # the best plan of the default order: tp x cp x pp (<= 72 GPUs; the search adds cp from 8k tokens)
    # entirely inside the rack
    default = next(p.layout for p in result.plans if p.layout.rank_order == "tp-cp-pp-dp")
    assert default.tp * default.cp * default.pp <= domain
    assert all(axis_placement(default, a, nvl72).nodes == 1 for a in ("tp", "cp", "pp"))
    assert f"pp9: fast domain ({domain} GPUs)" in tier_mapping(default, nvl72)
    # both rank orders were priced
    assert {p.layout.rank_order for p in result.plans} == {"tp-cp-pp-dp", "tp-cp-dp-pp"}


def test_a_multi_node_domain_needs_its_bandwidth(nvl72):
    from planner.specs import NodeSpec

    data = nvl72.node.model_dump()
    data["fast_domain_bandwidth_gbps"] = None
    with pytest.raises(ValueError, match="fast_domain_bandwidth_gbps"):
        NodeSpec.model_validate(data)


def test_expert_groups_are_listed_on_their_tier(nvl72):
    hw = load_hardware("h100-sxm-80gb")
    assert tier_mapping(Layout(tp=1, dp=16, ep=8), hw) == ["dp16: 8 per node x 2 over the network", "ep8: node"]
    assert tier_mapping(Layout(tp=2, dp=72, ep=16), nvl72)[-1] == "ep16: fast domain (72 GPUs)"
