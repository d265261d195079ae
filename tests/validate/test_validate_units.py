"""Torch-free pieces of the validator: layout parsing, job checks, hang diagnosis, fits, SLURM script."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from planner.errors import SpecError
from validate.job import JobSpec, layout_for_nproc, layout_text, parse_layout, tiny_model
from validate.results import RankResult, describe_hang

pytestmark = pytest.mark.validate


def test_parse_layout_keys_and_round_trip():
    lay = parse_layout("tp=2,pp=2,vpp=2,zero=1,sp")
    assert (lay.tp, lay.pp, lay.vpp, lay.zero_stage, lay.sequence_parallel) == (2, 2, 2, 1, True)
    assert lay.schedule == "interleaved-1f1b"
    assert parse_layout(layout_text(lay)) == lay


def test_parse_layout_rejects_unknown_key():
    with pytest.raises(SpecError, match="unknown key 'xp'.*allowed"):
        parse_layout("xp=2")


def test_layout_for_nproc_infers_dp_and_shows_arithmetic():
    assert layout_for_nproc("tp=2", 4).dp == 2
    with pytest.raises(SpecError, match=r"tp\(2\) \* pp\(1\) \* dp\(1\) = 2 != nproc\(4\)"):
        layout_for_nproc("tp=2,dp=1", 4)
    with pytest.raises(SpecError, match=r"nproc\(3\) % \(tp\(2\) \* pp\(1\)\) = 1 != 0"):
        layout_for_nproc("tp=2", 3)


@pytest.mark.parametrize("text, message", [
    ("tp=2,dp=2", r"dp\(2\) with tp\(2\) needs zero=2"),
    ("pp=2,dp=2", r"dp\(2\) with pp\(2\) needs zero=2"),
    ("tp=8", r"num_heads\(4\) % tp\(8\)"),
])
def test_job_check_refuses_what_it_cannot_run(text, message):
    with pytest.raises(SpecError, match=message):
        JobSpec(model=tiny_model(), layout=parse_layout(text)).check()


def test_fsdp_recipe_needs_sharded_data_parallel_in_bf16():
    with pytest.raises(SpecError, match=r"needs dp > 1 with zero=2, zero=3 or fsdp and --dtype bf16; got dp=1"):
        JobSpec(model=tiny_model(), layout=parse_layout("tp=2"), recipe="fsdp", compute_dtype="bf16").check()
    JobSpec(model=tiny_model(), layout=parse_layout("dp=2,fsdp"), recipe="fsdp", compute_dtype="bf16").check()


@pytest.mark.parametrize(("text", "message"), [
    ("pp=2", "not wired into the pipeline schedules"), ("tp=2", "fp16 with tp=2 needs sp or FSDP2")])
def test_fp16_refuses_what_loss_scaling_cannot_run(text, message):
    with pytest.raises(SpecError, match=message):
        JobSpec(model=tiny_model(), layout=parse_layout(text), compute_dtype="fp16").check()
    JobSpec(model=tiny_model(), layout=parse_layout("tp=2,sp"), compute_dtype="fp16").check()


def test_cli_bad_layout_exit_2(run_cli):
    res = run_cli("validate", "run", "--layout", "tp=3")
    assert res.exit_code == 2 and "num_heads(4) % tp(3)" in res.stderr


def test_nccl_without_gpus_is_refused_before_any_rank_starts(run_cli):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = run_cli("validate", "run", "--layout", "tp=1", "--backend", "nccl", "--nproc", "1")
    assert res.exit_code == 2
    assert "--backend: nccl needs 1 GPU(s)" in res.stderr and "gloo" in res.stderr


def test_model_too_large_for_host_memory_is_refused_with_the_arithmetic():
    from hwprofiles import load_model
    from validate.launch import require_host_memory

    big = JobSpec(model=load_model("llama3-8b"), layout=parse_layout("tp=2"))
    with pytest.raises(SpecError, match=r"8.03 B parameters x 20 bytes x 2 ranks = 299.2 GiB .* 23.0 GiB available"):
        require_host_memory([big], available=23 * 2**30)
    require_host_memory([JobSpec(model=tiny_model(), layout=parse_layout("tp=2"))], available=23 * 2**30)


def test_describe_hang_names_the_rank_that_stopped():
    ranks = [RankResult(rank=0, phase="sync", step=2), RankResult(rank=1, phase="step", step=2),
             RankResult(rank=2, phase="sync", step=2)]
    msg = describe_hang(ranks, 30)
    assert msg.startswith("rank 1 hung: no progress past phase 'step' of step 2 within the 30 s timeout")
    assert "ranks 0, 2 were waiting for it" in msg


def test_collective_fit_recovers_alpha_and_efficiency():
    from hwprofiles import load_hardware
    from planner.topology import ring_bandwidth_gbps
    from validate.calibrate import fit_collectives

    prof = load_hardware("cpu-host")
    ring = ring_bandwidth_gbps(prof.node, (0, 1)) * 1e9
    alpha, eff, g = 300e-6, 0.25, 2
    samples = []
    for kind, phases in (("all-reduce", 2), ("all-gather", 1), ("reduce-scatter", 1)):
        for size in (4096, 1 << 20, 32 << 20):
            t = phases * ((g - 1) * alpha + (g - 1) / g * size / (ring * eff))
            samples.append({"kind": kind, "group_size": g, "nodes": 1, "ranks_per_node": g, "bytes": size,
                            "seconds": t})
    fit = fit_collectives(samples, prof)
    assert fit["node.collective_latency_us"] == pytest.approx(300.0, rel=1e-6)
    assert fit["node.collective_efficiency"] == pytest.approx(0.25, rel=1e-6)


def test_device_fit_recovers_gemm_efficiency():
    from hwprofiles import load_hardware
    from validate.benchspec import BenchSpec
    from validate.calibrate import fit_device
    from validate.results import BenchResult

    prof = load_hardware("cpu-host")
    peak = prof.device.peak_tflops.bf16 * 1e12
    overhead = 10e-6
    gemm = [{"m": m, "n": 64, "k": 64, "seconds": 2 * m * 64 * 64 / (peak * 0.5) + overhead} for m in (64, 4096)]
    rank = {"gemm": gemm, "attention": [], "copy": [], "overhead_s": overhead,
            "optimizer": {"params": 1000, "seconds": 1e-3}}
    fit, _ = fit_device(BenchResult(spec=BenchSpec(), ranks=[rank]), prof)
    assert [p["efficiency"] for p in fit["device.gemm_efficiency"]] == pytest.approx([0.5, 0.5])
    assert fit["device.kernel_overhead_us"] == pytest.approx(10.0)
    assert fit["device.optimizer_params_per_s"] == pytest.approx(1e6)


def test_slurm_script_parses(run_cli, tmp_path):
    out = tmp_path / "job.sbatch"
    res = run_cli("validate", "slurm", "--nodes", "2", "--gpus-per-node", "8", "--layout", "tp=8,pp=2",
                  "--layout", "tp=8,fsdp", "--out", out)
    assert res.exit_code == 0, res.stderr
    text = out.read_text()
    sbatch = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", text, flags=re.M))
    assert sbatch["nodes"] == "2" and sbatch["gpus-per-node"] == "8" and sbatch["ntasks-per-node"] == "1"
    assert subprocess.run(["bash", "-n", str(out)], capture_output=True).returncode == 0
    assert 'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"' in text
    assert "--rdzv-backend=c10d" in text and "--nnodes=2 --nproc-per-node=8" in text and "srun" in text
    specs = re.findall(r"<<'PARAPLAN_SPEC'\n(.*?)\nPARAPLAN_SPEC", text, flags=re.S)
    tasks = [json.loads(s) for s in specs]
    assert [t["kind"] for t in tasks] == ["train", "train", "bench"]
    jobs = [JobSpec.model_validate(t["spec"]) for t in tasks[:2]]
    assert [(j.layout.tp, j.layout.pp, j.layout.dp, j.layout.fsdp) for j in jobs] == [(8, 2, 1, False), (8, 1, 2, True)]
    assert {j.backend for j in jobs} == {"nccl"}
    assert "paraplan validate collect" in text.splitlines()[-1]


def test_collect_marks_missing_rank_partial(tmp_path):
    from validate.collect import collect

    job = JobSpec(model=tiny_model(), layout=parse_layout("dp=2"))
    (tmp_path / "job_0.json").write_text(json.dumps({"kind": "train", "spec": job.model_dump(mode="json")}))
    (tmp_path / "job_0").mkdir()
    done = RankResult(rank=0, status="done", phase="done", step=4, step_times_s=[0.1], median_step_s=0.1)
    (tmp_path / "job_0" / "rank_0.json").write_text(done.model_dump_json())
    res = collect(tmp_path, timeout_s=60)
    assert res.jobs[0].partial and res.jobs[0].error.startswith("rank 1 hung")


def test_collective_fit_recovers_send_recv_latency():
    from hwprofiles import load_hardware
    from planner.topology import p2p_bandwidth_gbps
    from validate.calibrate import fit_collectives

    prof = load_hardware("cpu-host")
    bw = p2p_bandwidth_gbps(prof.node, 0, 1) * 1e9
    samples = [{"kind": "send-recv", "group_size": 2, "nodes": 1, "ranks_per_node": 1, "bytes": size,
                "seconds": 700e-6 + size / (bw * 0.3)} for size in (4096, 1 << 20, 32 << 20)]
    fit = fit_collectives(samples, prof)
    assert fit["node.p2p_latency_us"] == pytest.approx(700.0, rel=1e-6)
    assert fit["node.p2p_efficiency"] == pytest.approx(0.3, rel=1e-6)


def test_least_squares_fits_all_parameters_jointly():
    from validate.lsq import least_squares_log

    # coupled residuals: no single-parameter line search reaches the minimum in one sweep
    def residuals(x):
        a, b = x
        return [a + b - 3.0, a - b + 1.0, 2 * a + b - 4.0]

    assert least_squares_log(residuals, [0.0, 0.0], (-1.0, 5.0)) == pytest.approx([1.0, 2.0], abs=1e-6)
    assert least_squares_log(residuals, [0.0, 0.0], (-1.0, 1.5)) [1] == pytest.approx(1.5)  # bound holds


def test_calibration_interleaves_held_out_runs():
    from planner.cli.calibrate_cmd import interleave

    order = interleave(["tp=2", "pp=2", "dp=2"], "tp=2,sp", 3)
    assert len(order) == 12 and all(order.count(t) == 3 for t in ("tp=2", "pp=2", "dp=2", "tp=2,sp"))
    assert order[0] == "tp=2,sp" and order[4] == "tp=2,sp" and order[8] == "tp=2,sp"
    assert interleave(["a"], "h", 1) == ["h", "a"]


def test_jobs_run_the_adam_their_recipe_prices():
    """torch-amp prices a fused AdamW (recipe optimizer_foreach false); untold, torch would run its single-tensor
    loop on a CPU, so the job asks for the fused kernel; SGD takes no option."""
    job = JobSpec(model=tiny_model(), layout=parse_layout("tp=2,sp"))
    assert not job.training_spec().recipe_spec.optimizer_foreach
    assert job.optimizer_options() == {"fused": True}
    assert JobSpec(model=tiny_model(), layout=parse_layout("tp=2"), optimizer="sgd").optimizer_options() == {}


def test_predicted_calls_count_the_optimizer_collectives():
    """The fused Adam redistributes the 18 Partial sequence-parallel norm gradients of the 4-layer model once
    each (recipe sp_norm_grad_reads 1): the predicted call count the report sets against the trace holds them."""
    from validate.report import predicted_collective_calls

    with_sp = predicted_collective_calls(JobSpec(model=tiny_model(), layout=parse_layout("tp=2,sp")))
    spec = JobSpec(model=tiny_model(), layout=parse_layout("tp=2,sp"))
    from planner.work.step import build_step
    optimizer = sum(op.calls for s in build_step(spec.effective_model(), spec.training_spec(), spec.layout).stages
                    for op in s.optimizer_comm)
    assert optimizer == 18
    assert with_sp["all-reduce"] >= optimizer
