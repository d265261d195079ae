"""Intra-node topology: the link graph of a node, and the bandwidths collectives can reach on it.

Units: every bandwidth is GB/s (1e9 bytes/s) **per direction**.

- :func:`node_graph`: link graph (planner.linkgraph, a networkx-style Graph) with devices (``gpuN``), NICs and switches as nodes.
- :func:`p2p_bandwidth_gbps`: widest-path bandwidth between two devices.
- :func:`ring_bandwidth_gbps`: bus bandwidth a set of rings over some devices reaches (the
  nccl-tests "busbw" ceiling, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md).
- :func:`nic_for_device`, :func:`offnode_bandwidth_per_device_gbps`: NIC sharing.

Results are cached per NodeSpec content (NodeSpec holds lists, so it is not hashable; the cache
key is its JSON dump).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import random
from typing import TYPE_CHECKING

from .errors import SpecError
from .linkgraph import LinkGraph
from .specs import NicSpec, NodeSpec

if TYPE_CHECKING:  # numpy is imported where used: `paraplan hw list` does not need it
    import numpy as np

#: Above this many devices the ring search samples cycles instead of enumerating all (n-1)!.
EXHAUSTIVE_RING_DEVICES = 8
#: Cycles sampled (deterministically, seed 0) for larger device sets.
SAMPLED_RINGS = 4000


def device_name(index: int) -> str:
    """Graph node name of device ``index``."""
    return f"gpu{index}"


_KEYS: dict[int, tuple[NodeSpec, str]] = {}


def _key(node: NodeSpec) -> str:
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
    return _graph_from_json(_key(node))


@functools.lru_cache(maxsize=64)
def _graph_from_json(node_json: str) -> LinkGraph:
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


def _check_device(node: NodeSpec, device: int, field: str = "devices") -> None:
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
def _routes(node_json: str) -> dict[tuple[int, int], tuple[tuple[str, str], ...]]:
    """Directed edges of the widest path between every ordered device pair that has a path."""
    g = _graph_from_json(node_json)
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
    route = _routes(_key(node)).get((a, b))
    if route is None:
        raise SpecError(f"no path between gpu{a} and gpu{b} in the node graph", field="node.links")
    return route


def p2p_bandwidth_gbps(node: NodeSpec, a: int, b: int) -> float:
    """Point-to-point bandwidth from device ``a`` to device ``b``: the widest path's bottleneck, GB/s."""
    _check_device(node, a)
    _check_device(node, b)
    if a == b:
        raise SpecError(f"p2p from device {a} to itself", field="devices")
    g = node_graph(node)
    return min(g[u][v]["bandwidth_gbps"] for u, v in _pair_route(node, a, b))


def ring_bandwidth_gbps(node: NodeSpec, devices: tuple[int, ...]) -> float:
    """Bus bandwidth (GB/s per rank per direction) that rings over ``devices`` can reach together.

    A ring is a directed Hamiltonian cycle over ``devices``; consecutive devices without a direct
    link are joined by their widest path (through switches or other devices, never NICs). Rings
    share each directed edge: the ring rates r_k must satisfy, for every edge e,
    sum_k hops_k(e) * r_k <= bandwidth(e). The answer is the largest sum_k r_k over all mixes of
    rings (NCCL/RCCL channels are such a mix), found by a small linear program (exact, unlike a
    greedy packing, which reaches only 256 of the 448 GB/s of an 8-GPU MI300X mesh). That sum is
    the nccl-tests bus bandwidth: a ring all-reduce of S bytes takes 2(n-1)/n * S / busbw
    (https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md).

    Two devices form the "ring" a -> b -> a (each sends to the other over the pair's link), so a
    pair's busbw is its per-direction bandwidth: Frontier GCDs (0, 1) give 200, (0, 2) give 50;
    all 8 Frontier GCDs give 200 (4 rings x 50), a DGX H100 (NVSwitch) gives 450. For one device
    the answer is ``inf`` (no communication). All cycles are enumerated up to 8 devices; beyond
    that a fixed sample of cycles is searched (a lower bound). Cached per (node, device set).
    """
    devs = tuple(int(d) for d in devices)
    for d in devs:
        _check_device(node, d)
    if len(set(devs)) != len(devs):
        raise SpecError(f"devices {list(devs)} repeat a device", field="devices")
    if len(devs) <= 1:
        return math.inf
    return _ring_bandwidth_cached(_key(node), tuple(sorted(devs)))


@functools.lru_cache(maxsize=1024)
def _ring_bandwidth_cached(node_json: str, devs: tuple[int, ...]) -> float:
    import numpy as np

    g = _graph_from_json(node_json)
    routes = _routes(node_json)
    n = len(devs)
    pairs = list(itertools.permutations(range(n), 2))
    for a, b in pairs:
        if (devs[a], devs[b]) not in routes:
            raise SpecError(f"no path between gpu{devs[a]} and gpu{devs[b]}", field="node.links")
    edges = sorted({e for a, b in pairs for e in routes[(devs[a], devs[b])]})
    index = {e: i for i, e in enumerate(edges)}
    bw = np.array([g[u][v]["bandwidth_gbps"] for u, v in edges])
    # hops[a, b] = directed-edge use counts of the route from devs[a] to devs[b]
    hops = np.zeros((n, n, len(edges)), dtype=np.float32)
    for a, b in pairs:
        for e in routes[(devs[a], devs[b])]:
            hops[a, b, index[e]] += 1
    orders = _cycle_orders(n)
    uses = np.zeros((len(orders), len(edges)), dtype=np.float32)
    for i in range(n):
        uses += hops[orders[:, i], orders[:, (i + 1) % n]]
    return round(_max_ring_packing(uses.astype(np.float64), bw), 9)


@functools.lru_cache(maxsize=16)
def _cycle_orders(n: int) -> np.ndarray:
    """Device orders (positions into the device tuple) of candidate directed cycles, first fixed at 0."""
    import numpy as np

    if n <= EXHAUSTIVE_RING_DEVICES:  # (n-1)! orders, read straight into an array (5040 for 8 devices)
        count = math.factorial(n - 1)
        flat = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(1, n))), dtype=np.intp,
                           count=count * (n - 1))
        return np.hstack([np.zeros((count, 1), dtype=np.intp), flat.reshape(count, n - 1)])
    else:
        rng = random.Random(0)
        rest = [tuple(range(1, n))]
        for _ in range(SAMPLED_RINGS):
            perm = list(range(1, n))
            rng.shuffle(perm)
            rest.append(tuple(perm))
    return np.array([(0, *r) for r in rest], dtype=np.intp)


def _max_ring_packing(uses: np.ndarray, bw: np.ndarray) -> float:
    """Largest total ring rate: max sum(r) s.t. uses.T @ r <= bw, r >= 0 (a small LP).

    ``uses`` is candidate rings x directed edges (hop counts), ``bw`` the edge bandwidths (> 0).
    Tableau simplex with column generation: the tableau starts with the slack columns only (the
    origin is feasible, no phase 1); each round appends the rings with the most negative reduced
    cost ``duals @ uses_j - 1`` (their tableau columns are ``B^-1 @ uses_j``, B^-1 being the slack
    block) and pivots to optimality, keeping the basis. Dantzig's entering rule, switching to
    Bland's rule (which cannot cycle) after a run of degenerate pivots.
    """
    import numpy as np

    n_edges = uses.shape[1]
    tableau = np.zeros((n_edges + 1, n_edges + 1))
    tableau[:n_edges, :n_edges] = np.eye(n_edges)
    tableau[:n_edges, -1] = bw / bw.max()
    basis = list(range(n_edges))
    added = np.zeros(len(uses), dtype=bool)
    tol = 1e-9
    while True:
        reduced = uses @ tableau[-1, :n_edges] - 1.0
        reduced[added] = 0.0
        order = np.argsort(reduced)[:n_edges]
        new = order[reduced[order] < -tol]
        if new.size == 0:
            return float(tableau[-1, -1] * bw.max())
        added[new] = True
        columns = np.vstack([tableau[:-1, :n_edges] @ uses[new].T, reduced[new]])
        tableau = np.hstack([tableau[:, :-1], columns, tableau[:, -1:]])
        _pivot_to_optimum(tableau, basis, tol)


def _pivot_to_optimum(tableau: np.ndarray, basis: list[int], tol: float) -> None:
    """Simplex pivots (in place) on a maximisation tableau whose last row holds reduced costs."""
    import numpy as np

    degenerate = 0
    for _ in range(100 * tableau.shape[1]):
        costs = tableau[-1, :-1]
        if degenerate > 10:
            negative = np.nonzero(costs < -tol)[0]
            if negative.size == 0:
                return
            enter = int(negative[0])
        else:
            enter = int(np.argmin(costs))
            if costs[enter] >= -tol:
                return
        column = tableau[:-1, enter]
        rows = np.nonzero(column > tol)[0]
        ratios = tableau[rows, -1] / column[rows]
        best = ratios.min()
        leave = int(min(rows[ratios <= best + tol], key=lambda r: basis[r]))
        degenerate = degenerate + 1 if best <= tol else 0
        tableau[leave] /= tableau[leave, enter]
        factors = tableau[:, enter].copy()
        factors[leave] = 0.0
        tableau -= np.outer(factors, tableau[leave])
        basis[leave] = enter


def nic_for_device(node: NodeSpec, device: int) -> NicSpec:
    """The NIC that serves ``device`` (the first listed, if several do)."""
    _check_device(node, device)
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
        _check_device(node, d, field="devices_sending")
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
