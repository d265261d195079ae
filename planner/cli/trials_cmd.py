"""``paraplan trials run|collect`` and what ``plan --trials K --out DIR`` writes: the top plans run for a few steps
with the profiler on, read back, calibrated on, re-ranked by their measured steps (validate/trials.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import SpecError
from .app import JSON_OPTION, app, console, print_json
from .render import fmt_seconds

trials_app = typer.Typer(help="Trial runs of the top plans: run them, read their traces back, re-rank by measured steps.",
                         no_args_is_help=True)
app.add_typer(trials_app, name="trials")

DirArg = Annotated[Path, typer.Argument(help="Trials folder written by paraplan plan ... --trials K --out DIR.")]


def write_plan_trials(plans: list, model_spec, hardware: str, calibration: str | None, k: int, out: str,
                      export: str | None, hw) -> tuple[list[str], list[str]]:
    """Write the first ``k`` runnable of ``plans`` (ranked) as trials into ``out``; (lines to print, files written)."""
    from validate.trials import Trial, TrialsManifest, array_script, choose_trials, run_command, write_trials

    from ..scenario import Scenario
    from .export_out import write_export

    backend = "gloo" if hw.name.startswith("cpu") else "nccl"
    chosen, skipped = choose_trials(plans, model_spec, k, steps=6, warmup=3, backend=backend)
    if not chosen:
        raise SpecError(f"none of the {len(plans)} plans can be run as a trial: {skipped[0] if skipped else ''}",
                        field="--trials")
    folder = Path(out)
    trials, written = [], []
    from validate.job import layout_text

    for i, (plan, _job) in enumerate(chosen):
        path = None
        if export not in (None, "json"):
            scenario = Scenario(model=model_spec, hardware=hw, gpus=plan.gpus, training=plan.training,
                                layout=plan.layout)
            written += write_export(export, scenario, str(folder / f"plan_{i}"))
            path = export
        trials.append(Trial(index=i, plan_rank=plan.rank, label=plan.label, layout=layout_text(plan.layout),
                            predicted_step_s=plan.estimate.step_time_s, model=model_spec, training=plan.training,
                            plan_layout=plan.layout, export=path))
    manifest = TrialsManifest(hardware=hardware, calibration=calibration, gpus=chosen[0][0].gpus, trials=trials,
                              skipped=skipped)
    script = array_script(folder, len(chosen), gpus=manifest.gpus, gpus_per_node=hw.node.devices_per_node, backend=backend,
                          timeout_s=600.0)
    write_trials(folder, manifest, [j for _p, j in chosen], script)
    lines = [f"wrote {len(chosen)} trial(s) to {folder}: " + ", ".join(f"#{t.plan_rank} {t.label}" for t in trials)]
    lines += [f"skipped {s}" for s in skipped]
    lines.append("run them: " + run_command(folder) + f"; then: paraplan trials collect {folder}")
    return lines, written


@trials_app.command("run")
def run_cmd(
    folder: DirArg,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per trial.")] = 300.0,
    json_out: bool = JSON_OPTION,
) -> None:
    """Run every trial of DIR on this machine (what DIR/trials.sbatch does on a cluster)."""
    from validate.launch import run_jobs
    from validate.trials import read_manifest, trial_task

    manifest = read_manifest(folder)
    jobs = [trial_task(folder, t.index) for t in manifest.trials]
    results = run_jobs(jobs, timeout_s=timeout, workdir=folder)
    bad = [(t, j) for t, j in zip(manifest.trials, results.jobs) if j.partial]
    if json_out:
        print_json({"folder": str(folder), "trials": [{"index": t.index, "layout": j.layout, "step_time_s": j.step_time_s,
                                                       "error": j.error} for t, j in zip(manifest.trials, results.jobs)]})
    else:
        for t, j in zip(manifest.trials, results.jobs):
            state = fmt_seconds(j.step_time_s) if j.step_time_s else f"[red]failed[/]: {escape(j.error or '')}"
            console.print(f"trial {t.index} (#{t.plan_rank} {escape(t.label)}): {state}", highlight=False)
        console.print(f"next: paraplan trials collect {folder}", highlight=False)
    if bad:
        raise SpecError(f"trial {bad[0][0].index} did not finish: {bad[0][1].error}", field="trials run")


@trials_app.command("collect")
def collect_cmd(folder: DirArg, json_out: bool = JSON_OPTION) -> None:
    """Read the trials' traces back, calibrate, re-rank the plans by their measured steps."""
    from .trace_cmd import require_trace_reader

    require_trace_reader("DIR")
    from validate.trials_collect import collect_trials

    rep = collect_trials(folder)
    if json_out:
        print_json(rep)
        return
    table = Table(title=f"trials of {folder} re-ranked by measured step", title_justify="left")
    for col in ("measured #", "planned #", "plan", "measured", "planned", "error", "calibrated (other trials)", "error "):
        table.add_column(col, justify="left" if col == "plan" else "right")
    for r in rep.rows:
        table.add_row(str(r.measured_rank or "-"), str(r.plan_rank), escape(r.label),
                      fmt_seconds(r.measured_s) if r.measured_s else r.note or "-", fmt_seconds(r.predicted_plan_s),
                      _pct(r.error_plan_pct), fmt_seconds(r.predicted_loo_s) if r.predicted_loo_s else "-",
                      _pct(r.error_loo_pct))
    console.print(table)
    same = rep.best_measured == rep.best_predicted
    console.print(f"fastest measured: {escape(rep.best_measured or '-')}"
                  + (" (the planner's first choice)" if same else f"; the planner ranked first: {escape(rep.best_predicted)}"),
                  highlight=False)
    for n in rep.notes:
        console.print(f"note: {escape(n)}", highlight=False)
    console.print(f"overlay fitted on every trial: {rep.overlay}; re-plan with --hardware {rep.hardware} "
                  f"--calibration {rep.overlay}", highlight=False)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}%"
