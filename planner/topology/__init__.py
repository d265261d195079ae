"""Intra-node topology: the link graph of a node, and the bandwidths collectives can reach on it.

Units: every bandwidth is GB/s (1e9 bytes/s) **per direction**.

- :func:`node_graph`: link graph (planner.topology.linkgraph, a networkx-style Graph) with devices (``gpuN``),
  NICs and switches as nodes (planner.topology.node).
- :func:`p2p_bandwidth_gbps`: widest-path bandwidth between two devices.
- :func:`ring_bandwidth_gbps` (planner.topology.rings): bus bandwidth a set of rings over some devices reaches (the
  nccl-tests "busbw" ceiling, https://github.com/NVIDIA/nccl-tests/blob/master/doc/PERFORMANCE.md).
- :func:`nic_for_device`, :func:`offnode_bandwidth_per_device_gbps`: NIC sharing.

Results are cached per NodeSpec content (NodeSpec holds lists, so it is not hashable; the cache
key is its JSON dump).
"""

from .node import (
    describe_topology,
    device_name,
    nic_for_device,
    node_graph,
    offnode_bandwidth_per_device_gbps,
    p2p_bandwidth_gbps,
)
from .rings import EXHAUSTIVE_RING_DEVICES, SAMPLED_RINGS, ring_bandwidth_gbps

__all__ = ["EXHAUSTIVE_RING_DEVICES", "SAMPLED_RINGS", "describe_topology", "device_name", "nic_for_device", "node_graph",
           "offnode_bandwidth_per_device_gbps", "p2p_bandwidth_gbps", "ring_bandwidth_gbps"]
