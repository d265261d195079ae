"""``paraplan model list`` / ``paraplan model show``: tables, JSON schemas, bad input."""

from __future__ import annotations

import json
from pathlib import Path

from hwprofiles.loader import list_models

HF = Path(__file__).resolve().parents[1] / "data" / "hf"


def test_list_json_has_every_zoo_model(run_cli):
    res = run_cli("model", "list", "--json")
    assert res.exit_code == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == list_models()
    llama = next(r for r in rows if r["name"] == "llama3-8b")
    assert llama["kv_heads"] == 8 and llama["ffn_kind"] == "swiglu" and round(llama["params_b"], 2) == 8.03


def test_list_table(run_cli):
    res = run_cli("model", "list")
    assert res.exit_code == 0
    assert "frontier-175b" in res.stdout and "174.61" in res.stdout and "64/8" in res.stdout


def test_show_frontier_175b_json(run_cli):
    res = run_cli("model", "show", "frontier-175b", "--json")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"]["num_layers"] == 96
    params = out["parameters"]
    assert params["total"] == 174_609_555_456
    assert set(params["per_layer"]) >= {"attention", "mlp", "norms", "total"}
    assert params["embedding"] + params["position_embedding"] + params["layers_total"] + params["final_norm"] == (
        params["total"])
    flops = out["flops_per_token"]
    assert flops["seq_length"] == 2048
    assert flops["full_recompute_flops"] == flops["model_flops"] * 8 / 6


def test_show_table_splits_the_count(run_cli):
    res = run_cli("model", "show", "mixtral-8x7b", "--seq", "4096")
    assert res.exit_code == 0
    for text in ("per layer: attention", "per layer: mlp (all experts)", "active per token", "total",
                 "46.70 B", "12.88 B", "seq 4096"):
        assert text in res.stdout


def test_show_hf_config_by_path(run_cli):
    res = run_cli("model", "show", str(HF / "llama3-8b" / "config.json"), "--json")
    assert res.exit_code == 0, res.stderr
    assert abs(json.loads(res.stdout)["parameters"]["total"] / 8.03e9 - 1) < 0.005


def test_unknown_model_suggests_and_exits_2(run_cli):
    res = run_cli("model", "show", "frontier-175")
    assert res.exit_code == 2
    assert "unknown model 'frontier-175'" in res.stderr and "frontier-175b" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_config_missing_hidden_size_exits_2(run_cli, tmp_path):
    data = json.loads((HF / "llama3-8b" / "config.json").read_text())
    del data["hidden_size"]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    res = run_cli("model", "show", str(path))
    assert res.exit_code == 2
    assert f"{path}: hidden_size: required key missing for model_type llama" in res.stderr.replace("\n", "")


def test_malformed_json_exits_2(run_cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    res = run_cli("model", "show", str(path))
    assert res.exit_code == 2
    assert "malformed JSON" in res.stderr and "config.json" in res.stderr


def test_missing_file_exits_2(run_cli, tmp_path):
    res = run_cli("model", "show", str(tmp_path / "nope.yaml"))
    assert res.exit_code == 2
    assert "no such file" in res.stderr


def test_bad_seq_exits_2(run_cli):
    res = run_cli("model", "show", "gpt3-125m", "--seq", "0")
    assert res.exit_code == 2
    assert "--seq: must be a positive number of tokens, got 0" in res.stderr
