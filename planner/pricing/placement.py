"""Where the ranks of a mesh axis sit: ranks per node, nodes spanned, which devices of a node.

Rank order is DeviceMesh order [dp, pp, cp, tp] with tp fastest (torchtitan, Megatron-LM), so
a tp group is contiguous and dp groups are the farthest apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import HardwareProfile, Layout


@dataclass(frozen=True, slots=True)
class GroupPlacement:
    """One communication group of an axis, as placed on the cluster."""

    size: int  # ranks in the group
    stride: int  # rank distance between consecutive members
    ranks_per_node: int  # members that share a node (g)
    nodes: int  # nodes the group spans (k)
    node_devices: tuple[int, ...]  # device indices of the members inside one node
    span_nodes: int  # nodes from the first member's node to the last member's node

    @property
    def intra_node(self) -> bool:
        """True when the whole group sits inside one node."""
        return self.nodes == 1


def axis_stride(layout: Layout, axis: str) -> tuple[int, int]:
    """(group size, rank stride) of ``axis`` in the [dp, pp, cp, tp] rank grid."""
    tp, cp, pp = layout.tp, layout.cp, layout.pp
    shard = layout.shard_degree
    table = {
        "tp": (tp, 1),
        "cp": (cp, tp),
        "pp": (pp, tp * cp),
        "dp": (layout.dp, tp * cp * pp),
        "dp_shard": (shard, tp * cp * pp),
        "dp_replicate": (layout.dp // shard, tp * cp * pp * shard),
    }
    return table[axis]


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


def place_ranks(ranks: list[int], devices_per_node: int) -> GroupPlacement:
    """Placement of the group made of ``ranks`` (in order)."""
    nodes = [r // devices_per_node for r in ranks]
    first = nodes[0]
    in_first = tuple(r % devices_per_node for r, n in zip(ranks, nodes) if n == first)
    stride = ranks[1] - ranks[0] if len(ranks) > 1 else 1
    return GroupPlacement(len(ranks), stride, len(in_first), len(set(nodes)), in_first, nodes[-1] - nodes[0] + 1)


def place(size: int, stride: int, devices_per_node: int) -> GroupPlacement:
    """Placement of the group {0, stride, 2*stride, ...} of ``size`` ranks (symmetric for all groups
    when degrees divide the node size, which the search keeps by default)."""
    ranks = [j * stride for j in range(size)]
    nodes = [r // devices_per_node for r in ranks]
    first = nodes[0]
    in_first = tuple(r % devices_per_node for r, n in zip(ranks, nodes) if n == first)
    g = len(in_first)
    k = len(set(nodes))
    return GroupPlacement(size, stride, g, k, in_first, nodes[-1] - nodes[0] + 1)


def axis_placement(layout: Layout, axis: str, hardware: HardwareProfile) -> GroupPlacement:
    """Placement of a group of ``axis`` for ``layout`` on ``hardware``."""
    if axis in EXPERT_AXES:
        return place_ranks(expert_group_ranks(layout, axis), hardware.node.devices_per_node)
    size, stride = axis_stride(layout, axis)
    return place(size, stride, hardware.node.devices_per_node)


def pp_boundary_devices(layout: Layout, hardware: HardwareProfile) -> tuple[tuple[int, ...], bool]:
    """Devices of one node that send to the next stage across a node boundary (all ranks of the
    sending stage inside that node), and whether any stage boundary crosses nodes at all."""
    d = hardware.node.devices_per_node
    block = layout.tp * layout.cp  # ranks per stage in one replica
    if layout.pp == 1:
        return (), False
    crosses = False
    senders: tuple[int, ...] = ()
    for s in range(layout.pp - 1):
        last_rank = (s + 1) * block - 1
        first_next = (s + 1) * block
        if last_rank // d != first_next // d:
            crosses = True
            node = last_rank // d
            senders = tuple(r % d for r in range(s * block, (s + 1) * block) if r // d == node)
            break
    return senders, crosses
