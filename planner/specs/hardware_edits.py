"""Edits of a hardware profile's data that touch several fields at once: every NIC, every intra-node link,
every datatype's peak, the whole GEMM efficiency curve, set to a value or scaled (``x2``). The what-if keys
``hardware.nic_bandwidth`` ... (planner.whatif.keys) and the bottleneck analysis's 2x faster links and NICs
(planner.cost.bottleneck) make the same edit. Each takes the scenario mapping (``data["hardware"]`` a
HardwareProfile dump), the value text (units as in planner.units) and the key (for messages), edits in
place and returns notes."""

from __future__ import annotations

from typing import Callable

from ..units import resolve


def is_nic_link(link: dict, nic_names: set[str]) -> bool:
    """Whether ``link`` (a NodeSpec link mapping) ends at one of the NICs ``nic_names``."""
    return link["a"] in nic_names or link["b"] in nic_names


def set_nic_bandwidth(data: dict, text: str, key: str) -> list[str]:
    """Every NIC (and the host link feeding it) to ``text`` per NIC, or scaled by ``x``."""
    node = data["hardware"]["node"]
    names = {nic["name"] for nic in node["nics"]}
    for nic in node["nics"]:
        old = nic["bandwidth_gbps"]
        nic["bandwidth_gbps"] = resolve(text, old, "bandwidth", 1e9, field=key)
        ratio = nic["bandwidth_gbps"] / old
        for link in node["links"]:
            if link["a"] == nic["name"] or link["b"] == nic["name"]:
                link["bandwidth_gbps"] *= ratio
    total = sum(n["bandwidth_gbps"] for n in node["nics"])
    return [f"{key}: {len(names)} NICs, {total:g} GB/s per node per direction (NIC host links scaled alike)"]


def set_link_bandwidth(data: dict, text: str, key: str) -> list[str]:
    """Every intra-node device/switch link (not NIC links) to ``text``, or scaled by ``x``."""
    node = data["hardware"]["node"]
    names = {nic["name"] for nic in node["nics"]}
    links = [link for link in node["links"] if not is_nic_link(link, names)]
    for link in links:
        link["bandwidth_gbps"] = resolve(text, link["bandwidth_gbps"], "bandwidth", 1e9, field=key)
    return [f"{key}: {len(links)} intra-node links changed"]


def set_peak_tflops(data: dict, text: str, key: str) -> list[str]:
    """Every datatype's dense peak scaled (``x1.5``) or set."""
    peaks = data["hardware"]["device"]["peak_tflops"]
    for dtype, value in peaks.items():
        if value is not None:
            peaks[dtype] = resolve(text, value, "flops", 1e12, field=key)
    return []


def set_gemm_efficiency(data: dict, text: str, key: str) -> list[str]:
    """The whole GEMM efficiency curve scaled (capped at 1)."""
    for point in data["hardware"]["device"]["gemm_efficiency"]:
        point["efficiency"] = min(1.0, resolve(text, point["efficiency"], None, field=key))
    return []


#: what-if key -> edit
HARDWARE_EDITS: dict[str, Callable[[dict, str, str], list[str]]] = {
    "hardware.nic_bandwidth": set_nic_bandwidth,
    "hardware.link_bandwidth": set_link_bandwidth,
    "hardware.peak_tflops": set_peak_tflops,
    "hardware.gemm_efficiency": set_gemm_efficiency,
}
