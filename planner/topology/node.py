"""The link graph of a node (devices ``gpuN``, NICs and switches as nodes; planner.topology.linkgraph),
the widest-path bandwidth between two devices, NIC sharing, and a one-line description. Bandwidths in GB/s
(1e9 bytes/s) per direction. Results are cached per NodeSpec content (its JSON dump: NodeSpec holds lists,
so it is not hashable)."""

from __future__ import annotations

import functools
import heapq
import math

from ..errors import SpecError
from ..specs import NicSpec, NodeSpec
from .linkgraph import LinkGraph


def device_name(index: int) -> str:
    """Graph node name of device ``index``."""
    return f"gpu{index}"


_KEYS: dict[int, tuple[NodeSpec, str]] = {}


def node_key(node: NodeSpec) -> str:
    """Cache key of a (frozen) NodeSpec: its JSON, memoised by identity (the entry keeps it alive)."""
    hit = _KEYS.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    if len(_KEYS) >= 256:
        _KEYS.clear()
    key = node.model_dump_json()
    _KEYS[id(node)] = (node, key)
    return key


def node_graph(node: NodeSpec) -> LinkGraph:
    """The node's link graph (cached; treat it as read-only).

    Nodes carry ``kind`` = ``"device"`` (named ``gpuN``, attribute ``index``), ``"nic"``
    (attributes ``bandwidth_gbps``, ``devices``) or ``"switch"`` (any other endpoint). Edges carry
    ``bandwidth_gbps`` (per direction; parallel links between the same pair add up) and ``kind``.
    """
    return graph_from_json(node_key(node))


@functools.lru_cache(maxsize=64)
def graph_from_json(node_json: str) -> LinkGraph:
    """The link graph of the node whose JSON dump (``node_key``) is ``node_json`` (cached)."""
    return _build_graph(NodeSpec.model_validate_json(node_json))


def _build_graph(node: NodeSpec) -> LinkGraph:
    g = LinkGraph()
    for i in range(node.devices_per_node):
        g.add_node(device_name(i), kind="device", index=i)
    for nic in node.nics:
        g.add_node(nic.name, kind="nic", bandwidth_gbps=nic.bandwidth_gbps, devices=tuple(nic.devices))
    for link in node.links:
        for end in (link.a, link.b):
            if end not in g:
                g.add_node(end, kind="switch")
        if g.has_edge(link.a, link.b):
            g[link.a][link.b]["bandwidth_gbps"] += link.bandwidth_gbps
        else:
            g.add_edge(link.a, link.b, bandwidth_gbps=link.bandwidth_gbps, kind=link.kind)
    return g


def check_device(node: NodeSpec, device: int, field: str = "devices") -> None:
    """SpecError naming ``field`` when ``device`` is not a device index of ``node``."""
    if not 0 <= device < node.devices_per_node:
        raise SpecError(f"device {device} out of range 0..{node.devices_per_node - 1}", field=field)


def _widest_tree(g: LinkGraph, src: str) -> dict[str, str]:
    """Predecessors of the widest paths from ``src``: the largest bottleneck bandwidth, then the
    fewest hops (a Dijkstra variant); paths never pass through a NIC."""
    best: dict[str, tuple[float, int]] = {src: (math.inf, 0)}
    parent: dict[str, str] = {}
    heap = [(-math.inf, 0, src)]
    done = set()
    while heap:
        neg_bw, hops, here = heapq.heappop(heap)
        if here in done:
            continue
        done.add(here)
        if here != src and g.nodes[here]["kind"] == "nic":
            continue
        for nxt, attrs in g[here].items():
            label = (min(-neg_bw, attrs["bandwidth_gbps"]), hops + 1)
            seen = best.get(nxt)
            if nxt not in done and (seen is None or (label[0], -label[1]) > (seen[0], -seen[1])):
                best[nxt] = label
                parent[nxt] = here
                heapq.heappush(heap, (-label[0], label[1], nxt))
    return parent


@functools.lru_cache(maxsize=64)
def device_routes(node_json: str) -> dict[tuple[int, int], tuple[tuple[str, str], ...]]:
    """Directed edges of the widest path between every ordered device pair that has a path."""
    g = graph_from_json(node_json)
    n = sum(1 for _, kind in g.nodes(data="kind") if kind == "device")
    routes = {}
    for a in range(n):
        parent = _widest_tree(g, device_name(a))
        for b in range(n):
            here, hops = device_name(b), []
            if a == b or here not in parent:
                continue
            while here != device_name(a):
                hops.append((parent[here], here))
                here = parent[here]
            routes[(a, b)] = tuple(reversed(hops))
    return routes


def _pair_route(node: NodeSpec, a: int, b: int) -> tuple[tuple[str, str], ...]:
    route = device_routes(node_key(node)).get((a, b))
    if route is None:
        raise SpecError(f"no path between gpu{a} and gpu{b} in the node graph", field="node.links")
    return route


def p2p_bandwidth_gbps(node: NodeSpec, a: int, b: int) -> float:
    """Point-to-point bandwidth from device ``a`` to device ``b``: the widest path's bottleneck, GB/s."""
    check_device(node, a)
    check_device(node, b)
    if a == b:
        raise SpecError(f"p2p from device {a} to itself", field="devices")
    g = node_graph(node)
    return min(g[u][v]["bandwidth_gbps"] for u, v in _pair_route(node, a, b))


def nic_for_device(node: NodeSpec, device: int) -> NicSpec:
    """The NIC that serves ``device`` (the first listed, if several do)."""
    check_device(node, device)
    for nic in node.nics:
        if device in nic.devices:
            return nic
    raise SpecError(f"device {device} is served by no NIC", field="node.nics")


def offnode_bandwidth_per_device_gbps(node: NodeSpec, devices_sending: tuple[int, ...]) -> float:
    """Off-node bandwidth each sending device gets when ``devices_sending`` send at once, GB/s.

    Each NIC's bandwidth is split evenly among the sending devices it serves; a device served by
    several NICs adds its shares. Returns the smallest device's bandwidth (the one a synchronous
    collective waits for). Frontier, all 8 GCDs sending: 25 GB/s / 2 = 12.5 GB/s.
    """
    sending = set(int(d) for d in devices_sending)
    if not sending:
        raise SpecError("no sending devices given", field="devices_sending")
    for d in sending:
        check_device(node, d, field="devices_sending")
    per_device = dict.fromkeys(sending, 0.0)
    for nic in node.nics:
        users = sending.intersection(nic.devices)
        for d in users:
            per_device[d] += nic.bandwidth_gbps / len(users)
    return min(per_device.values())


def describe_topology(node: NodeSpec) -> str:
    """One line on the device links, grouped by bandwidth: ``8x450 GB/s nvlink gpu-nvswitch``.

    Read from ``node.links`` directly (parallel links between one pair add up, as in
    :func:`node_graph`), so listing profiles builds no graph."""
    nics = {nic.name for nic in node.nics}
    devices = {device_name(i) for i in range(node.devices_per_node)}
    merged: dict[frozenset, list] = {}
    for link in node.links:
        pair = frozenset((link.a, link.b))
        if pair in merged:
            merged[pair][0] += link.bandwidth_gbps
        else:
            merged[pair] = [link.bandwidth_gbps, link.kind, link.a, link.b]
    groups: dict[tuple[float, str, str], int] = {}
    for bw, kind, a, b in merged.values():
        if a in nics or b in nics:
            continue
        far = "gpu" if a in devices and b in devices else next(x for x in (a, b) if x not in devices)
        k = (bw, kind, f"gpu-{far}")
        groups[k] = groups.get(k, 0) + 1
    ordered = sorted(groups.items(), reverse=True)
    return ", ".join(f"{count}x{bw:g} GB/s {kind} {ends}" for (bw, kind, ends), count in ordered)
