"""Where the ranks of a mesh axis sit: ranks per fast domain, domains spanned, which devices of a node.

The rank order is ``layout.rank_order`` (fastest-varying axis first). The default ``tp-cp-pp-dp``
is DeviceMesh order [dp, pp, cp, tp] with tp fastest (torchtitan's dp/pp swapped; Megatron-LM's
``--use-tp-pp-dp-mapping``), so a tp group is contiguous and dp groups are the farthest apart;
``tp-cp-dp-pp`` is Megatron-Core's default order (``tp-cp-ep-dp-pp``, ep = 1) and torchtitan's
mesh [pp, dp, cp, tp]: dp groups come next to tp, pipeline stages farthest apart.

The *fast domain* is the set of devices one NVLink/xGMI fabric joins: one node by default, or
``node.fast_domain_nodes`` nodes (GB200 NVL72: 18 trays of 4 GPUs = 72). A group whose members
share one fast domain is priced on that fabric even when they sit in different nodes.

With cp > 1 the "dp" and "dp_shard" groups are dp × cp groups (planner/work/context.py): every cp
rank of their data-parallel ranks (cp has stride tp in both orders, as in Megatron-Core's
``tp-cp-ep-dp-pp`` and torchtitan's (pp, dp_replicate, dp_shard, cp, tp) mesh).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..specs import HardwareProfile, Layout

RANK_ORDERS = ("tp-cp-pp-dp", "tp-cp-dp-pp")


@dataclass(frozen=True, slots=True)
class GroupPlacement:
    """One communication group of an axis, as placed on the cluster."""

    size: int  # ranks in the group
    stride: int  # rank distance between consecutive members
    ranks_per_node: int  # members that share one fast domain (a node unless the domain is larger) (g)
    nodes: int  # fast domains the group spans (k; nodes when the domain is a node)
    node_devices: tuple[int, ...]  # device indices of the first node's members
    span_nodes: int  # nodes from the first member's node to the last member's node
    domain_nodes: int = 1  # nodes the members of one fast domain occupy (1 = all in one node)

    @property
    def intra_node(self) -> bool:
        """True when the whole group sits inside one fast domain."""
        return self.nodes == 1


def axis_strides(layout: Layout) -> dict[str, tuple[int, int]]:
    """(group size, rank stride) of every axis in the layout's rank order."""
    degree = {"tp": layout.tp, "cp": layout.cp, "pp": layout.pp, "dp": layout.dp}
    order = getattr(layout, "rank_order", RANK_ORDERS[0]).split("-")
    stride, table = 1, {}
    for axis in order:
        table[axis] = (degree[axis], stride)
        stride *= degree[axis]
    shard = layout.shard_degree
    dp_stride = table["dp"][1]
    table["dp_shard"] = (shard, dp_stride)
    table["dp_replicate"] = (layout.dp // shard, dp_stride * shard)
    return table


EXPERT_AXES = ("ep", "etp", "edp")


def expert_group_ranks(layout: Layout, axis: str) -> list[int]:
    """Global ranks of the first group of an expert axis. Megatron-Core's expert grid reshapes the
    tp*cp*dp ranks of a pipeline stage to [edp, ep, etp], etp fastest (megatron/core/parallel_state.py,
    ``expert_decoder_rank_generator``, order "tp-ep-dp-pp"); Megatron places the pipeline dimension
    outermost, so a stage's ranks are consecutive and these groups are consecutive ranks (an ep
    group of 8 with etp 1 fills one 8-GPU node). Only the expert axes are priced on this order."""
    etp, ep = layout.expert_tp, layout.ep
    size, step = {"etp": (etp, 1), "ep": (ep, etp), "edp": (layout.expert_dp, etp * ep)}[axis]
    return [i * step for i in range(size)]


def place_ranks(ranks: list[int], devices_per_node: int, domain_nodes: int = 1,
                stride: int | None = None) -> GroupPlacement:
    """Placement of the group made of ``ranks`` (in order) on nodes of ``devices_per_node`` devices,
    ``domain_nodes`` nodes per fast domain (``stride``: the rank distance recorded, default the first gap)."""
    nodes = [r // devices_per_node for r in ranks]
    per_domain = devices_per_node * domain_nodes
    domains = [r // per_domain for r in ranks]
    in_first_node = tuple(r % devices_per_node for r, n in zip(ranks, nodes) if n == nodes[0])
    first_domain = [n for n, d in zip(nodes, domains) if d == domains[0]]
    if stride is None:
        stride = ranks[1] - ranks[0] if len(ranks) > 1 else 1
    return GroupPlacement(len(ranks), stride, len(first_domain), len(set(domains)), in_first_node,
                          nodes[-1] - nodes[0] + 1, len(set(first_domain)))


def axis_stride(layout: Layout, axis: str) -> tuple[int, int]:
    """(group size, rank stride) of ``axis`` in the layout's rank order."""
    return axis_strides(layout)[axis]


@functools.lru_cache(maxsize=4096)
def place(size: int, stride: int, devices_per_node: int, domain_nodes: int = 1) -> GroupPlacement:
    """Placement of the group {0, stride, 2*stride, ...} of ``size`` ranks on nodes of
    ``devices_per_node`` devices, ``domain_nodes`` nodes per fast domain (symmetric for all groups
    when degrees divide the node size, which the search keeps by default). A pure function of four
    integers, kept per argument tuple (a pipeline axis of 128 stages places 128 ranks)."""
    return place_ranks([j * stride for j in range(size)], devices_per_node, domain_nodes, stride)


def axis_placement(layout: Layout, axis: str, hardware: HardwareProfile,
                   strides: dict[str, tuple[int, int]] | None = None) -> GroupPlacement:
    """Placement of a group of ``axis`` for ``layout`` on ``hardware``; with cp > 1 the dp and dp_shard
    groups are dp × cp (dp_shard × cp) groups: every cp rank of each of their data-parallel ranks.
    ``strides``: ``axis_strides(layout)`` when the caller has it."""
    if axis in EXPERT_AXES:
        ranks = expert_group_ranks(layout, axis)
        if len(ranks) > 1:  # evenly strided: ``place`` (which records the same stride, the first gap)
            return place(len(ranks), ranks[1], hardware.node.devices_per_node, hardware.node.fast_domain_nodes)
        return place_ranks(ranks, hardware.node.devices_per_node, hardware.node.fast_domain_nodes)
    size, stride = (axis_strides(layout) if strides is None else strides)[axis]
    if layout.cp > 1 and axis in ("dp", "dp_shard"):
        ranks = sorted(d * stride + c * layout.tp for d in range(size) for c in range(layout.cp))
        return place_ranks(ranks, hardware.node.devices_per_node, hardware.node.fast_domain_nodes)
    return place(size, stride, hardware.node.devices_per_node, hardware.node.fast_domain_nodes)


def pp_boundary_devices(layout: Layout, hardware: HardwareProfile) -> tuple[tuple[int, ...], bool]:
    """Devices of one node that send to the next stage across a fast-domain boundary (all ranks of
    the sending stage inside that node), and whether any stage boundary leaves a fast domain at all."""
    d = hardware.node.devices_per_node
    per_domain = hardware.node.fast_domain_devices
    strides = axis_strides(layout)
    pp_stride = strides["pp"][1]
    if layout.pp == 1:
        return (), False
    # ranks of stage s in the first replica (every axis but pp at index 0 except the inner ones)
    inner = [a for a in ("tp", "cp", "dp") if strides[a][1] < pp_stride]
    block = 1
    for a in inner:
        block *= strides[a][0]
    for s in range(layout.pp - 1):
        send = [s * pp_stride + r for r in range(block)]
        recv = [(s + 1) * pp_stride + r for r in range(block)]
        if any(a // per_domain != b // per_domain for a, b in zip(send, recv)):
            node = send[-1] // d
            return tuple(r % d for r in send if r // d == node), True
    return (), False


def tier_mapping(layout: Layout, hardware: HardwareProfile) -> list[str]:
    """Which parallel dims sit on which network tier, one entry per dim of degree > 1 (the expert dims
    ep / etp last, placed on Megatron-Core's expert grid): ``tp8: node``, ``pp9: fast domain (72 GPUs)``, ``dp16: network``, or a split
    ``dp32: 4 per fast domain x 8 over the network``."""
    node = hardware.node
    out = []
    expert = [a for a in ("etp", "ep") if layout.ep > 1 and (a == "ep" or layout.expert_tp > 1)]
    for axis in [a for a in layout.rank_order.split("-")] + expert:  # expert groups: Megatron's expert grid
        group = axis_placement(layout, axis, hardware)
        if group.size <= 1:
            continue
        name = f"{axis}{group.size}"
        if group.nodes == 1:
            tier = "node" if group.domain_nodes == 1 else f"fast domain ({node.fast_domain_devices} GPUs)"
        elif group.ranks_per_node == 1:
            tier = "network"
        else:
            where = "node" if node.fast_domain_nodes == 1 else "fast domain"
            tier = f"{group.ranks_per_node} per {where} x {group.nodes} over the network"
        out.append(f"{name}: {tier}")
    return out
