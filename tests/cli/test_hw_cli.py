"""``paraplan hw list`` / ``paraplan hw show``: tables, JSON, and one-line errors for bad profiles."""

from __future__ import annotations

import json

import pytest
import yaml

from hwprofiles.loader import hardware_dir, list_hardware


def _profile_yaml(name: str) -> dict:
    return yaml.safe_load((hardware_dir() / f"{name}.yaml").read_text())


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_list_table_names_every_profile(run_cli):
    res = run_cli("hw", "list")
    assert res.exit_code == 0, res.stderr
    for name in list_hardware():
        assert name in res.stdout
    assert "bf16 TFLOPS" in res.stdout and "NIC GB/s/node" in res.stdout


def test_list_json_has_one_row_per_profile(run_cli):
    res = run_cli("hw", "list", "--json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(list_hardware())
    frontier = by_name["mi250x-frontier"]
    assert (frontier["devices_per_node"], frontier["bf16_tflops"], frontier["nic_gbps_per_node"]) == (8, 191.5, 100.0)
    assert frontier["topology"].endswith("dragonfly")


def test_show_renders_matrix_nics_rings_and_notes(run_cli):
    res = run_cli("hw", "show", "mi250x-frontier")
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    for text in ("200 GB/s/dir xgmi: gpu0-gpu1", "nic3", "ring busbw bound", "dragonfly", "unconfirmed",
                 "off-node GB/s per device with all 8 sending: 12.5", "OLCF"):
        assert text in out, text


def test_show_json_carries_profile_and_topology(run_cli):
    res = run_cli("hw", "show", "mi250x-frontier", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["profile"]["name"] == "mi250x-frontier"
    topo = data["topology"]
    assert topo["link_matrix_gbps"][0][1] == 200.0 and topo["link_matrix_gbps"][0][3] == 0.0
    assert topo["p2p_matrix_gbps"][0][3] == 50.0
    assert [g["ring_bandwidth_gbps"] for g in topo["ring_groups"]] == pytest.approx([200.0, 100.0, 200.0])
    assert [n["attached_to"] for n in topo["nics"]] == [["gpu1"], ["gpu3"], ["gpu5"], ["gpu7"]]


def test_show_accepts_a_path(run_cli, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(_profile_yaml("h100-sxm-80gb")))
    res = run_cli("hw", "show", str(path), "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["topology"]["ring_groups"][-1]["ring_bandwidth_gbps"] == 450.0


def test_show_applies_a_calibration_overlay(run_cli, tmp_path):
    overlay = tmp_path / "cal.yaml"
    overlay.write_text(yaml.safe_dump({
        "base": "h100-sxm-80gb", "calibration": {"date": "2026-11-27"},
        "device": {"memory_efficiency": 0.9},
        "sources": {"device.memory_efficiency": "measured by paraplan validate on 2026-11-27"},
    }))
    res = run_cli("hw", "show", "h100-sxm-80gb", "--calibration", str(overlay), "--json")
    assert res.exit_code == 0, res.stderr
    profile = json.loads(res.stdout)["profile"]
    assert profile["device"]["memory_efficiency"] == 0.9
    assert any("calibration overlay" in n for n in profile["notes"])


def test_unknown_name_exits_2_with_suggestions(run_cli):
    res = run_cli("hw", "show", "mi250x")
    assert res.exit_code == 2
    assert "mi250x-frontier" in _one_line(res.stderr)


def test_misspelled_key_exits_2_naming_field_and_file(run_cli, tmp_path):
    data = _profile_yaml("a100-sxm-80gb")
    data["device"]["hbm_bandwith_gbps"] = data["device"].pop("hbm_bandwidth_gbps")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(data))
    res = run_cli("hw", "show", str(path))
    assert res.exit_code == 2
    line = _one_line(res.stderr)
    assert str(path) in line and "device.hbm_bandwith_gbps" in line
    assert "Traceback" not in res.stderr


def test_negative_bandwidth_exits_2_naming_field_and_file(run_cli, tmp_path):
    data = _profile_yaml("mi250x-frontier")
    data["node"]["links"][4]["bandwidth_gbps"] = -50.0
    path = tmp_path / "negative.yaml"
    path.write_text(yaml.safe_dump(data))
    res = run_cli("hw", "show", str(path))
    assert res.exit_code == 2
    line = _one_line(res.stderr)
    assert str(path) in line and "node.links.4.bandwidth_gbps" in line and "greater than 0" in line


def test_malformed_yaml_exits_2(run_cli, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ndevice: [unclosed\n")
    res = run_cli("hw", "show", str(path))
    assert res.exit_code == 2
    line = _one_line(res.stderr)
    assert "malformed YAML" in line and str(path) in line


def test_missing_file_exits_2(run_cli, tmp_path):
    res = run_cli("hw", "show", str(tmp_path / "nope.yaml"))
    assert res.exit_code == 2
    assert "no such file" in _one_line(res.stderr)
