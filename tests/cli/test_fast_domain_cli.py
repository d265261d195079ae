"""CLI: the GB200 NVL72 profile and the network-tier line of ``plan``."""

import json


def test_hw_show_gb200_nvl72_shows_the_72_gpu_domain(run_cli):
    r = run_cli("hw", "show", "gb200-nvl72")
    assert r.exit_code == 0, r.stderr
    assert "fast domain: 18 nodes x 4 = 72 devices" in r.stdout and "tdp_w" in r.stdout


def test_plan_json_names_the_tiers_and_refuses_a_bad_rank_order(run_cli):
    args = ["plan", "--model", "llama3-8b", "--hardware", "h100-sxm-80gb", "--gpus", "16", "--global-batch", "32",
            "--seq", "4096", "--top", "2"]
    r = run_cli(*args, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["tiers"]
    bad = run_cli(*args, "--rank-order", "dp-tp")
    assert bad.exit_code == 2 and "--rank-order" in bad.stderr


def test_whatif_names_the_tp_overlap_style(run_cli):
    r = run_cli("whatif", "--model", "llama3-70b", "--hardware", "h100-sxm-80gb", "--gpus", "64", "--tp", "8",
                "--pp", "4", "--global-batch", "128", "--seq", "8192", "--sequence-parallel",
                "--set", "training.tp_comm_overlap=true training.tp_overlap_style=ring-exchange", "--json")
    assert r.exit_code == 0, r.stderr
    assert "ring-exchange" in r.stdout
