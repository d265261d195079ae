"""``paraplan trace compare``: a PyTorch profiler trace of a real job next to paraplan's prediction of it.

Reading traces needs HolisticTraceAnalysis (the ``trace`` extra); this module imports it only inside the
command, after checking it is installed, so the rest of the CLI runs without it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import SpecError
from .app import JSON_OPTION, app, console, print_json
from .common import check_choice
from .render import fmt_seconds

trace_app = typer.Typer(help="PyTorch profiler traces: where a real step's time went, next to paraplan's prediction.",
                        no_args_is_help=True)
app.add_typer(trace_app, name="trace")

TRACE_EXTRA = "pip install 'paraplan[trace]' (HolisticTraceAnalysis)"

ModelO = Annotated[Optional[str], typer.Option("--model", "-m", help="Model of the traced job (zoo name, YAML, HF config.json).")]
LayoutO = Annotated[Optional[str], typer.Option("--layout", "-l", help="Layout of the traced job, e.g. tp=8,pp=2,sp (dp = traced ranks / (tp*pp*cp) unless given), or a scenario JSON.")]
SeqO = Annotated[Optional[int], typer.Option("--seq", help="Sequence length of the traced job, tokens.")]
GlobalO = Annotated[Optional[int], typer.Option("--global-batch", help="Sequences per optimizer step.")]
MicroO = Annotated[Optional[int], typer.Option("--micro-batch", help="Sequences per micro-batch.")]
PrecisionO = Annotated[Optional[str], typer.Option("--precision", help="bf16, fp16 or fp8.")]
RecipeO = Annotated[Optional[str], typer.Option("--recipe", help="Recipe the job ran (megatron-core, torchtitan, torch-amp, ...).")]
RecomputeO = Annotated[Optional[str], typer.Option("--recompute", help="none, selective or full.")]
GpusO = Annotated[Optional[int], typer.Option("--gpus", "-g", help="Ranks of the job (default: the traced ranks).")]


def require_trace_reader(option: str = "--trace") -> None:
    """SpecError with the install line when HolisticTraceAnalysis (or pandas) is missing."""
    for module in ("hta", "pandas"):
        if importlib.util.find_spec(module) is None:
            raise SpecError(f"reading profiler traces needs HolisticTraceAnalysis: {TRACE_EXTRA}", field=option)


def job_scenario(model: str | None, layout: str | None, gpus: int, *, seq: int | None = None,
                 global_batch: int | None = None, micro_batch: int | None = None, precision: str | None = None,
                 recipe: str | None = None, recompute: str | None = None):
    """(model, training, layout) of a user's traced job from the options; SpecError naming the option."""
    from ..scenario import load_scenario
    from ..specs import TrainingSpec

    if model is None and not (layout and layout.endswith(".json")):
        raise SpecError("the model of the traced job is required (or --layout SCENARIO.json); the trace does not "
                        "say which model ran", field="--model")
    if layout is None:
        raise SpecError("the layout of the traced job is required, e.g. tp=8,pp=2 (or a scenario JSON)",
                        field="--layout")
    for field, value in (("recompute", recompute), ("precision", precision), ("recipe", recipe)):
        check_choice(field, value)
    if layout.endswith(".json"):
        base = load_scenario(layout)
        spec, lay, trn = base.model, base.layout, base.training.model_dump()
    else:
        from validate.job import layout_for_nproc

        spec, lay, trn = None, layout_for_nproc(layout, gpus if "dp=" not in layout.replace(" ", "") else None), {}
    if model is not None:
        from hwprofiles import load_model

        spec = load_model(model)
    for key, value in (("seq_length", seq), ("global_batch_size", global_batch), ("micro_batch_size", micro_batch),
                       ("precision", precision), ("recipe", recipe), ("recompute", recompute)):
        if value is not None:
            trn[key] = value
    trn.setdefault("global_batch_size", trn.get("micro_batch_size", 1) * lay.dp)
    from pydantic import ValidationError

    from ..errors import format_validation_error

    try:
        training = TrainingSpec.model_validate(trn)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), field="--global-batch") from None
    return spec, training, lay


def load_job(folder: str, model: str | None, layout: str | None, gpus: int | None, **training):
    """A traced job: the validator's (its folder describes it) unless --model / --layout are given."""
    from validate.results import SIDECAR
    from validate.traced_jobs import load_user_job, load_validator_job

    path = Path(folder)
    own = (path / SIDECAR).exists() or (path / "trace" / SIDECAR).exists()
    if own and model is None and layout is None:
        return load_validator_job(path)
    from planner.trace.read import trace_files

    ranks = gpus or len(trace_files(path))
    spec, trn, lay = job_scenario(model, layout, ranks, **training)
    return load_user_job(path, spec, trn, lay)


@trace_app.command("compare")
def compare_cmd(
    trace: Annotated[str, typer.Argument(help="Trace folder (one file per rank, .json or .json.gz) or one file.")],
    model: ModelO = None, layout: LayoutO = None, gpus: GpusO = None, seq: SeqO = None, global_batch: GlobalO = None,
    micro_batch: MicroO = None, precision: PrecisionO = None, recipe: RecipeO = None, recompute: RecomputeO = None,
    hardware: Annotated[Optional[str], typer.Option("--hardware", "-H", help="Profile to predict with (default: cpu-host for a CPU trace; required for a GPU trace).")] = None,
    calibration: Annotated[Optional[str], typer.Option("--calibration", help="Calibration overlay YAML.")] = None,
    json_out: bool = JSON_OPTION,
) -> None:
    """Where a traced step's time went next to where paraplan says it goes: per op class and stage."""
    require_trace_reader("TRACE")
    from hwprofiles import load_hardware
    from planner.trace.compare import compare

    job = load_job(trace, model, layout, gpus, seq=seq, global_batch=global_batch, micro_batch=micro_batch,
                   precision=precision, recipe=recipe, recompute=recompute)
    if hardware is None:
        if job.run.on_gpu:
            raise SpecError(f"the trace ran on '{job.run.device}': name its profile (paraplan hw list)",
                            field="--hardware")
        hardware = "cpu-host"
    profile = load_hardware(hardware, calibration)
    from validate.trace_fit import predict

    est = predict(job, profile)
    result = compare(job.run, est, trace=trace, layout_text=job.name,
                     hardware=hardware + (f" + {calibration}" if calibration else ""),
                     measured_step_s=job.measured_step_s, notes=job.notes)
    if json_out:
        print_json(result)
        return
    render_comparison(result)


def _ms(v: float) -> str:
    return fmt_seconds(v) if v else "-"


def render_comparison(result) -> None:
    """The per-class and per-stage tables and the largest mismatches."""
    err = f"{result.step_error_pct:+.1f}%"
    console.print(f"{escape(result.trace)}: {result.ranks} rank(s) on {escape(result.device)}, {result.steps} traced "
                  f"step(s); {escape(result.model)} {escape(result.layout)} priced on {escape(result.hardware)}",
                  highlight=False)
    console.print(f"step: measured {fmt_seconds(result.measured_step_s)}, predicted "
                  f"{fmt_seconds(result.predicted_step_s)} ({err})", highlight=False)
    table = Table(title="per op class (seconds per step; mean over ranks)", title_justify="left")
    for col in ("class", "measured", "predicted", "pred - meas", "ops measured", "ops priced"):
        table.add_column(col, justify="left" if col == "class" else "right")
    for r in result.classes:
        table.add_row(r.kind, _ms(r.measured_s), _ms(r.predicted_s), f"{(r.predicted_s - r.measured_s) * 1e3:+.3g} ms",
                      f"{r.measured_ops:.0f}" if r.measured_ops else "-", str(r.predicted_ops) if r.predicted_ops else "-")
    console.print(table)
    if len(result.stages) > 1 or result.stages and result.stages[0].comm_overlapped_s:
        stages = Table(title="per pipeline stage (measured)", title_justify="left")
        for col in ("stage", "ranks", "step", "compute", "comm exposed", "comm overlapped", "host / idle"):
            stages.add_column(col, justify="right")
        for s in result.stages:
            stages.add_row(str(s.stage), ",".join(map(str, s.ranks)), _ms(s.step_s), _ms(s.compute_s), _ms(s.comm_s),
                           _ms(s.comm_overlapped_s), _ms(s.host_or_idle_s))
        console.print(stages)
    console.print("largest mismatches:")
    for m in result.mismatches:
        console.print(f"  - {escape(m)}", highlight=False)
    for n in result.notes:
        console.print(f"note: {escape(n)}", highlight=False)
