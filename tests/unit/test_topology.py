"""planner.topology: node graph, widest paths, ring bus bandwidth, NIC sharing."""

from __future__ import annotations

import math

import pytest

from hwprofiles import load_hardware
from planner.errors import SpecError
from planner.specs import NodeSpec
from planner.topology import (
    describe_topology,
    nic_for_device,
    node_graph,
    offnode_bandwidth_per_device_gbps,
    p2p_bandwidth_gbps,
    ring_bandwidth_gbps,
)


def _node(n: int, links: list[tuple[str, str, float]], nics=None) -> NodeSpec:
    return NodeSpec(
        devices_per_node=n,
        links=[{"a": a, "b": b, "bandwidth_gbps": bw} for a, b, bw in links],
        nics=nics or [{"name": "nic0", "bandwidth_gbps": 10.0, "devices": list(range(n))}],
        collective_efficiency=0.8, collective_latency_us=1.0,
    )


@pytest.fixture(scope="module")
def frontier() -> NodeSpec:
    return load_hardware("mi250x-frontier").node


@pytest.fixture(scope="module")
def dgx() -> NodeSpec:
    return load_hardware("h100-sxm-80gb").node


def test_graph_has_devices_nics_and_switches(dgx):
    g = node_graph(dgx)
    kinds = {n: k for n, k in g.nodes(data="kind")}
    assert [kinds[f"gpu{i}"] for i in range(8)] == ["device"] * 8
    assert kinds["nvswitch"] == "switch" and kinds["nic3"] == "nic"
    assert g["gpu3"]["nvswitch"]["bandwidth_gbps"] == 450.0


def test_graph_is_cached_per_node_content(dgx):
    assert node_graph(dgx) is node_graph(dgx.replace())


def test_parallel_links_add_up():
    node = _node(2, [("gpu0", "gpu1", 50.0), ("gpu1", "gpu0", 50.0)])
    assert node_graph(node)["gpu0"]["gpu1"]["bandwidth_gbps"] == 100.0
    assert p2p_bandwidth_gbps(node, 0, 1) == 100.0


def test_frontier_all_eight_gcds_give_four_rings_of_fifty(frontier):
    assert ring_bandwidth_gbps(frontier, tuple(range(8))) == pytest.approx(200.0)


def test_frontier_sibling_pair_beats_cross_package_pair(frontier):
    assert ring_bandwidth_gbps(frontier, (0, 1)) == pytest.approx(200.0)
    assert ring_bandwidth_gbps(frontier, (0, 2)) == pytest.approx(50.0)


def test_frontier_two_packages_are_bound_by_two_cross_links(frontier):
    # cut {0,1} | {2,3}: links 0-2 and 1-3 carry 50 GB/s each way
    assert ring_bandwidth_gbps(frontier, (0, 1, 2, 3)) == pytest.approx(100.0)


def test_nvswitch_node_gives_the_per_gpu_link_rate(dgx):
    assert ring_bandwidth_gbps(dgx, tuple(range(8))) == pytest.approx(450.0)
    assert ring_bandwidth_gbps(dgx, (2, 5)) == pytest.approx(450.0)


def test_full_mesh_uses_every_link():
    mi300x = load_hardware("mi300x").node
    assert ring_bandwidth_gbps(mi300x, tuple(range(8))) == pytest.approx(7 * 64.0)
    assert ring_bandwidth_gbps(mi300x, (0, 1, 2, 3)) == pytest.approx(3 * 64.0)
    assert ring_bandwidth_gbps(mi300x, (0, 5)) == pytest.approx(64.0)


def test_ring_bandwidth_ignores_device_order(frontier):
    assert ring_bandwidth_gbps(frontier, (3, 0, 2, 1)) == ring_bandwidth_gbps(frontier, (0, 1, 2, 3))


def test_ring_over_a_chain_routes_through_the_middle_device():
    # 0 - 1 - 2 chain: the ring 0->1->2->0 routes 2->0 over 2->1->0, loading each direction twice
    node = _node(3, [("gpu0", "gpu1", 100.0), ("gpu1", "gpu2", 100.0)])
    assert ring_bandwidth_gbps(node, (0, 1, 2)) == pytest.approx(100.0)
    assert p2p_bandwidth_gbps(node, 0, 2) == 100.0


def test_single_device_needs_no_ring(frontier):
    assert math.isinf(ring_bandwidth_gbps(frontier, (3,)))


@pytest.mark.parametrize("devices", [(0, 0), (0, 8), (-1, 2)])
def test_bad_device_sets_are_rejected(frontier, devices):
    with pytest.raises(SpecError, match="devices"):
        ring_bandwidth_gbps(frontier, devices)


def test_disconnected_devices_are_reported():
    node = _node(3, [("gpu0", "gpu1", 10.0)])
    with pytest.raises(SpecError, match="no path"):
        ring_bandwidth_gbps(node, (0, 2))


def test_p2p_takes_the_widest_path(frontier):
    assert p2p_bandwidth_gbps(frontier, 0, 1) == 200.0
    assert p2p_bandwidth_gbps(frontier, 0, 3) == 50.0  # via 1 (200) then 1-3 (50)


def test_nic_for_device_follows_the_package(frontier):
    assert nic_for_device(frontier, 0).name == "nic0"
    assert nic_for_device(frontier, 7).name == "nic3"


def test_offnode_share_splits_each_nic_among_its_senders(frontier, dgx):
    assert offnode_bandwidth_per_device_gbps(frontier, tuple(range(8))) == 12.5
    assert offnode_bandwidth_per_device_gbps(frontier, (0, 2, 4, 6)) == 25.0
    assert offnode_bandwidth_per_device_gbps(frontier, (0, 1, 2)) == 12.5
    assert offnode_bandwidth_per_device_gbps(dgx, tuple(range(8))) == 50.0


def test_offnode_needs_a_sender(frontier):
    with pytest.raises(SpecError, match="devices_sending"):
        offnode_bandwidth_per_device_gbps(frontier, ())


def test_describe_topology_groups_links(frontier, dgx):
    assert describe_topology(dgx) == "8x450 GB/s nvlink gpu-nvswitch"
    assert describe_topology(frontier) == "4x200 GB/s xgmi gpu-gpu, 8x50 GB/s xgmi gpu-gpu"


def test_large_device_sets_use_sampled_rings():
    # above 8 devices the cycles are sampled; on a switch every cycle reaches the link rate
    n = 12
    node = _node(n, [(f"gpu{i}", "sw", 100.0) for i in range(n)])
    assert ring_bandwidth_gbps(node, tuple(range(n))) == pytest.approx(100.0)
