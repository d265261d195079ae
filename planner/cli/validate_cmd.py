"""``paraplan validate run|report|slurm|merge`` and ``paraplan calibrate``: real torch.distributed jobs.

Only the ``validate`` package touches torch, and only inside the processes it starts; this module
imports it lazily so the CLI works without torch.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import SpecError
from ..outputs import check_output
from ..units import check_number
from .app import JSON_OPTION, app, console, err_console, print_json
from .progress import job_progress
from .render import fmt_bytes, fmt_range, fmt_seconds

validate_app = typer.Typer(help="Run layouts for real (torch.distributed), compare with the model, calibrate.",
                           no_args_is_help=True)
app.add_typer(validate_app, name="validate")

#: --timeout at most: a day per job.
MAX_TIMEOUT_S = 86_400.0
#: Local gloo ranks of one job at most: 8 per CPU of this machine.
MAX_LOCAL_RANKS = 8 * (os.cpu_count() or 1)

LayoutsOpt = Annotated[Optional[list[str]], typer.Option(
    "--layout", "-l", help="Layout, e.g. tp=2,pp=2 or dp=2,fsdp or pp=2,schedule=gpipe (repeatable).")]


def _model(model: str | None, layers: int, hidden: int, heads: int, kv_heads: int | None, ffn: int | None,
           ffn_kind: str, vocab: int, seq: int, experts: int = 0, top_k: int = 2):
    from validate.job import tiny_model

    if model:
        from hwprofiles import load_model

        return load_model(model)
    if ffn_kind not in ("gelu", "swiglu", "relu"):
        raise SpecError(f"'{ffn_kind}' is not one of: gelu, swiglu, relu", field="--ffn-kind")
    spec = tiny_model(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, ffn=ffn, ffn_kind=ffn_kind,
                      vocab=vocab, seq=seq)
    if experts:
        if not 1 <= top_k <= experts:
            raise SpecError(f"top_k({top_k}) must be in 1..experts({experts})", field="--top-k")
        spec = spec.replace(name=spec.name + f"-moe{experts}x{top_k}", num_experts=experts, moe_top_k=top_k,
                            expert_ffn_hidden_size=spec.ffn_hidden_size // 2)
    return spec


def _results_table(results) -> Table:
    table = Table(title="validate run", title_justify="left")
    for col in ("layout", "ranks", "step (median)", "min-max", "peak mem/rank", "numerics (max err)", "status"):
        table.add_column(col, justify="right" if col not in ("layout", "status", "numerics (max err)") else "left",
                         no_wrap=col == "layout")
    for j in results.jobs:
        num = numerics_cell(j)
        status = "[red]partial[/]" if j.partial else "ok"
        spread = fmt_range(j.step_time_min_s, j.step_time_max_s)
        table.add_row(j.layout, str(j.nproc), fmt_seconds(j.step_time_s) if j.step_time_s else "-", spread,
                      fmt_bytes(j.peak_memory_bytes) if j.peak_memory_bytes else "-", num, status)
    return table


def run_with_progress(jobs, timeout: float, workdir: Path | None, *, enabled: bool, bench=None, label: str = "validate run",
                      keep_traces: Path | None = None):
    """validate.launch.run_jobs with progress on stderr: one line (or a bar step) per finished job, the
    running job's layout and its ranks' phases on a terminal."""
    from validate.job import layout_text
    from validate.launch import run_jobs

    names = [layout_text(j.layout) for j in jobs] + (["microbenchmarks"] if bench is not None else [])
    finished = [0]
    with job_progress(label, len(names), enabled=enabled, every_unit=True) as progress:
        def on_progress(current: int, ranks) -> None:
            while finished[0] < current:
                finished[0] += 1
                progress.done(finished[0], names[finished[0] - 1])
            phases = ", ".join(sorted({f"{r.phase}" + (f" {r.step}" if r.step >= 0 else "") for r in ranks})) or "starting"
            progress.working(f"{names[current]}: {phases}")

        results = run_jobs(jobs, timeout_s=timeout, workdir=workdir, bench=bench, on_progress=on_progress,
                           keep_traces=keep_traces)
        if finished[0] < len(names):
            progress.done(len(names), names[-1])
    return results


def _stopped_ranks(job) -> str:
    """``rank 1 died`` / ``rank 1 hung``: the ranks that ended a partial job (the others were stopped)."""
    words = {"failed": "died", "hung": "hung"}
    named = [f"rank {r.rank} {words[r.status]}" for r in job.ranks if r.status in words]
    return ", ".join(named) or "the job did not finish"


def numerics_cell(job) -> str:
    """The numerics verdict of a job: pass / FAIL with the worst relative error (gradients, parameters
    after the step, loss); a job a rank did not finish is not judged, and the cell says which rank."""
    checks = [r.numerics for r in job.ranks if r.numerics]
    if job.partial and not any(not c.passed for c in checks):
        return f"[yellow]not judged[/] ({_stopped_ranks(job)})"
    if not checks:
        return "-"
    worst = max(max(c.grad_error, c.param_error, c.loss_error or 0.0) for c in checks)
    tol = checks[0].tolerance
    cell = f"[green]pass[/] {worst:.1e} ≤ {tol:.0e}" if job.numerics_passed else f"[red]FAIL[/] {worst:.1e} > {tol:.0e}"
    return cell + (f" ({_stopped_ranks(job)})" if job.partial else "")


def exit_code(results) -> int:
    """2 when a job is partial (a rank died or hung), 1 when a numerics check failed, else 0."""
    if any(j.partial for j in results.jobs):
        return 2
    if any(j.numerics_passed is False for j in results.jobs):
        return 1
    return 0


def _require_choices(*checks: tuple[str, str, tuple[str, ...]]) -> None:
    """SpecError naming the option and its allowed values for the first (option, value, allowed) that fails."""
    for name, value, allowed in checks:
        if value not in allowed:
            raise SpecError(f"'{value}' is not one of: {', '.join(allowed)}", field=name)


# JobSpec field -> the validate run option that sets it (for error messages).
JOB_OPTIONS = {"seq_length": "--seq", "global_batch_size": "--global-batch", "micro_batch_size": "--micro-batch",
               "steps": "--steps", "warmup": "--warmup", "seed": "--seed", "fault": "--inject-fault",
               "recompute": "--recompute", "compute_dtype": "--dtype", "recipe": "--recipe", "backend": "--backend"}


@validate_app.command("run")
def run(
    layouts: LayoutsOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo model, model YAML or HF config.json (default: inline tiny dims).")] = None,
    layers: Annotated[int, typer.Option("--layers", help="Inline model: layers.")] = 4,
    hidden: Annotated[int, typer.Option("--hidden", help="Inline model: hidden size.")] = 64,
    heads: Annotated[int, typer.Option("--heads", help="Inline model: attention heads.")] = 4,
    kv_heads: Annotated[Optional[int], typer.Option("--kv-heads", help="Inline model: key/value heads.")] = None,
    ffn: Annotated[Optional[int], typer.Option("--ffn", help="Inline model: FFN width (default 4*hidden).")] = None,
    ffn_kind: Annotated[str, typer.Option("--ffn-kind", help="Inline model: gelu, swiglu or relu.")] = "gelu",
    vocab: Annotated[int, typer.Option("--vocab", help="Inline model: vocabulary.")] = 256,
    seq: Annotated[int, typer.Option("--seq", help="Sequence length, tokens.")] = 64,
    experts: Annotated[Optional[int], typer.Option("--experts", help="Inline model: routed experts, width ffn/2 (default: 4 when a layout has ep > 1, else dense).")] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Inline model: experts per token.")] = 2,
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Processes (default tp*pp*dp of the layout).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="gloo (CPU) or nccl (GPU).")] = "gloo",
    steps: Annotated[int, typer.Option("--steps", help="Timed steps after warm-up.")] = 4,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up steps (step 0 is the numerics check).")] = 1,
    global_batch: Annotated[int, typer.Option("--global-batch", help="Sequences per step.")] = 8,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = 2,
    recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full.")] = "none",
    dtype: Annotated[str, typer.Option("--dtype", help="fp32 (exact), bf16 or fp16 (autocast; fp16 with loss scaling, dp only).")] = "fp32",
    recipe: Annotated[str, typer.Option("--recipe", help="torch-amp (fp32 parameters, autocast) or fsdp (FSDP2 mixed precision; dp > 1, zero >= 2, bf16).")] = "torch-amp",
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights and data.")] = 1234,
    out: Annotated[Path, typer.Option("--out", "-o", help="Write results JSON here (atomically); validate report "
                                      "reads it.")] = Path("results.json"),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a job is declared hung.")] = 120.0,
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Keep per-rank files, traces and logs here (without it the jobs' profiler traces are kept next to --out, in OUT.traces/).")] = None,
    inject_fault: Annotated[Optional[str], typer.Option("--inject-fault", hidden=True, help="RANK:die or RANK:hang (robustness tests).")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run layouts as real multi-process torch.distributed jobs; check numerics, measure time and memory."""
    from pydantic import ValidationError

    from planner.errors import format_validation_error
    from validate.job import JobSpec, layout_for_nproc
    from validate.results import write_atomic

    _require_choices(("--backend", backend, ("gloo", "nccl")), ("--dtype", dtype, ("fp32", "bf16", "fp16")),
                     ("--recompute", recompute, ("none", "selective", "full")), ("--recipe", recipe, ("torch-amp", "fsdp")))
    check_number(timeout, "--timeout", above=0, at_most=MAX_TIMEOUT_S)
    if nproc is not None and backend == "gloo" and not 1 <= nproc <= MAX_LOCAL_RANKS:
        raise SpecError(f"{nproc} is outside 1..{MAX_LOCAL_RANKS} (gloo ranks on this machine: 8 per CPU at most)",
                        field="--nproc")
    check_output(out, "--out")
    if experts is None:
        experts = 4 if any(re.search(r"\bep=([2-9]|\d\d)", t.replace(" ", "")) for t in layouts or []) else 0
    spec = _model(model, layers, hidden, heads, kv_heads, ffn, ffn_kind, vocab, seq, experts, top_k)
    jobs = []
    for text in layouts or ["tp=2"]:
        try:
            job = JobSpec(model=spec, layout=layout_for_nproc(text, nproc), seq_length=seq,
                          global_batch_size=global_batch, micro_batch_size=micro_batch, recompute=recompute,
                          compute_dtype=dtype, recipe=recipe, steps=steps, warmup=warmup, seed=seed,
                          backend=backend, fault=inject_fault)
        except ValidationError as exc:
            loc = exc.errors()[0].get("loc") if exc.errors() else None
            option = JOB_OPTIONS.get(str(loc[0]) if loc else "", "validate run")
            raise SpecError(format_validation_error(exc), field=option) from None
        job.check()
        jobs.append(job)
    traces = None if workdir is not None else Path(out).with_suffix(".traces")  # calibrate --results reads them
    check_output(traces, "--out", folder=True)
    results = run_with_progress(jobs, timeout, workdir, enabled=not json_out, keep_traces=traces)
    write_atomic(out, results.model_dump_json(indent=1))
    if json_out:
        print_json(results)
    else:
        console.print(_results_table(results))
        console.print(f"results written to {out}; compare with the cost model: paraplan validate report"
                      + ("" if str(out) == "results.json" else f" --results {out}"), highlight=False)
    for j in results.jobs:
        if j.partial:
            err_console.print(f"[bold red]error:[/] {j.layout}: {escape(j.error or '')}", highlight=False,
                              soft_wrap=True)
    code = exit_code(results)
    if code:
        raise typer.Exit(code)


ResultsOpt = Annotated[Optional[list[Path]], typer.Option("--results", "-r", help="Results JSON from validate run / collect (repeatable).")]


def _load_results(paths: list[Path] | None):
    from validate.results import load_results, merge_results

    if not paths:
        raise SpecError("--results FILE is required", field="--results")
    return merge_results([load_results(p) for p in paths])


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}%"


def _kinds(calls: dict[str, int]) -> str:
    return ", ".join(f"{n} {k}" for k, n in calls.items()) or "none"


def _calls(measured: dict[str, int] | None, predicted: dict[str, int] | None) -> str:
    """'measured/priced' totals of one step's collective calls."""
    if measured is None or predicted is None:
        return "-"
    return f"{sum(measured.values())}/{sum(predicted.values())}"


@validate_app.command("report")
def report(
    results: Annotated[Optional[list[Path]], typer.Option(
        "--results", "-r", help="Results JSON from validate run / collect (repeatable).",
        show_default="results.json")] = None,
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Profile to predict with.")] = "cpu-host",
    calibration: Annotated[Optional[str], typer.Option("--calibration", help="Calibration overlay YAML.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Predicted (cost model) vs measured step time and peak memory, % error per layout."""
    from hwprofiles import load_hardware
    from validate.report import build_report

    rep = build_report(_load_results(results or [Path("results.json")]), load_hardware(hardware, calibration),
                       hardware, calibration)
    hint = None if calibration else (
        f"predicted with '{hardware}' as shipped, not calibrated on the machine that ran the jobs; fit it with "
        f"paraplan calibrate --hardware {hardware} --out overlay.yaml, then add --calibration overlay.yaml")
    if json_out:
        print_json({**rep.model_dump(mode="json"), "hint": hint})
        return
    title = f"predicted ({hardware}{' + ' + calibration if calibration else ''}) vs measured"
    table = Table(title=title, title_justify="left")
    for col in ("layout", "ranks", "measured", "min-max", "predicted", "error", "peak mem", "predicted mem",
                "mem error", "calls", "numerics"):
        table.add_column(col, justify="left" if col in ("layout", "numerics") else "right", no_wrap=col == "layout")
    for r in rep.rows:
        spread = fmt_range(r.measured_min_s, r.measured_max_s)
        num = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "-"}[r.numerics_passed]
        table.add_row(r.layout, str(r.nproc), fmt_seconds(r.measured_step_s) if r.measured_step_s else "-", spread,
                      fmt_seconds(r.predicted_step_s) if r.predicted_step_s else "-", _pct(r.step_error_pct),
                      fmt_bytes(r.measured_peak_bytes) if r.measured_peak_bytes else "-",
                      fmt_bytes(r.predicted_peak_bytes) if r.predicted_peak_bytes else "-",
                      _pct(r.memory_error_pct), _calls(r.measured_calls, r.predicted_calls),
                      num if not r.partial else "[red]partial[/]")
    console.print(table)
    for r in rep.rows:
        if r.note:
            console.print(f"{r.layout}: {escape(r.note)}", highlight=False)
        if r.measured_calls is not None and r.predicted_calls is not None and r.measured_calls != r.predicted_calls:
            console.print(f"{r.layout}: collective calls per step on rank 0, measured {_kinds(r.measured_calls)}; "
                          f"priced {_kinds(r.predicted_calls)}", highlight=False)
    console.print("calls: collective calls of one step on rank 0, measured / priced by the cost model (measured includes"
                  " the validator's one loss all-reduce per step when dp > 1, which is not priced)", highlight=False)
    for n in rep.notes:
        console.print(f"note: {escape(n)}", highlight=False)
    if hint:
        console.print(f"hint: {hint}", style="yellow", highlight=False)


@validate_app.command("collect")
def collect_cmd(
    workdir: Annotated[Path, typer.Argument(help="Work folder with job_<k>.json and per-rank files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results JSON to write (atomically).")] = Path("results.json"),
    timeout: Annotated[float, typer.Option("--timeout", help="Per-job timeout the jobs ran with, s.")] = 600.0,
    json_out: bool = JSON_OPTION,
) -> None:
    """Gather per-rank files (a SLURM run or a kept --workdir) into one results JSON."""
    from validate.collect import collect
    from validate.results import write_atomic

    check_number(timeout, "--timeout", above=0, at_most=MAX_TIMEOUT_S)
    check_output(out, "--out")
    results = collect(workdir, timeout)
    write_atomic(out, results.model_dump_json(indent=1))
    if json_out:
        print_json(results)
    else:
        console.print(_results_table(results))
        console.print(f"results written to {out}")


@validate_app.command("slurm")
def slurm(
    nodes: Annotated[int, typer.Option("--nodes", "-N", help="Nodes.")] = 1,
    gpus_per_node: Annotated[int, typer.Option("--gpus-per-node", help="GPUs (ranks) per node.")] = 8,
    backend: Annotated[str, typer.Option("--backend", help="nccl (GPUs; RCCL on ROCm) or gloo (CPU nodes).")] = "nccl",
    layouts: LayoutsOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo model, model YAML or HF config.json (default: inline tiny dims).")] = None,
    layers: Annotated[int, typer.Option("--layers")] = 8,
    hidden: Annotated[int, typer.Option("--hidden")] = 1024,
    heads: Annotated[int, typer.Option("--heads")] = 16,
    vocab: Annotated[int, typer.Option("--vocab")] = 32768,
    seq: Annotated[int, typer.Option("--seq")] = 1024,
    global_batch: Annotated[Optional[int], typer.Option("--global-batch", help="Sequences per step (default 2 per rank).")] = None,
    micro_batch: Annotated[int, typer.Option("--micro-batch")] = 1,
    dtype: Annotated[str, typer.Option("--dtype", help="bf16, fp16 or fp32.")] = "bf16",
    steps: Annotated[int, typer.Option("--steps")] = 10,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per job.")] = 600.0,
    time_limit: Annotated[str, typer.Option("--time", help="SLURM time limit.")] = "01:00:00",
    partition: Annotated[Optional[str], typer.Option("--partition")] = None,
    account: Annotated[Optional[str], typer.Option("--account")] = None,
    bench: Annotated[bool, typer.Option("--bench/--no-bench", help="Also run the calibration microbenchmarks.")] = True,
    results: Annotated[str, typer.Option("--results", help="Results JSON the script writes.")] = "results.json",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the sbatch script here.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Write a ready sbatch script (srun + torchrun, c10d rendezvous) running the layouts on a cluster."""
    from validate.benchspec import BenchSpec, shapes_from_jobs
    from validate.job import JobSpec, layout_for_nproc
    from validate.results import write_atomic
    from validate.slurm import sbatch_script

    if nodes <= 0 or gpus_per_node <= 0:
        raise SpecError(f"nodes({nodes}) and gpus_per_node({gpus_per_node}) must be > 0", field="--nodes")
    check_number(timeout, "--timeout", above=0, at_most=MAX_TIMEOUT_S)
    check_output(out, "--out")
    _require_choices(("--dtype", dtype, ("bf16", "fp32", "fp16")), ("--backend", backend, ("nccl", "gloo")))
    nproc = nodes * gpus_per_node
    spec = _model(model, layers, hidden, heads, None, None, "gelu", vocab, seq)
    jobs = []
    for text in layouts or [f"tp={gpus_per_node}"]:
        lay = layout_for_nproc(text, nproc)
        job = JobSpec(model=spec, layout=lay, seq_length=seq, global_batch_size=global_batch or 2 * lay.dp * micro_batch,
                      micro_batch_size=micro_batch, compute_dtype=dtype, steps=steps, backend=backend,
                      track_memory=True)
        job.check()
        jobs.append(job)
    bench_spec = None
    if bench:
        gemms, attn = shapes_from_jobs(jobs)
        bench_spec = BenchSpec(nproc=nproc, backend=backend, compute_dtype=dtype, gemms=gemms, attention=attn,
                               collective_bytes=[4 << 10, 1 << 20, 16 << 20, 256 << 20 if backend == "nccl" else 32 << 20])
    text = sbatch_script(jobs, nodes=nodes, gpus_per_node=gpus_per_node, bench=bench_spec, timeout_s=timeout,
                         time_limit=time_limit, partition=partition, account=account, results=results)
    if out is not None:
        write_atomic(out, text)
    if json_out:
        print_json({"script": text, "path": str(out) if out else None, "jobs": [j.layout for j in jobs]})
    elif out is None:
        typer.echo(text, nl=False)
    else:
        what = "GPUs" if backend == "nccl" else "ranks"
        console.print(f"sbatch script for {len(jobs)} layout(s) on {nodes} x {gpus_per_node} {what} written to {out}")

