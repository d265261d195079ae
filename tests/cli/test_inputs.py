"""Inputs bounded and recognised (issue 24): ``-`` reads standard input, a Hugging Face config is
recognised by its content whatever its name, names read from files lose control characters, and a
calibration overlay is checked as an overlay (errors name it; a whole profile is refused; a figure
moved more than 10x from the base warns)."""

from __future__ import annotations

import io
import json
import sys

import yaml

from hwprofiles.loader import hardware_dir

HF = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
      "intermediate_size": 512, "vocab_size": 1000}
RUN = ["-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16"]


def test_dash_reads_the_model_from_standard_input(run_cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(HF).encode())))
    res = run_cli("estimate", "-m", "-", *RUN, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["model"] == "stdin"


def test_a_config_is_recognised_by_its_content(run_cli, tmp_path):
    for name, text in (("params.txt", json.dumps(HF)), ("arch.json", json.dumps(
            {**{k: v for k, v in HF.items() if k != "model_type"}, "architectures": ["LlamaForCausalLM"]})),
                       ("saved.yaml", yaml.safe_dump(HF))):
        (tmp_path / name).write_text(text)
        res = run_cli("model", "show", tmp_path / name, "--json")
        assert res.exit_code == 0, (name, res.stderr)
        assert json.loads(res.stdout)["model"]["ffn_kind"] == "swiglu"


def test_control_characters_are_stripped_from_names_read_from_files(run_cli, tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({**HF, "_name_or_path": "org/evil\u001b[2J\u202ename\r"}))
    res = run_cli("model", "show", tmp_path / "c.json", "--json")
    assert json.loads(res.stdout)["model"]["name"] == "evil[2Jname"
    assert "\x1b" not in run_cli("model", "show", tmp_path / "c.json").stdout


def test_overlay_errors_name_the_overlay_and_the_option(run_cli, tmp_path):
    (tmp_path / "o.yaml").write_text("device: {memory_efficiency: 7}\nsources: {device: measured}\n")
    res = run_cli("estimate", "-m", "gpt3-125m", *RUN, "--calibration", tmp_path / "o.yaml")
    assert res.exit_code == 2
    assert f"{tmp_path / 'o.yaml'}: --calibration: device.memory_efficiency" in res.stderr
    assert "a100-sxm-80gb.yaml" not in res.stderr


def test_a_whole_profile_is_not_an_overlay(run_cli):
    res = run_cli("hw", "show", "a100-sxm-80gb", "--calibration", hardware_dir() / "h100-sxm-80gb.yaml")
    assert res.exit_code == 2 and "a whole hardware profile, not a calibration overlay" in res.stderr


def test_an_overlay_moving_a_figure_tenfold_warns(run_cli, tmp_path):
    (tmp_path / "o.yaml").write_text("device: {kernel_overhead_us: 900}\n"
                                     "sources: {device.kernel_overhead_us: measured by paraplan validate}\n")
    res = run_cli("estimate", "-m", "gpt3-125m", "-H", "cpu-host", "-g", "2", "--global-batch", "4",
                  "--calibration", tmp_path / "o.yaml")
    assert res.exit_code == 0, res.stderr
    assert "warning: --calibration" in res.stderr and "device.kernel_overhead_us moves from 10 to 900" in res.stderr
