"""`paraplan calibrate`: traced jobs (and microbenchmarks) fitted into a calibration overlay of a base hardware
profile. One path for every source of jobs: the jobs it launches write profiler traces, which are read back
exactly like a user's own (``--trace``); the fit itself is validate/calibrate.py. The CLI only renders."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import SpecError
from ..units import check_number
from . import trace_cmd as tc
from .app import JSON_OPTION, app, console, print_json
from .common import warn
from .render import fmt_range, fmt_seconds
from .validate_cmd import (
    MAX_TIMEOUT_S,
    LayoutsOpt,
    ResultsOpt,
    _load_results,
    _pct,
    _require_choices,
    run_with_progress,
)

# Fitted layouts: every collective kind the cost model prices appears in some of them (tp: all-reduce,
# pp: send/recv, FSDP2: all-gather and reduce-scatter per unit).
DEFAULT_CAL_LAYOUTS = ("tp=2", "pp=2", "dp=2,fsdp")
# Held out since the validator's first calibration (chosen before its result was seen, never fitted on):
# tensor + sequence parallel runs all-gather / reduce-scatter through DTensor and sequence-sharded norms,
# which no fitted layout does. 2 ranks like the fitted layouts: on a 2-core host 4 ranks would share cores.
DEFAULT_HELD_OUT = "tp=2,sp"


def interleave(fitted: list[str], held: str, repeats: int) -> list[str]:
    """Job order: ``repeats`` rounds, each the held-out layout then every fitted one, so a slow spell of a
    shared machine lands on both sides of the comparison and the fit averages over rounds as the
    held-out error does."""
    return [t for _ in range(repeats) for t in [held, *fitted]]


def _launch(layouts: list[str] | None, held_out: str | None, repeats: int, steps: int, warmup: int, backend: str,
            nproc: int, bench: bool, timeout: float, workdir: Path, progress: bool):
    """Run the validator's jobs (each traced) and the microbenchmarks in ``workdir``; (job trace folders,
    bench result)."""
    from validate.benchspec import BenchSpec, shapes_from_jobs
    from validate.job import JobSpec, layout_for_nproc, tiny_model

    model = tiny_model()
    texts = list(layouts or DEFAULT_CAL_LAYOUTS)
    jobs = [JobSpec(model=model, layout=layout_for_nproc(t, None), steps=steps, warmup=warmup, backend=backend,
                    check_numerics=False, track_memory=False) for t in interleave(texts, held_out or DEFAULT_HELD_OUT,
                                                                                  repeats)]
    spec = None
    if bench:
        gemms, attn = shapes_from_jobs(jobs)
        spec = BenchSpec(nproc=nproc, backend=backend, gemms=gemms, attention=attn)
    run = run_with_progress(jobs, timeout, workdir, enabled=progress, bench=spec, label="calibrate")
    bad = [j for j in run.jobs if j.partial]
    if bad:
        raise SpecError(f"{bad[0].layout}: {bad[0].error}", field="calibrate")
    return [j.trace_dir for j in run.jobs], run.microbench


@app.command("calibrate")
def calibrate_cmd(
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Base profile (never edited).")] = "cpu-host",
    out: Annotated[Path, typer.Option("--out", "-o", help="Overlay YAML to write.")] = Path("overlay.yaml"),
    trace: Annotated[Optional[list[str]], typer.Option("--trace", "-t", help="Traced job: a folder of per-rank profiler traces (repeatable); the validator's describe themselves, your own need --model and --layout.")] = None,
    model: tc.ModelO = None, gpus: tc.GpusO = None, seq: tc.SeqO = None, global_batch: tc.GlobalO = None,
    micro_batch: tc.MicroO = None, precision: tc.PrecisionO = None, recipe: tc.RecipeO = None,
    recompute: tc.RecomputeO = None,
    nproc: Annotated[int, typer.Option("--nproc", help="Ranks for the microbenchmarks.")] = 2,
    backend: Annotated[str, typer.Option("--backend", help="gloo or nccl.")] = "gloo",
    results: ResultsOpt = None,
    layouts: LayoutsOpt = None,
    held_out: Annotated[Optional[str], typer.Option("--held-out", help=f"Layout kept out of the fit (default {DEFAULT_HELD_OUT} when jobs are launched).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Rounds of jobs: every layout, held-out included, runs this often (spread of the error).")] = 3,
    steps: Annotated[int, typer.Option("--steps", help="Timed steps per job (the median is used).")] = 6,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up steps per job.")] = 3,
    bench: Annotated[bool, typer.Option("--bench/--no-bench", help="Also run microbenchmarks (collective bandwidth at large sizes) when jobs are launched.")] = True,
    no_jobs: Annotated[bool, typer.Option("--microbench-only", help="Fit from microbenchmarks alone (no training jobs).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per job.")] = 120.0,
    workdir: Annotated[Optional[Path], typer.Option("--workdir", help="Keep the launched jobs' folders (their traces: calibrate --trace DIR/job_<k>) here.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Fit pricing parameters from traced jobs (launched, or your own) and microbenchmarks; write an overlay."""
    from hwprofiles import load_hardware
    from validate.calibrate import calibrate, overlay_yaml
    from validate.job import layout_for_nproc, layout_text
    from validate.results import write_atomic

    from ..outputs import check_output

    check_output(out, "--out")  # before minutes of jobs, not after
    load_hardware(hardware)  # a clear error for an unknown base before anything runs
    _require_choices(("--backend", backend, ("gloo", "nccl")))
    if repeats <= 0:
        raise SpecError(f"repeats({repeats}) must be > 0", field="--repeats")
    check_number(timeout, "--timeout", above=0, at_most=MAX_TIMEOUT_S)
    if steps <= 0 or warmup < 0:
        raise SpecError(f"steps({steps}) must be > 0 and warmup({warmup}) >= 0", field="--steps")
    if trace and (results or no_jobs):
        raise SpecError("give traced jobs (--trace) or a results file (--results), not both", field="--trace")
    with contextlib.ExitStack() as stack:
        held_text = layout_text(layout_for_nproc(held_out, None)) if held_out else None
        bench_result, folders = None, list(trace or [])
        if trace is None:
            tc.require_trace_reader("calibrate")
            if results:
                measured = _load_results(results)
                folders = [j.trace_dir for j in measured.jobs if not j.partial]
                if any(f is None or not Path(f).is_dir() for f in folders):
                    raise SpecError("the results hold jobs whose traces were not kept (validate run keeps them in "
                                    "OUT.traces/ or --workdir; older results have none); rerun validate run, or pass "
                                    "--trace folders", field="--results")
                bench_result = measured.microbench
            elif no_jobs:
                from validate.benchspec import BenchSpec, shapes_from_jobs
                from validate.job import JobSpec, tiny_model

                probes = [JobSpec(model=tiny_model(), layout=layout_for_nproc(t, None)) for t in DEFAULT_CAL_LAYOUTS]
                gemms, attn = shapes_from_jobs(probes)
                bench_result = run_with_progress([], timeout, None, enabled=not json_out, label="calibrate",
                                                 bench=BenchSpec(nproc=nproc, backend=backend, gemms=gemms,
                                                                 attention=attn)).microbench
            else:
                held_text = held_text or layout_text(layout_for_nproc(DEFAULT_HELD_OUT, None))
                if workdir is None:  # the jobs' folders live until the fit has read their traces
                    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paraplan-calibrate-")))
                folders, bench_result = _launch(layouts, held_text, repeats, steps, warmup, backend, nproc, bench, timeout,
                                                workdir, not json_out)
        else:
            tc.require_trace_reader("--trace")
        if bench_result is not None and bench_result.partial:
            raise SpecError(f"microbenchmarks did not finish: {bench_result.error}", field="calibrate")
        jobs = [tc.load_job(f, model, _layout_for(layouts, i, len(folders)), gpus, seq=seq, global_batch=global_batch,
                            micro_batch=micro_batch, precision=precision, recipe=recipe, recompute=recompute)
                for i, f in enumerate(folders)] if trace else [tc.load_job(f, None, None, None) for f in folders]
        if held_text and jobs and held_text not in {j.name for j in jobs}:
            raise SpecError(f"'{held_text}' is not among the measured layouts: {', '.join(sorted({j.name for j in jobs}))}",
                            field="--held-out")
        rep = calibrate(hardware, bench_result, jobs, held_text)
        write_atomic(out, overlay_yaml(rep))
    _render(rep, hardware, out, json_out)


def _layout_for(layouts: list[str] | None, index: int, count: int) -> str | None:
    """The --layout of the ``index``-th --trace: one layout for all traces, or one per trace."""
    if not layouts:
        return None
    if len(layouts) == 1:
        return layouts[0]
    if len(layouts) != count:
        raise SpecError(f"{len(layouts)} --layout for {count} --trace: give one for all or one per trace",
                        field="--layout")
    return layouts[index]


def _render(rep, hardware: str, out: Path, json_out: bool) -> None:
    from validate.fit_quality import fit_warnings

    if json_out:
        print_json(rep)
        for w in fit_warnings(rep):
            warn(w)
        return
    table = Table(title=f"calibration of {hardware} (overlay {out})", title_justify="left")
    for col in ("layout", "measured", "min-max", "before", "error", "after", "error after"):
        table.add_column(col, justify="left" if col == "layout" else "right", no_wrap=col == "layout")
    for r in rep.layouts:
        spread = fmt_range(r.measured_min_s, r.measured_max_s)
        name = f"{r.layout} [bold](held out)[/]" if r.held_out else r.layout
        table.add_row(name, fmt_seconds(r.measured_s), spread, fmt_seconds(r.predicted_before_s),
                      _pct(r.error_before_pct), fmt_seconds(r.predicted_after_s), _pct(r.error_after_pct))
    console.print(table)
    console.print(class_table(rep))
    if rep.held_out_error_pct:
        e = rep.held_out_error_pct
        console.print(f"held-out {rep.held_out}: error {min(e):+.1f}% .. {max(e):+.1f}% over {len(e)} run(s)")
    for n in rep.notes:
        console.print(f"note: {escape(n)}", highlight=False)
    for w in fit_warnings(rep):
        warn(w)
    console.print(f"overlay written to {out}; apply with --hardware {hardware} --calibration {out}")


def class_table(rep) -> Table:
    """Per layout and class group, measured vs predicted seconds per step (median over repeats)."""
    import statistics

    rows: dict[tuple[str, str], list] = {}
    for c in rep.classes:
        rows.setdefault((c.layout, c.kind), []).append(c)
    table = Table(title="per class, seconds per step (median over repeats): measured, before, after",
                  title_justify="left")
    for col in ("layout", "class", "measured", "before", "after"):
        table.add_column(col, justify="left" if col in ("layout", "class") else "right", no_wrap=col == "layout")
    for (layout, kind), cs in rows.items():
        med = [statistics.median(getattr(c, f) for c in cs) for f in ("measured_s", "predicted_before_s",
                                                                    "predicted_after_s")]
        if max(med) <= 0:
            continue
        name = f"{layout} [bold](held out)[/]" if cs[0].held_out else layout
        table.add_row(name, kind, *(fmt_seconds(v) if v else "-" for v in med))
    return table
