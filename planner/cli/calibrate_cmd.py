"""`paraplan calibrate`: microbenchmarks and training jobs fitted into a calibration overlay of a base
hardware profile (the fit itself is validate/calibrate.py); the CLI only renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import SpecError
from ..units import check_number
from .app import JSON_OPTION, app, console, print_json
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
# pp: send/recv, dp: all-reduce, FSDP2: all-gather and reduce-scatter per unit).
DEFAULT_CAL_LAYOUTS = ("tp=2", "pp=2", "dp=2", "dp=2,fsdp")
# Held out since the validator's first calibration (chosen before its result was seen, never fitted on):
# tensor + sequence parallel runs all-gather / reduce-scatter through DTensor and sequence-sharded norms,
# which no fitted layout does. 2 ranks like the fitted layouts: on a 2-core host 4 ranks would share cores.
DEFAULT_HELD_OUT = "tp=2,sp"


def interleave(fitted: list[str], held: str, repeats: int) -> list[str]:
    """Job order: ``repeats`` rounds, each the held-out layout then every fitted one, so a slow spell of a
    shared machine lands on both sides of the comparison and the fit averages over rounds as the
    held-out error does."""
    return [t for _ in range(repeats) for t in [held, *fitted]]


@app.command("calibrate")
def calibrate_cmd(
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Base profile (never edited).")] = "cpu-host",
    out: Annotated[Path, typer.Option("--out", "-o", help="Overlay YAML to write.")] = Path("overlay.yaml"),
    nproc: Annotated[int, typer.Option("--nproc", help="Ranks for the microbenchmarks.")] = 2,
    backend: Annotated[str, typer.Option("--backend", help="gloo or nccl.")] = "gloo",
    results: ResultsOpt = None,
    layouts: LayoutsOpt = None,
    held_out: Annotated[Optional[str], typer.Option("--held-out", help=f"Layout kept out of the fit (default {DEFAULT_HELD_OUT}).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", help="Rounds of jobs: every layout, held-out included, runs this often (spread of the error).")] = 3,
    steps: Annotated[int, typer.Option("--steps", help="Timed steps per job (the median is used).")] = 6,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up steps per job.")] = 3,
    no_jobs: Annotated[bool, typer.Option("--microbench-only", help="Fit from microbenchmarks alone (no training jobs).")] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per job.")] = 120.0,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run microbenchmarks (and training jobs), fit pricing parameters, write a calibration overlay."""
    from hwprofiles import load_hardware
    from validate.benchspec import BenchSpec, shapes_from_jobs
    from validate.calibrate import calibrate, overlay_yaml
    from validate.job import JobSpec, layout_for_nproc, layout_text, tiny_model
    from validate.results import write_atomic

    from ..outputs import check_output

    check_output(out, "--out")  # before minutes of benchmarks, not after
    load_hardware(hardware)  # a clear error for an unknown base before anything runs
    _require_choices(("--backend", backend, ("gloo", "nccl")))
    if repeats <= 0:
        raise SpecError(f"repeats({repeats}) must be > 0", field="--repeats")
    check_number(timeout, "--timeout", above=0, at_most=MAX_TIMEOUT_S)
    if steps <= 0 or warmup < 0:
        raise SpecError(f"steps({steps}) must be > 0 and warmup({warmup}) >= 0", field="--steps")
    model = tiny_model()
    measured = _load_results(results) if results else None
    held_text = layout_text(layout_for_nproc(held_out, None)) if held_out else (
        layout_text(layout_for_nproc(DEFAULT_HELD_OUT, None)) if measured is None and not no_jobs else None)
    if measured is not None and held_text and held_text not in {j.layout for j in measured.jobs}:
        raise SpecError(f"'{held_text}' is not among the measured layouts: "
                        f"{', '.join(sorted({j.layout for j in measured.jobs}))}", field="--held-out")
    if measured is not None:
        jobs = [j.job for j in measured.jobs]
    else:
        texts = list(layouts or DEFAULT_CAL_LAYOUTS)
        held = held_out or DEFAULT_HELD_OUT
        jobs = [JobSpec(model=model, layout=layout_for_nproc(t, None), steps=steps, warmup=warmup, backend=backend,
                        check_numerics=False, track_memory=False) for t in interleave(texts, held, repeats)]
        if no_jobs:
            jobs = []
    gemms, attn = shapes_from_jobs(jobs or [JobSpec(model=model, layout=layout_for_nproc(t, None))
                                            for t in DEFAULT_CAL_LAYOUTS])
    if measured is not None and measured.microbench is not None:  # e.g. gathered from a SLURM run
        bench_result, job_results = measured.microbench, measured.jobs
    else:
        bench = BenchSpec(nproc=nproc, backend=backend, gemms=gemms, attention=attn)
        run = run_with_progress([] if measured is not None else jobs, timeout, None, enabled=not json_out,
                                bench=bench, label="calibrate")
        bench_result = run.microbench
        job_results = measured.jobs if measured is not None else run.jobs
    if bench_result is not None and bench_result.partial:
        raise SpecError(f"microbenchmarks did not finish: {bench_result.error}", field="calibrate")
    rep = calibrate(hardware, bench_result, job_results, held_text)
    write_atomic(out, overlay_yaml(rep))
    from validate.fit_quality import fit_warnings

    from .common import warn

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
    if rep.held_out_error_pct:
        e = rep.held_out_error_pct
        console.print(f"held-out {rep.held_out}: error {min(e):+.1f}% .. {max(e):+.1f}% over {len(e)} run(s)")
    for n in rep.notes:
        console.print(f"note: {escape(n)}", highlight=False)
    for w in fit_warnings(rep):
        warn(w)
    console.print(f"overlay written to {out}; apply with --hardware {hardware} --calibration {out}")
