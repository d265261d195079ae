"""The hardware a published row ran on, where its cells state more than the profile's defaults: the board power
limit of its hardware cell ("500 W") and the inter-node bandwidth per node of its interconnect cell ("800 Gbps
inter-node per node"). Each returns the profile unchanged when the row states nothing or the same."""

from __future__ import annotations

import re

from ..specs import HardwareProfile
from .cells import Unmappable, row_power_limit

#: An interconnect cell stating the bandwidth a node has off the node, Gbit/s ("800 Gbps inter-node per node").
NODE_NETWORK = re.compile(r"(\d+(?:\.\d+)?)\s*Gb(?:ps|/s)\s+inter-node per node", re.I)


def row_hardware(hw: HardwareProfile, row: dict[str, str]) -> HardwareProfile:
    """``hw`` with the power limit and the per-node network the row's cells state."""
    return with_node_network(with_power_limit(hw, row_power_limit(row["hardware"])), row_node_network_gbit(row))


def row_node_network_gbit(row: dict[str, str]) -> float | None:
    """The node's total inter-node bandwidth the interconnect cell states, Gbit/s, or None."""
    m = NODE_NETWORK.search(row.get("interconnect", ""))
    return float(m.group(1)) if m else None


def with_power_limit(hw: HardwareProfile, watts: float | None) -> HardwareProfile:
    """``hw`` at the board power limit a row's hardware cell states, when that differs from the limit the
    profile runs at and the device has a clock table (device.tensor_clock_by_power); else ``hw``."""
    if watts is None or not hw.device.tensor_clock_by_power:
        return hw
    if watts == (hw.device.power_limit_w or hw.device.compute_curves_power_w):
        return hw
    data = hw.model_dump()
    data["device"]["power_limit_w"] = watts
    return _revalidated(data, f"power limit {watts:g} W")


def with_node_network(hw: HardwareProfile, gbit: float | None) -> HardwareProfile:
    """``hw`` with its NICs scaled so that a node's inter-node bandwidth totals ``gbit`` Gbit/s (each NIC keeps its
    share and its devices: fewer or slower NICs than the profile's node, as a row's cluster states); else ``hw``."""
    total = sum(nic.bandwidth_gbps for nic in hw.node.nics)  # GB/s
    if gbit is None or not total or abs(gbit / 8.0 - total) < 1e-9:
        return hw
    scale = gbit / 8.0 / total
    data = hw.model_dump()
    for nic in data["node"]["nics"]:
        nic["bandwidth_gbps"] *= scale
    return _revalidated(data, f"node network {gbit:g} Gbit/s")


def _revalidated(data: dict, what: str) -> HardwareProfile:
    """The profile of the edited ``data``; Unmappable naming ``what`` the row stated when it is not valid."""
    try:
        return HardwareProfile.model_validate(data)
    except ValueError as exc:
        raise Unmappable(f"{what}: {str(exc).splitlines()[-1].strip()}") from None
