"""Exports that launch: each runs 2 training steps on CPU under torchrun with gloo, and the state read
back from the running job equals the plan (issue 25).

The plans are Llama 3 8B's architecture scaled down (widths / 64, heads / 8, KV heads / 4, 4 layers,
sequence 64) with the layout degrees of a real plan: a torchtitan FSDP2 export (dp 2), a torchtitan
tp 2 x pp 2 export with the plan's own uneven stage split, and a DeepSpeed ZeRO-3 export (dp 2). The
runners (launch_torchtitan.py, launch_deepspeed.py) state what they change for a CPU machine.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hwprofiles import load_hardware, load_model
from planner.exports import export_files
from planner.frameworks.common import virtual_stage_layers
from planner.scenario import Scenario
from planner.specs import Layout, TrainingSpec, micro_batches_per_step

pytestmark = [pytest.mark.frameworks, pytest.mark.launch]
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEQ = 64
#: A rank killed by SIGSEGV / SIGABRT inside torch's CPU gloo path (torch 2.13: seen in CI on a loaded and on a quiet
#: machine, in a rank that had raised no Python error): the job is run once more; any other failure is final.
NATIVE_CRASH = re.compile(r"exitcode\s*:\s*-(6|11)\b")
TIMEOUT_S = 900  # one job: 2 steps of a 4-layer model; generous for a loaded 2-core machine


def tiny_llama3():
    """Llama 3 8B's architecture with its dimensions divided (GQA 2:1 kept as 4 heads : 2 KV heads)."""
    m = load_model("llama3-8b")
    return m.replace(name="llama3-8b-tiny", hidden_size=m.hidden_size // 64, num_heads=m.num_heads // 8,
                     num_kv_heads=m.kv_heads // 4, ffn_hidden_size=m.ffn_hidden_size // 64,
                     vocab_size=m.vocab_size // 64, num_layers=4)


def scenario(layout: Layout, **training) -> Scenario:
    return Scenario(model=tiny_llama3(), hardware=load_hardware("h100-sxm-80gb"), gpus=layout.gpus,
                    layout=layout, training=TrainingSpec(seq_length=SEQ, micro_batch_size=1, **training))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(site: Path, runner: str, sc: Scenario, fmt: str, tmp: Path) -> list[dict]:
    """Write the plan's export(s), run ``runner`` under torchrun on CPU; each rank's JSON state."""
    plan, out = tmp / "plan", tmp / "out"
    plan.mkdir()
    out.mkdir()
    for f in {fmt, "torchtitan"}:  # the DeepSpeed runner builds the model from the torchtitan export
        for name, text in export_files(f, sc).items():
            (plan / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT), str(HERE)]),
               PYTHONWARNINGS="ignore", DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PARAPLAN_SEQ=str(SEQ))
    for attempt in range(2):  # once more only when a rank died by a signal inside torch (below)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(sc.gpus), "--master-addr",
               "127.0.0.1", "--master-port", str(free_port()), str(HERE / runner), str(plan), str(out)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if proc.returncode == 0 or attempt or not NATIVE_CRASH.search(proc.stdout + proc.stderr):
            break
        for stale in out.glob("rank*.json"):  # the rerun writes every rank's state afresh
            stale.unlink()
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(sc.gpus)]


def test_torchtitan_fsdp_export_trains_as_planned(site, tmp_path):
    sc = scenario(Layout(dp=2, fsdp=True), global_batch_size=4, recompute="op")
    ranks = launch(site, "launch_torchtitan.py", sc, "torchtitan", tmp_path)
    m = micro_batches_per_step(sc.layout, sc.training)
    for r in ranks:
        assert r["steps"] == 2 and r["world"] == 2
        assert r["mesh"] == {"dp_replicate": 1, "dp_shard": 2, "tp": 1, "pp": 1, "cp": 1}
        assert r["gradient_accumulation_steps"] == m == 2
        (part,) = r["parts"]
        assert part["forwards_last_step"] == m  # one forward per micro-batch
        assert part["checkpointed"] == part["layers"] == [f"layers.{i}" for i in range(4)]
    # ZeRO-3 / FSDP2: every parameter split over the 2 ranks, the shards adding up to the whole
    names = ranks[0]["parts"][0]["params"]
    for name in names:
        shards = [r["parts"][0]["params"][name] for r in ranks]
        assert sum(s["local"] for s in shards) == shards[0]["full"], name
        assert all(s["local"] < s["full"] for s in shards), name


def test_torchtitan_tp_pp_export_runs_the_planned_stages(site, tmp_path):
    lay = Layout(tp=2, pp=2, dp=1, sequence_parallel=True, schedule="1f1b", stage_layers=[3, 1])
    sc = scenario(lay, global_batch_size=4, recompute="full")
    ranks = launch(site, "launch_torchtitan.py", sc, "torchtitan", tmp_path)
    m = micro_batches_per_step(lay, sc.training)
    expected = virtual_stage_layers(lay, sc.model)  # [3, 1]
    for r in ranks:
        assert r["steps"] == 2 and r["mesh"] == {"dp_replicate": 1, "dp_shard": 1, "tp": 2, "pp": 2, "cp": 1}
        assert r["pipeline_microbatches"] == m == 4 and r["gradient_accumulation_steps"] == 1
        (part,) = r["parts"]
        assert part["forwards_last_step"] == m
        stage = part["stage"]
        first = sum(expected[:stage])
        assert part["layers"] == [f"layers.{i}" for i in range(first, first + expected[stage])]
        assert (part["has_embedding"], part["has_head"]) == (stage == 0, stage == lay.pp - 1)
        assert part["checkpointed"] == part["layers"]
        # tensor parallel: the attention and FFN projections are split over tp, the norms are not
        for name, p in part["params"].items():
            if any(k in name for k in ("wqkv", "wo", "w1", "w2", "w3")):
                assert p["local"] * lay.tp == p["full"], name
            if name.endswith("norm.weight"):
                assert p["local"] == p["full"], name
    assert sorted(r["parts"][0]["stage"] for r in ranks) == [0, 0, 1, 1]


def test_deepspeed_zero3_export_trains_as_planned(site, tmp_path):
    sc = scenario(Layout(dp=2, zero_stage=3), global_batch_size=4)
    ranks = launch(site, "launch_deepspeed.py", sc, "deepspeed", tmp_path)
    m = micro_batches_per_step(sc.layout, sc.training)
    for r in ranks:
        assert (r["zero_stage"], r["dp"], r["micro"], r["accumulation"]) == (3, 2, 1, m) and m == 2
        assert r["bf16"] and r["offload_optimizer"] is None and r["offload_param"] is None  # plan: no offload
        assert r["global_steps"] == 2 and r["forwards"] == 2 * m
        assert all(loss == loss and loss > 0 for loss in r["losses"])  # finite
    for name in ranks[0]["params"]:
        shards = [r["params"][name] for r in ranks]  # ZeRO-3 partitions every parameter over dp
        assert sum(s["local"] for s in shards) >= shards[0]["full"] > max(s["local"] for s in shards), name
