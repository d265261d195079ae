"""``paraplan hw list`` and ``paraplan hw show NAME|PATH``: hardware profiles and their node topology."""

from __future__ import annotations

from typing import Optional

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from hwprofiles.loader import list_hardware, load_hardware

from ..specs import HardwareProfile
from ..topology import (
    describe_topology,
    node_graph,
    offnode_bandwidth_per_device_gbps,
    p2p_bandwidth_gbps,
    ring_bandwidth_gbps,
)
from .app import JSON_OPTION, app, console, print_json

hw_app = typer.Typer(help="Hardware profiles: devices, node topology, network.", no_args_is_help=True)
app.add_typer(hw_app, name="hw")

GROUP_SIZES = (2, 4, 8)


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)  # built on first use (start-up)


class HardwareSummary(_Result):
    """One row of ``paraplan hw list``."""

    name: str = Field(description="profile name")
    device: str = Field(description="device name")
    devices_per_node: int = Field(description="devices (ranks) per node")
    bf16_tflops: float | None = Field(description="dense bf16 peak per device, TFLOP/s")
    hbm_gib: float = Field(description="HBM capacity per device, GiB")
    hbm_tbps: float = Field(description="HBM peak bandwidth per device, TB/s")
    nic_gbps_per_node: float = Field(description="total NIC injection bandwidth per node, GB/s per direction")
    topology: str = Field(description="intra-node links, then the network kind")


class DirectLink(_Result):
    """Device pairs joined directly by links of one bandwidth and kind."""

    bandwidth_gbps: float = Field(description="per-direction bandwidth, GB/s")
    kind: str = Field(description="link technology")
    pairs: list[str] = Field(description="'a-b' endpoint pairs")


class NicReport(_Result):
    """A NIC, the devices it serves, and where it attaches in the node graph."""

    name: str = Field(description="NIC name")
    bandwidth_gbps: float = Field(description="injection bandwidth per direction, GB/s")
    devices: list[int] = Field(description="devices served")
    attached_to: list[str] = Field(description="graph neighbours of the NIC")


class RingGroup(_Result):
    """Ring bus bandwidth of one group of contiguous devices."""

    devices: list[int] = Field(description="device indices")
    ring_bandwidth_gbps: float = Field(description="ring bus bandwidth bound, GB/s per rank per direction")


class TopologyReport(_Result):
    """Derived view of the node graph (planner.topology)."""

    summary: str = Field(description="one-line description of the intra-node links")
    link_matrix_gbps: list[list[float]] = Field(
        description="N x N direct device-device bandwidth, GB/s per direction (0 = no direct link)"
    )
    p2p_matrix_gbps: list[list[float]] = Field(
        description="N x N widest-path bandwidth between devices, GB/s per direction (0 on the diagonal)"
    )
    direct_links: list[DirectLink] = Field(description="linked pairs grouped by bandwidth (no NIC links)")
    nics: list[NicReport] = Field(description="network interfaces")
    ring_groups: list[RingGroup] = Field(description="ring bandwidth for contiguous groups of 2/4/8 devices")
    offnode_per_device_all_sending_gbps: float = Field(
        description="NIC share per device when every device of the node sends off-node, GB/s"
    )


class HardwareReport(_Result):
    """``paraplan hw show``: the profile and its derived topology."""

    profile: HardwareProfile = Field(description="the profile (calibration overlay applied, if any)")
    topology: TopologyReport = Field(description="the node graph, rendered")


def hardware_summary(hw: HardwareProfile) -> HardwareSummary:
    """The ``hw list`` row of ``hw``."""
    dev = hw.device
    return HardwareSummary(
        name=hw.name, device=dev.name, devices_per_node=hw.node.devices_per_node,
        bf16_tflops=dev.peak_tflops.bf16, hbm_gib=dev.hbm_capacity_gib,
        hbm_tbps=dev.hbm_bandwidth_gbps / 1000, nic_gbps_per_node=hw.node.nic_bandwidth_gbps,
        topology=f"{describe_topology(hw.node)}; "
                 + (f"{hw.node.fast_domain_devices}-GPU NVLink domain over {hw.node.fast_domain_nodes} nodes; "
                    if hw.node.fast_domain_nodes > 1 else "") + hw.network.topology,
    )


def topology_report(hw: HardwareProfile) -> TopologyReport:
    """Everything ``hw show`` displays about the node graph."""
    node = hw.node
    g = node_graph(node)
    n = node.devices_per_node
    direct = [[0.0] * n for _ in range(n)]
    p2p = [[0.0] * n for _ in range(n)]
    groups: dict[tuple[float, str], list[str]] = {}
    for u, v, attrs in g.edges(data=True):
        kinds = (g.nodes[u]["kind"], g.nodes[v]["kind"])
        if kinds == ("device", "device"):
            i, j = g.nodes[u]["index"], g.nodes[v]["index"]
            direct[i][j] = direct[j][i] = attrs["bandwidth_gbps"]
        if "nic" not in kinds:
            groups.setdefault((attrs["bandwidth_gbps"], attrs["kind"]), []).append(f"{u}-{v}")
    for i in range(n):
        for j in range(n):
            if i != j:
                p2p[i][j] = p2p_bandwidth_gbps(node, i, j)
    links = [DirectLink(bandwidth_gbps=bw, kind=kind, pairs=pairs)
             for (bw, kind), pairs in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]
    nics = [NicReport(name=nic.name, bandwidth_gbps=nic.bandwidth_gbps, devices=list(nic.devices),
                      attached_to=sorted(g.neighbors(nic.name)))
            for nic in node.nics]
    rings = [RingGroup(devices=list(range(k)), ring_bandwidth_gbps=ring_bandwidth_gbps(node, tuple(range(k))))
             for k in GROUP_SIZES if k <= n]
    return TopologyReport(
        summary=describe_topology(node), link_matrix_gbps=direct, p2p_matrix_gbps=p2p, direct_links=links,
        nics=nics, ring_groups=rings,
        offnode_per_device_all_sending_gbps=offnode_bandwidth_per_device_gbps(node, tuple(range(n))),
    )


@hw_app.command("list")
def list_cmd(json_out: bool = JSON_OPTION) -> None:
    """List the built-in hardware profiles."""
    rows = [hardware_summary(load_hardware(name)) for name in list_hardware()]
    if json_out:
        print_json(rows)
        return
    table = Table(title="hardware profiles (per device unless marked)")
    for col in ("name", "device", "dev/node", "bf16 TFLOPS", "HBM GiB", "HBM TB/s", "NIC GB/s/node",
                "topology"):
        table.add_column(col, justify="right" if col in ("dev/node", "bf16 TFLOPS", "HBM GiB", "HBM TB/s",
                                                           "NIC GB/s/node") else "left")
    for r in rows:
        table.add_row(r.name, r.device, str(r.devices_per_node), _num(r.bf16_tflops), f"{r.hbm_gib:g}",
                      f"{r.hbm_tbps:.2f}", f"{r.nic_gbps_per_node:g}", r.topology)
    console.print(table)


@hw_app.command("show")
def show_cmd(
    name: str = typer.Argument(..., help="Profile name (see `paraplan hw list`) or a profile YAML path."),
    calibration: Optional[str] = typer.Option(None, "--calibration", help="Calibration overlay YAML."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Show a profile: device numbers with sources, the node link graph, NICs, ring bandwidths, network."""
    hw = load_hardware(name, calibration)
    report = HardwareReport(profile=hw, topology=topology_report(hw))
    if json_out:
        print_json(report)
        return
    _render(report)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _render(report: HardwareReport) -> None:
    hw, topo = report.profile, report.topology
    console.print(f"[bold]{hw.name}[/]: {hw.description}", highlight=False)
    dev = hw.device
    table = Table(title=f"device: {dev.name}")
    for col in ("field", "value", "source"):
        table.add_column(col, overflow="fold")
    peaks = ", ".join(f"{k} {v:g}" for k, v in dev.peak_tflops.model_dump().items() if v is not None)
    curve = ", ".join(f"{p.gflop:.4g}:{p.efficiency:.3g}" for p in dev.gemm_efficiency)
    for field, value in (
        ("peak_tflops", peaks), ("hbm_capacity_gib", f"{dev.hbm_capacity_gib:g}"),
        ("hbm_bandwidth_gbps", f"{dev.hbm_bandwidth_gbps:g}"), ("gemm_efficiency", f"GFLOP:eff  {curve}"),
        ("gemm_min_dim_knee", str(dev.gemm_min_dim_knee)), ("fp8_gemm_speedup", f"{dev.fp8_gemm_speedup:g}"),
        ("memory_efficiency", f"{dev.memory_efficiency:g}"),
        ("attention_efficiency", f"{dev.attention_efficiency:g}"),
        ("attention_backward_efficiency", f"{dev.attention_backward_efficiency:g}"),
        ("optimizer_params_per_s", f"{dev.optimizer_params_per_s:.4g}"),
        ("kernel_overhead_us", f"{dev.kernel_overhead_us:g}"),
        ("reserved_memory_gib", f"{dev.reserved_memory_gib:g}"),
        ("tdp_w", _num(dev.tdp_w)), ("host_link_gbps", f"{_num(dev.host_link_gbps)} ({dev.host_link_kind or '-'}, "
                                                    f"efficiency {dev.host_link_efficiency:g})"),
    ):
        table.add_row(field, value, hw.source_for(f"device.{field}") or "")
    console.print(table)
    console.print(_matrix_table(topo))
    for link in topo.direct_links:
        pairs = ", ".join(link.pairs)
        console.print(f"  {link.bandwidth_gbps:g} GB/s/dir {link.kind}: {pairs}", highlight=False)
    nics = Table(title="NICs")
    for col in ("name", "GB/s/dir", "serves devices", "attached to"):
        nics.add_column(col)
    for nic in topo.nics:
        nics.add_row(nic.name, f"{nic.bandwidth_gbps:g}", ", ".join(map(str, nic.devices)),
                     ", ".join(nic.attached_to))
    console.print(nics)
    console.print(f"off-node GB/s per device with all {hw.node.devices_per_node} sending: "
                  f"{topo.offnode_per_device_all_sending_gbps:g}", highlight=False)
    rings = Table(title="ring busbw bound")
    rings.add_column("devices")
    rings.add_column("GB/s/rank/dir", justify="right")
    for group in topo.ring_groups:
        rings.add_row(f"{group.devices[0]}-{group.devices[-1]}", f"{group.ring_bandwidth_gbps:g}")
    console.print(rings)
    node, net = hw.node, hw.network
    console.print(
        f"intra-node collectives: efficiency {node.collective_efficiency:g} of the ring bound, "
        f"{node.collective_latency_us:g} us/step, p2p efficiency {node.p2p_efficiency:g}", highlight=False)
    if node.fast_domain_nodes > 1:
        console.print(
            f"fast domain: {node.fast_domain_nodes} nodes x {node.devices_per_node} = {node.fast_domain_devices} "
            f"devices on one fabric at {node.fast_domain_bandwidth_gbps:g} GB/s/dir per device "
            f"({hw.source_for('node.fast_domain_nodes')})", highlight=False)
    console.print(f"host: {_num(node.host_memory_gib)} GiB per node, CPU Adam "
                  f"{_num(node.cpu_adam_params_per_s)} params/s per node", highlight=False)
    console.print(
        f"network: {net.topology}, {net.latency_us:g} us/step, efficiency {net.efficiency:g}, "
        f"group {net.group_size_nodes} nodes, taper {net.taper:g}", highlight=False)
    st = hw.storage
    console.print("storage: none (checkpoint time not priced)" if st is None else
                  f"storage: {st.kind}, per node write {st.node_write_gbps:g} / read {st.node_read_gbps:g} GB/s, "
                  f"aggregate write {_num(st.aggregate_write_gbps)} / read {_num(st.aggregate_read_gbps)} GB/s "
                  f"({hw.source_for('storage.node_read_gbps')})", highlight=False)
    if hw.notes:
        console.print("[bold]notes[/]")
        for note in hw.notes:
            console.print(f"  - {note}", highlight=False)


def _matrix_table(topo: TopologyReport) -> Table:
    n = len(topo.link_matrix_gbps)
    table = Table(title="direct links, GB/s per direction; (x) = no direct link, widest path")
    table.add_column("")
    for j in range(n):
        table.add_column(f"gpu{j}", justify="right")
    for i in range(n):
        cells = []
        for j in range(n):
            direct, p2p = topo.link_matrix_gbps[i][j], topo.p2p_matrix_gbps[i][j]
            cells.append("-" if i == j else f"{direct:g}" if direct else f"[dim]({p2p:g})[/]")
        table.add_row(f"gpu{i}", *cells)
    return table
