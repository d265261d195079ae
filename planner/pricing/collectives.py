"""Time of collectives: alpha-beta model over the topology (Hockney 1994; Thakur, Rabenseifner
& Gropp 2005, doi:10.1177/1094342005051521), ring algorithm inside a node at the ring bound of
the node graph, hierarchical (two-level) across nodes with each rank's share of its NIC
(NCCL/PCCL-style; see docs/hardware_facts.md Sec. 9.3). The first level is the fast domain (a
node, or several nodes on one NVLink fabric such as GB200 NVL72). Seconds; bytes are full buffer sizes.
"""

from __future__ import annotations

import functools
import math

from ..specs import HardwareProfile
from ..topology import offnode_bandwidth_per_device_gbps, p2p_bandwidth_gbps, ring_bandwidth_gbps
from ..work.moe import expected_distinct
from .compute import interpolate_clamped
from .placement import GroupPlacement


def level_time(kind: str, n: int, nbytes: float, bandwidth_bps: float, alpha_s: float) -> float:
    """Seconds of one collective level over ``n`` ranks, ``nbytes`` per rank's full buffer, one step of latency
    ``alpha_s`` per ring hop (NCCL's ring: n - 1 steps for an all-gather or reduce-scatter, 2(n - 1) for an
    all-reduce; NVIDIA nccl src/graph/tuning.cc, ring latency = nsteps x hwLat).

    All-gather / reduce-scatter: (n-1)/n * S/B + (n-1) * alpha. All-reduce: the faster of the ring,
    2(n-1)/n * S/B + 2(n-1) * alpha, and recursive doubling, ceil(log2 n) * (alpha + S/B), which wins
    for short messages (Thakur, Rabenseifner & Gropp 2005, Sec. 4.4; NCCL's tree and LL protocols play that
    part) — the library is taken to pick the faster algorithm per message size, as NCCL's tuner does.
    """
    one_phase = (n - 1) / n * nbytes / bandwidth_bps
    if kind == "all-reduce":
        steps = math.ceil(math.log2(n))
        return min(2 * one_phase + 2 * (n - 1) * alpha_s, steps * (alpha_s + nbytes / bandwidth_bps))
    return one_phase + (n - 1) * alpha_s


class CollectivePricer:
    """Prices collectives on one hardware profile for a cluster of ``nodes`` nodes."""

    def __init__(self, hardware: HardwareProfile, nodes: int):
        self.hw = hardware
        self.nodes = nodes
        node = hardware.node
        all_devices = tuple(range(node.devices_per_node))
        self.alpha_intra = node.collective_latency_us * 1e-6
        p2p_us = node.p2p_latency_us if node.p2p_latency_us is not None else node.collective_latency_us
        self.alpha_p2p = p2p_us * 1e-6
        self.alpha_net = hardware.network.latency_us * 1e-6
        # every device of a node talks off-node at once in dp/tp collectives (all groups run together)
        self.nic_share_bps = offnode_bandwidth_per_device_gbps(node, all_devices) * 1e9 * hardware.network.efficiency

    def domain_bandwidth_bps(self, group: GroupPlacement) -> float:
        """Per-rank bandwidth of the first collective level, bytes/s: the node graph's ring bound
        over the members of one node, or, when the members of one fast domain occupy several nodes
        (GB200 NVL72), each device's fast-domain bandwidth (every GPU reaches the NVLink switches at
        that rate, so a ring over them is bounded by it), times the collective efficiency."""
        node = self.hw.node
        if group.domain_nodes > 1:
            return node.fast_domain_bandwidth_gbps * 1e9 * node.collective_efficiency
        return self.intra_bandwidth_bps(group.node_devices)

    @functools.lru_cache(maxsize=256)  # noqa: B019 - pricer lives as long as its cache is useful
    def intra_bandwidth_bps(self, devices: tuple[int, ...]) -> float:
        """Achieved ring bus bandwidth over ``devices`` of one node, bytes/s per rank per direction."""
        return ring_bandwidth_gbps(self.hw.node, devices) * 1e9 * self.hw.node.collective_efficiency

    def net_bandwidth_bps(self, group: GroupPlacement, senders: tuple[int, ...] | None = None) -> float:
        """Per-rank inter-node bandwidth, bytes/s: the rank's NIC share (all of a node's devices
        sending, or just ``senders``), divided by the network taper when the group leaves one
        dragonfly group / fat-tree pod."""
        if senders is None:
            bw = self.nic_share_bps
        else:
            bw = offnode_bandwidth_per_device_gbps(self.hw.node, senders) * 1e9 * self.hw.network.efficiency
        if group.span_nodes > self.hw.network.group_size_nodes:
            bw /= self.hw.network.taper
        return bw

    def time(self, kind: str, nbytes: float, group: GroupPlacement) -> float:
        """Seconds for one collective of ``kind`` over ``group`` on a buffer of ``nbytes``.

        Inside one fast domain: ``level_time`` over its g ranks. Across k of them: the wire time of
        both levels (inside a node over g ranks at B_in, across k nodes over the NIC share B_net with S/g
        per rank) plus NCCL's latency for a ring through all n ranks (or its tree for an all-reduce, when
        shorter); all-gather / reduce-scatter are one phase, an all-reduce two.
        """
        n = group.size
        if n <= 1 or nbytes <= 0:
            return 0.0
        if kind == "send-recv":
            return self.p2p_time(nbytes, group)
        if kind == "all-to-all":
            return self.all_to_all_time(nbytes, group)
        g, k = group.ranks_per_node, group.nodes
        if k == 1:
            return level_time(kind, g, nbytes, self.domain_bandwidth_bps(group), self.alpha_intra)
        # bandwidth by level (each rank's S/g share over its NIC share across the k nodes); latency as NCCL's
        # tuner models its algorithms over all n ranks (src/graph/tuning.cc): the ring takes n - k intra-node
        # and k - 1 inter-node steps per phase, the tree (all-reduce) (g - 1) intra and log2 k inter per phase
        wire = (g - 1) / g * nbytes / self.domain_bandwidth_bps(group) if g > 1 else 0.0
        wire += (k - 1) / k * nbytes / g / self.net_bandwidth_bps(group)
        ring = (n - k) * self.alpha_intra + (k - 1) * self.alpha_net
        if kind != "all-reduce":
            return wire + ring
        tree = (g - 1) * self.alpha_intra + math.ceil(math.log2(k)) * self.alpha_net
        return 2 * wire + 2 * min(ring, tree)

    def all_to_all_time(self, nbytes: float, group: GroupPlacement) -> float:
        """Seconds of an all-to-all in which every rank sends ``nbytes`` in total, ``nbytes / n`` to
        each of the n members (itself included).

        Pairwise exchange (Thakur, Rabenseifner & Gropp 2005, Sec. 3: (n-1)/n * S/B of data per rank),
        split by level: (g-1)/n * S to the peers inside the node over the node's links at the ring
        bus bandwidth of the member devices (on an NVSwitch node, each GPU's full NVLink bandwidth),
        (n-g)/n * S to the peers off the node over this rank's NIC share (all devices of a node send
        at once). NCCL posts all peers' sends and receives in one group (as Megatron-Core's alltoall
        token dispatcher does), so each level pays its latency once and the two levels, on different
        links, run concurrently: the slower one sets the time.
        """
        return max(self.all_to_all_parts(nbytes, group))

    def all_to_all_parts(self, nbytes: float, group: GroupPlacement, copies: int = 1, node_dedup: bool = False,
                         max_nodes: int | None = None, experts: int = 0, backend: str | None = None,
                         combine: bool = False) -> tuple[float, float]:
        """(intra-node, off-node) seconds of ``all_to_all_time``'s two concurrent levels.

        With ``node_dedup`` (the flex dispatcher; ``nbytes`` holding ``copies`` copies of each token, routed to
        ``experts`` experts spread evenly over the group) a token goes to each destination node once over the NICs
        and to each destination rank once over the node's links (DeepSeek-V3, arXiv 2412.19437, Sec. 3.2.2; DeepEP
        ``is_token_in_rank``): D_n distinct nodes per token, D_n = min(max_nodes, k_n) under node-limited routing
        (every selected node receives a copy when copies >= max_nodes), else the expected distinct nodes of
        ``copies`` uniform picks (planner.work.moe.expected_distinct); D_n (k_n - 1)/k_n of them remote. D_r
        distinct ranks (among the selected nodes' ranks under node-limited routing), D_r (g - 1)/g of them on
        another GPU of the node. When the profile has the dispatch library's measured throughput across nodes
        (``network.ep_dispatch``, by library and rank count) the off-node level is that measurement instead, on
        the bytes its benchmark counts (a token once per selected node, the own node included): the kernel's
        forwarding and SM limits are in it. "Node" is the fast domain (``domain_bandwidth_bps``: a GB200 NVL72
        rack's 72 GPUs exchange over NVLink)."""
        n = group.size
        if n <= 1 or nbytes <= 0:
            return 0.0, 0.0
        g = group.ranks_per_node
        if node_dedup:
            k_n = group.nodes
            token = nbytes / copies  # bytes of one copy of every token
            limited = max_nodes is not None and k_n > max_nodes
            if limited and copies >= max_nodes:
                nodes = float(max_nodes)
            else:
                nodes = expected_distinct(k_n, experts, copies)
            ranks = (expected_distinct(round(nodes) * g, experts * round(nodes) // k_n, copies) if limited
                     else expected_distinct(n, experts, copies))
            intra = self.alpha_intra + token * ranks * (g - 1) / g / self.domain_bandwidth_bps(group) if g > 1 else 0.0
            if k_n <= 1:
                return intra, 0.0
            measured = self.ep_dispatch_bps(backend, n, combine)
            if measured:
                return intra, token * nodes / measured
            return intra, self.alpha_net + token * nodes * (k_n - 1) / k_n / self.net_bandwidth_bps(group)
        per_peer = nbytes / n
        intra = 0.0
        if g > 1:
            intra = self.alpha_intra + (g - 1) * per_peer / self.domain_bandwidth_bps(group)
        off = n - g
        inter = self.alpha_net + off * per_peer / self.net_bandwidth_bps(group) if off else 0.0
        return intra, inter

    def ep_dispatch_bps(self, backend: str | None, ranks: int, combine: bool) -> float | None:
        """Measured throughput (bytes/s) of the dispatch library ``backend`` across ``ranks`` ranks
        (``network.ep_dispatch``, piecewise-linear in the rank count and held at its ends), its combine kernel's
        when ``combine``; None when the profile has no measurement of that library."""
        pts = sorted((p for p in self.hw.network.ep_dispatch if p.backend == backend), key=lambda p: p.ranks)
        if not pts:
            return None
        ys = [p.combine_gbps if combine else p.dispatch_gbps for p in pts]
        return interpolate_clamped([float(p.ranks) for p in pts], ys, float(ranks)) * 1e9

    def p2p_time(self, nbytes: float, group: GroupPlacement, senders: tuple[int, ...] | None = None,
                 crosses_node: bool | None = None) -> float:
        """Seconds to send ``nbytes`` to the next member: over the widest intra-node path, or over
        the NIC share when the hop crosses nodes."""
        if nbytes <= 0:
            return 0.0
        cross = group.nodes > 1 if crosses_node is None else crosses_node
        if cross:
            return nbytes / self.net_bandwidth_bps(group, senders) + self.alpha_net
        if group.domain_nodes > 1:  # the hop crosses nodes inside the fast domain
            bw = self.hw.node.fast_domain_bandwidth_gbps * 1e9 * self.hw.node.p2p_efficiency
            return nbytes / bw + self.alpha_p2p
        a, b = group.node_devices[0], group.node_devices[min(1, len(group.node_devices) - 1)]
        if a == b:
            return 0.0
        bw = p2p_bandwidth_gbps(self.hw.node, a, b) * 1e9 * self.hw.node.p2p_efficiency
        return nbytes / bw + self.alpha_p2p
