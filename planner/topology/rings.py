"""Bus bandwidth that rings over a set of a node's devices reach together (the nccl-tests "busbw" ceiling,
https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md): every directed Hamiltonian cycle of the
devices (a sample beyond ``EXHAUSTIVE_RING_DEVICES``) routed over the node's link graph
(planner.topology.node), the best mix of them found by a small linear program. GB/s per rank per direction."""

from __future__ import annotations

import functools
import itertools
import math
import random
from typing import TYPE_CHECKING

from ..errors import SpecError
from ..specs import NodeSpec
from .node import check_device, device_routes, graph_from_json, node_key

if TYPE_CHECKING:  # numpy is imported where used: `paraplan hw list` does not need it
    import numpy as np

#: Above this many devices the ring search samples cycles instead of enumerating all (n-1)!.
EXHAUSTIVE_RING_DEVICES = 8
#: Cycles sampled (deterministically, seed 0) for larger device sets.
SAMPLED_RINGS = 4000



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
        check_device(node, d)
    if len(set(devs)) != len(devs):
        raise SpecError(f"devices {list(devs)} repeat a device", field="devices")
    if len(devs) <= 1:
        return math.inf
    return _ring_bandwidth_cached(node_key(node), tuple(sorted(devs)))


@functools.lru_cache(maxsize=1024)
def _ring_bandwidth_cached(node_json: str, devs: tuple[int, ...]) -> float:
    import numpy as np

    g = graph_from_json(node_json)
    routes = device_routes(node_json)
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
