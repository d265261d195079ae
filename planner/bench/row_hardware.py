"""The hardware a published row ran on, where its cells state more than the profile's defaults: the board power
limit of its hardware cell ("500 W") and the inter-node bandwidth per node of its interconnect cell ("800 Gbps
inter-node per node", or its links: "4x Omni-Path (OPA) 100 Gb/s links per node", "InfiniBand 8x50 GB/s per
node"). Each returns the profile unchanged when the row states nothing or the same."""

from __future__ import annotations

import re

from ..specs import HardwareProfile
from .cells import Unmappable, row_power_limit

#: An interconnect cell stating the bandwidth a node has off the node, Gbit/s ("800 Gbps inter-node per node").
NODE_NETWORK = re.compile(r"(\d+(?:\.\d+)?)\s*Gb(?:ps|/s)\s+inter-node per node", re.I)
#: An interconnect cell stating a node's links, count x rate, before "per node" ("8x HDR 200Gb/s InfiniBand per node",
#: "4x Slingshot-11 200 Gb/s NICs per node", "InfiniBand 8x50 GB/s per node"): Gbit/s (Gb/s, Gbps) or GByte/s (GB/s),
#: told apart by case. A rate "per GPU" is not a node's.
NODE_LINKS = re.compile(r"(\d+)\s*[xX×]\s*(?:[A-Za-z][\w\-() ]*?\s)?(\d+(?:\.\d+)?)\s*(Gb/s|Gbps|GB/s)[^;]*?\bper node")


def row_hardware(hw: HardwareProfile, row: dict[str, str]) -> HardwareProfile:
    """``hw`` with the power limit and the per-node network the row's cells state."""
    return with_node_network(with_power_limit(hw, row_power_limit(row["hardware"])), row_node_network_gbit(row))


def row_node_network_gbit(row: dict[str, str]) -> float | None:
    """The node's total inter-node bandwidth the interconnect cell states, Gbit/s, or None: a stated total
    (``NODE_NETWORK``), else its links' count times their rate (``NODE_LINKS``)."""
    cell = row.get("interconnect", "")
    m = NODE_NETWORK.search(cell)
    if m:
        return float(m.group(1))
    m = NODE_LINKS.search(cell)
    if not m:
        return None
    rate = float(m.group(2)) * (8.0 if m.group(3) == "GB/s" else 1.0)
    return int(m.group(1)) * rate


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
