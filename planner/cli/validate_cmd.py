"""``paraplan validate run|report|slurm|merge`` and ``paraplan calibrate``: real torch.distributed jobs.

Only the ``validate`` package touches torch, and only inside the processes it starts; this module
imports it lazily so the CLI works without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import SpecError
from .app import JSON_OPTION, app, console, err_console, print_json
from .render import fmt_bytes, fmt_seconds

validate_app = typer.Typer(help="Run layouts for real (torch.distributed), compare with the model, calibrate.",
                           no_args_is_help=True)
app.add_typer(validate_app, name="validate")

LayoutsOpt = Annotated[Optional[list[str]], typer.Option(
    "--layout", "-l", help="Layout, e.g. tp=2,pp=2 or dp=2,fsdp or pp=2,schedule=gpipe (repeatable).")]


def _model(model: str | None, layers: int, hidden: int, heads: int, kv_heads: int | None, ffn: int | None,
           ffn_kind: str, vocab: int, seq: int):
    from validate.job import tiny_model

    if model:
        from hwprofiles import load_model

        return load_model(model)
    if ffn_kind not in ("gelu", "swiglu", "relu"):
        raise SpecError(f"'{ffn_kind}' is not one of: gelu, swiglu, relu", field="--ffn-kind")
    return tiny_model(layers=layers, hidden=hidden, heads=heads, kv_heads=kv_heads, ffn=ffn, ffn_kind=ffn_kind,
                      vocab=vocab, seq=seq)


def _results_table(results) -> Table:
    table = Table(title="validate run", title_justify="left")
    for col in ("layout", "ranks", "step time (median)", "min-max", "peak mem/rank", "numerics", "status"):
        table.add_column(col, justify="right" if col not in ("layout", "status", "numerics") else "left")
    for j in results.jobs:
        checks = [r.numerics for r in j.ranks if r.numerics]
        if checks:
            g = max(c.grad_error for c in checks)
            p = max(c.param_error for c in checks)
            verdict = "[green]pass[/]" if j.numerics_passed else "[red]FAIL[/]"
            num = f"{verdict} grad {g:.1e} param {p:.1e} (tol {checks[0].tolerance:.0e})"
        else:
            num = "-"
        status = f"[red]partial: {j.error}[/]" if j.partial else "ok"
        spread = (f"{fmt_seconds(j.step_time_min_s)}-{fmt_seconds(j.step_time_max_s)}"
                  if j.step_time_min_s is not None else "-")
        table.add_row(j.layout, str(j.nproc), fmt_seconds(j.step_time_s) if j.step_time_s else "-", spread,
                      fmt_bytes(j.peak_memory_bytes) if j.peak_memory_bytes else "-", num, status)
    return table


def exit_code(results) -> int:
    """2 when a job is partial (a rank died or hung), 1 when a numerics check failed, else 0."""
    if any(j.partial for j in results.jobs):
        return 2
    if any(j.numerics_passed is False for j in results.jobs):
        return 1
    return 0


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
    nproc: Annotated[Optional[int], typer.Option("--nproc", help="Processes (default tp*pp*dp of the layout).")] = None,
    backend: Annotated[str, typer.Option("--backend", help="gloo (CPU) or nccl (GPU).")] = "gloo",
    steps: Annotated[int, typer.Option("--steps", help="Timed steps after warm-up.")] = 4,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up steps (step 0 is the numerics check).")] = 1,
    global_batch: Annotated[int, typer.Option("--global-batch", help="Sequences per step.")] = 8,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Sequences per micro-batch.")] = 2,
    recompute: Annotated[str, typer.Option("--recompute", help="none, selective or full.")] = "none",
    dtype: Annotated[str, typer.Option("--dtype", help="fp32 (exact) or bf16 (autocast).")] = "fp32",
    seed: Annotated[int, typer.Option("--seed", help="Seed of weights and data.")] = 1234,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write results JSON here (atomically).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds before a job is declared hung.")] = 120.0,
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Keep per-rank files and logs here.")] = None,
    inject_fault: Annotated[Optional[str], typer.Option("--inject-fault", hidden=True, help="RANK:die or RANK:hang (robustness tests).")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run layouts as real multi-process torch.distributed jobs; check numerics, measure time and memory."""
    from pydantic import ValidationError

    from planner.errors import format_validation_error
    from validate.job import JobSpec, layout_for_nproc
    from validate.launch import run_jobs
    from validate.results import write_atomic

    for name, value, allowed in (("--backend", backend, ("gloo", "nccl")), ("--dtype", dtype, ("fp32", "bf16")),
                                 ("--recompute", recompute, ("none", "selective", "full"))):
        if value not in allowed:
            raise SpecError(f"'{value}' is not one of: {', '.join(allowed)}", field=name)
    if timeout <= 0:
        raise SpecError(f"timeout({timeout}) must be > 0", field="--timeout")
    spec = _model(model, layers, hidden, heads, kv_heads, ffn, ffn_kind, vocab, seq)
    jobs = []
    for text in layouts or ["tp=2"]:
        try:
            job = JobSpec(model=spec, layout=layout_for_nproc(text, nproc), seq_length=seq,
                          global_batch_size=global_batch, micro_batch_size=micro_batch, recompute=recompute,
                          compute_dtype=dtype, steps=steps, warmup=warmup, seed=seed, backend=backend,
                          fault=inject_fault)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc), field="--inject-fault") from None
        job.check()
        jobs.append(job)
    results = run_jobs(jobs, timeout_s=timeout, workdir=workdir)
    if out is not None:
        write_atomic(out, results.model_dump_json(indent=1))
    if json_out:
        print_json(results)
    else:
        console.print(_results_table(results))
        for j in results.jobs:
            if j.partial:
                err_console.print(f"[bold red]error:[/] {j.layout}: {j.error}", highlight=False, soft_wrap=True)
        if out is not None:
            console.print(f"results written to {out}")
    code = exit_code(results)
    if code:
        raise typer.Exit(code)
