"""``paraplan plan``: search the layout space, rank plans, explain the winner, export launch configs."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..errors import InfeasibleError, SpecError
from ..outputs import check_output
from ..scenario import Scenario
from ..specs import Layout, TrainingSpec
from . import budget_render as br
from . import common as c
from .app import JSON_OPTION, app, err_console, print_json
from .app import console as console_out
from .fit_table import Col, fitted_table
from .render import GIB, fmt_seconds, render_estimate

REF_KEYS = {"tp": "tp", "pp": "pp", "vpp": "vpp", "zero": "zero_stage", "schedule": "schedule",
            "sp": "sequence_parallel", "micro-batch": "micro_batch_size", "recompute": "recompute"}


def parse_reference(text: str, gpus: int, training: TrainingSpec) -> tuple[Layout, TrainingSpec]:
    """``tp=4,pp=128,zero=1,micro-batch=1,recompute=full`` -> (Layout, TrainingSpec); dp = gpus/(tp*pp)."""
    lay: dict = {}
    trn: dict = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        if key not in REF_KEYS or not value:
            raise SpecError(f"'{item}' is not key=value with key one of: {', '.join(REF_KEYS)}", field="--reference")
        name = REF_KEYS[key]
        if name in ("micro_batch_size", "recompute"):
            trn[name] = int(value) if name == "micro_batch_size" else value
        elif name == "schedule":
            lay[name] = value
        elif name == "sequence_parallel":
            lay[name] = value.lower() in ("1", "true", "on", "yes")
        else:
            try:
                lay[name] = int(value)
            except ValueError:
                raise SpecError(f"'{item}': {key} must be an integer", field="--reference") from None
    if lay.get("vpp", 1) > 1:
        lay.setdefault("schedule", "interleaved-1f1b")
    per = lay.get("tp", 1) * lay.get("pp", 1)
    if gpus % per:
        raise SpecError(f"gpus({gpus}) % (tp * pp = {per}) != 0", field="--reference")
    return Layout(dp=gpus // per, **lay), training.replace(**trn)


SCHED_SHORT = {"gpipe": "gpipe", "1f1b": "1f1b", "interleaved-1f1b": "i1f1b", "zb-h1": "zb-h1"}


def plans_table(result, width: int | None = None, evidence: dict | None = None) -> Table:
    """Top plans, with the reference as a last dimmed row; fitted to ``width`` (the console's):
    numbers are never cut, the layout column wraps and recompute is left out first. ``evidence``
    (planner.cli.evidence_render.plan_evidence) adds its column and marks MFUs above every measured run."""
    from .evidence_render import evidence_cell, mfu_cell

    cols = [Col("#"), Col("layout", numeric=False, drop=1, min_text=9), Col("mb x acc"),
            Col("recomp", numeric=False, drop=2), Col("step"), Col("tokens/s"), Col("MFU"), Col("peak/cap GiB"),
            Col("bubble"), Col("exp.comm")]
    if evidence is not None:
        cols.append(Col("evidence", numeric=False, min_text=10))
    if result.objective == "cost":
        cols.insert(len(cols) - (evidence is not None), Col("GPU-h/Mtok"))
    rows = [(str(p.rank), p, None) for p in result.plans]
    if result.reference is not None:
        rows.append(("ref", result.reference, "dim"))
    cells = []
    for tag, p, _style in rows:
        e = p.estimate
        comm = (e.time.tp_comm + e.time.cp_comm + e.time.pp_comm + e.time.dp_comm_exposed) / e.step_time_s
        over = e.peak_memory_bytes > p.usable_memory_bytes
        name = p.layout.describe() + " " + SCHED_SHORT[p.layout.schedule]
        if p.gpus != result.gpus:
            name += f" @{p.gpus}"
        ovl = f"ovl:{p.training.tp_overlap_style[:4]}" if p.training.tp_comm_overlap and p.layout.tp > 1 else ""
        recomp = " ".join(filter(None, (p.training.recompute, p.training.offload.describe(), ovl)))
        ev = (evidence or {}).get(0 if tag == "ref" else p.rank)
        row = [tag, name, f"{p.training.micro_batch_size}x{e.micro_batches}", recomp,
               fmt_seconds(e.step_time_s), f"{e.tokens_per_s:,.0f}", mfu_cell(e.mfu, ev),
               f"{e.peak_memory_bytes / GIB:.1f}/{p.usable_memory_bytes / GIB:.1f}" + ("!" if over else ""),
               f"{e.bubble_fraction:.1%}", f"{comm:.1%}"]
        if result.objective == "cost":
            row.append(f"{p.gpu_hours_per_mtok:.2f}")
        if evidence is not None:
            row.append(evidence_cell(ev) if ev is not None else "-")
        cells.append(row)
    title = (f"Top {len(result.plans)} of {result.total_feasible} feasible plans "
             f"({result.objective}; {result.gpus} x {result.hardware})")
    return fitted_table(cols, cells, console_out.width if width is None else width, title=title,
                        styles=[s for _t, _p, s in rows], show_edge=False, pad_edge=False)


@app.command()
def plan(
    model: c.ModelOpt = None, hardware: c.HardwareOpt = None, calibration: c.CalibrationOpt = None,
    gpus: c.GpusOpt = None, global_batch: c.GlobalOpt = None,
    tokens_per_step: Annotated[Optional[int], typer.Option("--tokens-per-step", help="Tokens per step (instead of --global-batch).")] = None,
    seq: c.SeqOpt = None, precision: c.PrecisionOpt = None, recipe: c.RecipeOpt = None,
    attention_kernel: c.AttnKernelOpt = None,
    max_tp: Annotated[Optional[int], typer.Option("--max-tp", help="Largest tensor-parallel degree.")] = None,
    pp: c.PpOpt = None, zero: c.ZeroOpt = None, micro_batch: c.MicroOpt = None, recompute: c.RecomputeOpt = None,
    schedule: c.ScheduleOpt = None, sequence_parallel: c.SpOpt = None,
    compile: c.CompileOpt = None, fp8_all_gather: c.Fp8GatherOpt = None,
    memory_headroom: Annotated[float, typer.Option("--memory-headroom", help="Fraction of HBM kept free (0 to <1).")] = 0.0,
    allow_cross_node_tp: Annotated[bool, typer.Option("--allow-cross-node-tp", help="Allow tp groups spanning nodes.")] = False,
    objective: Annotated[str, typer.Option("--objective", help="throughput, memory or cost (GPU-hours per token).")] = "throughput",
    top: Annotated[int, typer.Option("--top", help="Plans to show.")] = 10,
    refine: Annotated[Optional[int], typer.Option("--refine", help="Re-rank the top K with the simulator.")] = None,
    reference: Annotated[Optional[str], typer.Option("--reference", help="Layout to compare, e.g. tp=4,pp=128,zero=1,micro-batch=1,recompute=full.")] = None,
    export: Annotated[Optional[str], typer.Option("--export", help="megatron, deepspeed, torchtitan or json (printed verbatim; tables go to stderr).")] = None,
    out: Annotated[Optional[str], typer.Option("--out", help="json: write to FILE; megatron/deepspeed/torchtitan: write config + launch.sh into DIR; with --trials: the trials folder.")] = None,
    trials: Annotated[Optional[int], typer.Option("--trials", help="Write the top K plans as trial runs (one job each, profiler on; a SLURM job array) into --out DIR; then paraplan trials run|collect DIR.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Processes for the search (results do not depend on it).")] = 1,
    offload: Annotated[Optional[str], typer.Option("--offload", help="auto (only where needed to fit), none, or off:opt, off:opt+grad, off:opt+grad+param, off:opt+grad+param+act.")] = None,
    rank_order: Annotated[Optional[str], typer.Option("--rank-order", help="tp-cp-pp-dp or tp-cp-dp-pp (default: search both).")] = None,
    tokens: br.TokensOpt = None, price_per_gpu_hour: br.PriceOpt = None, power_per_gpu: br.PowerOpt = None,
    pue: br.PueOpt = None, failure_rate: br.FailureRateOpt = None, checkpoint: br.CheckpointOpt = None,
    checkpoint_interval: br.CheckpointIntervalOpt = None,
    framework: c.FrameworkOpt = None,
    ep: c.EpOpt = None, etp: c.EtpOpt = None, moe_capacity_factor: c.CapacityOpt = None,
    moe_imbalance: c.ImbalanceOpt = None, moe_shared_expert_overlap: c.SharedOverlapOpt = None,
    moe_dispatcher: c.DispatcherOpt = None,
    validated_only: Annotated[bool, typer.Option("--validated-only", help="Keep only plans whose layout class has "
                              "measured runs (the evidence column); ranking stays by prediction.")] = False,
    json_out: bool = JSON_OPTION,
) -> None:
    """Search layouts (tp, pp, vpp, dp, ZeRO, micro-batch, recompute, schedule), rank and explain them."""
    from hwprofiles import load_hardware, load_model

    from ..exports import FORMATS, export_text
    from ..pricing.placement import RANK_ORDERS, tier_mapping
    from ..search import OBJECTIVES, SearchConstraints, search
    from ..search import refine as refine_plans
    from ..search.validated import ALL_PLANS, keep_validated
    from ..work.offload import OFFLOAD_LEVELS
    from .evidence_render import plan_evidence, plan_notes
    from .export_out import plain_stdout, write_export

    for field, value in (("recompute", recompute), ("precision", precision), ("recipe", recipe),
                         ("schedule", schedule), ("moe-dispatcher", moe_dispatcher)):
        c.check_choice(field, value)
    offload_names = ("auto", "none", *(lv.describe() for lv in OFFLOAD_LEVELS))
    if offload is not None and offload not in offload_names:
        raise SpecError(f"'{offload}' is not one of: {', '.join(offload_names)}", field="--offload")
    if rank_order is not None and rank_order not in RANK_ORDERS:
        raise SpecError(f"'{rank_order}' is not one of: {', '.join(RANK_ORDERS)}", field="--rank-order")
    if objective not in OBJECTIVES:
        raise SpecError(f"'{objective}' is not one of: {', '.join(OBJECTIVES)}", field="--objective")
    if export is not None and export not in FORMATS:
        raise SpecError(f"'{export}' is not one of: {', '.join(FORMATS)}", field="--export")
    if not 0 <= memory_headroom < 1:
        raise SpecError(f"{memory_headroom} must be in [0, 1)", field="--memory-headroom")
    if top < 1:
        raise SpecError(f"{top} must be >= 1", field="--top")
    max_workers = 4 * (os.cpu_count() or 1)
    if not 1 <= workers <= max_workers:
        raise SpecError(f"{workers} is outside 1..{max_workers} (4 processes per CPU of this machine)",
                        field="--workers")
    if zero is not None and zero not in (0, 1, 2, 3):
        raise SpecError(f"{zero} is not one of: 0, 1, 2, 3", field="--zero")
    for name, value in (("--model", model), ("--hardware", hardware), ("--gpus", gpus)):
        if value is None:
            raise SpecError("required", field=name)
    for name, value in (("--model", model), ("--hardware", hardware), ("--calibration", calibration)):
        c.check_name(name, value)
    c.check_positive(("--gpus", gpus), ("--max-tp", max_tp), ("--pp", pp), ("--micro-batch", micro_batch), ("--seq", seq),
                     ("--global-batch", global_batch), ("--tokens-per-step", tokens_per_step))
    reliability_opts = br.reliability_options(tokens, failure_rate, checkpoint, checkpoint_interval)
    if trials is not None and (trials < 1 or out is None):
        raise SpecError(f"{trials} trials need K >= 1 and --out DIR (the trials folder)", field="--trials")
    if out is not None and export is None and trials is None:
        raise SpecError("writes the --export text; give --export megatron|deepspeed|torchtitan|json", field="--out")
    check_output(out, "--out", folder=trials is not None or export not in (None, "json"))  # a folder
    if gpus <= 0:
        raise SpecError(f"gpus({gpus}) must be > 0", field="--gpus")
    if refine is not None and refine <= 0:
        raise SpecError(f"{refine} must be > 0", field="--refine")
    model_spec = load_model(model)
    hw = load_hardware(hardware, calibration)
    br.check_reliability_hardware(hw, reliability_opts)
    if seq is not None:
        c.check_seq_fits(model_spec, seq)
    trn: dict = {"precision": precision, "recipe": recipe, "seq_length": seq,
                 "moe_capacity_factor": moe_capacity_factor, "moe_load_imbalance": moe_imbalance,
                 "moe_shared_expert_overlap": moe_shared_expert_overlap, "moe_token_dispatcher": moe_dispatcher,
                 "attention_kernel": attention_kernel, "compile": compile, "fp8_all_gather": fp8_all_gather}
    trn = {k: v for k, v in trn.items() if v is not None}
    if attention_kernel is not None:
        from ..pricing.compute import attention_points

        with c.user_names({"--attention-kernel"}, None):
            attention_points(hw.device, attention_kernel)
    seq_len = seq or TrainingSpec.model_fields["seq_length"].default
    if (global_batch is None) == (tokens_per_step is None):
        raise SpecError("give exactly one of --global-batch or --tokens-per-step", field="--global-batch")
    if tokens_per_step is not None:
        if tokens_per_step <= 0 or tokens_per_step % seq_len:
            raise SpecError(f"tokens_per_step({tokens_per_step}) must be a positive multiple of seq({seq_len})",
                            field="--tokens-per-step")
        global_batch = tokens_per_step // seq_len
    if global_batch <= 0:
        raise SpecError(f"global_batch({global_batch}) must be > 0", field="--global-batch")
    from ..frameworks import DEFAULT_RECIPE, resolve_framework

    if recipe is None and (framework or export) in DEFAULT_RECIPE:  # price with the target's recipe
        trn["recipe"] = DEFAULT_RECIPE[framework or export]
    with c.user_names(set(), None):  # errors name the option typed (--fp8-all-gather, not training.fp8_all_gather)
        training = TrainingSpec(global_batch_size=global_batch, **trn)
    target = resolve_framework(framework, training.recipe, export)
    cons = SearchConstraints(framework=target, framework_model_rules=bool(framework or export), max_tp=max_tp, pp=pp, zero=zero, micro_batch=micro_batch, recompute=recompute,
                             schedule=schedule, sequence_parallel=sequence_parallel,
                             memory_headroom=memory_headroom, allow_cross_node_tp=allow_cross_node_tp,
                             objective=objective, rank_order=rank_order, offload=offload,
                             ep=ep, etp=etp)
    ref_layout = ref_training = None
    ref_source = None
    if reference is None:  # the layout published with this model, when it divides the GPU count
        from hwprofiles.loader import published_layout

        published = published_layout(model_spec.name)
        if published is not None:
            try:
                ref_layout, ref_training = parse_reference(published[0], gpus, training)
                ref_source = published[1]
            except SpecError:
                ref_layout = ref_training = None
    elif reference:
        ref_layout, ref_training = parse_reference(reference, gpus, training)
        from ..frameworks import check_launchable

        check_launchable(target, model_spec, ref_training, ref_layout, field=f"--reference (--framework {target})",
                         model_rules=bool(framework or export))
    if refine is not None:
        from ..search import resimulate

        if resimulate.simulator_available() is None:
            raise SpecError(resimulate.NOT_AVAILABLE, field="--refine")
    with Progress(TextColumn("searching layouts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True, disable=json_out) as bar:
        task = bar.add_task("search", total=None)
        result = search(model_spec, hw, gpus, training, cons,
                        top=ALL_PLANS if validated_only else max(top, 4 * (trials or 0)),
                        progress=lambda done, total: bar.update(task, completed=done, total=total),
                        reference=ref_layout, reference_training=ref_training, workers=workers)
    candidates = result.plans  # --trials walks further down the ranking than --top shows
    if validated_only:
        result = keep_validated(result, hw, cons, top)
        candidates = result.plans
    elif len(result.plans) > top:
        result = result.model_copy(update={"plans": result.plans[:top]})
    if refine is not None:
        result = refine_plans(result, refine, model_spec, hw)
    best = result.best
    evidence = plan_evidence(result, hw)
    without_offload = None
    if best.training.offload.any:  # say what the plan would miss without offload
        try:
            search(model_spec, hw, gpus, training, cons.replace(offload="none"), top=1)
        except InfeasibleError as exc:
            without_offload = str(exc)
    budget = br.budget_for(best.estimate, hw, tokens, price_per_gpu_hour, power_per_gpu, pue)
    reliability = br.reliability_for(best.estimate, model_spec, hw, budget, reliability_opts)
    exported, written = None, []
    trial_lines: list[str] = []
    if trials is not None:
        from .trials_cmd import write_plan_trials

        trial_lines, written = write_plan_trials(candidates, model_spec, hardware, calibration, trials, out, export, hw)
    elif export is not None:
        scenario = Scenario(model=model_spec, hardware=hw, gpus=best.gpus, training=best.training,
                            layout=best.layout)
        exported = export_text(export, scenario)
        if out:
            written = write_export(export, scenario, out)
    from .moe_render import breakdown_for, expert_comm_table

    moe = breakdown_for(model_spec, hw, best.training, best.layout, best.gpus, best.estimate.step_time_s)
    if json_out:
        payload = result.model_dump(mode="json")
        for plan_json in payload["plans"]:
            plan_json["evidence"] = evidence[plan_json["rank"]].model_dump(mode="json")
        payload["best"]["evidence"] = evidence[result.best.rank].model_dump(mode="json")
        if payload.get("reference") is not None:
            payload["reference"]["evidence"] = evidence[0].model_dump(mode="json")
        if moe is not None:
            payload["expert_communication"] = moe.model_dump(mode="json")
        payload["layouts_per_s"] = result.stats.layouts_per_s
        payload["reference_source"] = ref_source
        br.with_budget(payload, budget, reliability)
        payload["tiers"] = tier_mapping(best.layout, hw)
        payload["without_offload"] = without_offload
        if exported is not None:
            payload["export"] = {"format": export, "path": out, "files": written if out else None,
                                 "framework": target, "text": None if out else exported}
        if trials is not None:
            payload["trials"] = {"folder": out, "messages": trial_lines, "files": written}
        print_json(payload)
        return
    console = err_console if exported is not None and not out else console_out  # stdout carries the export
    console.print(plans_table(result, evidence=evidence))
    for line in plan_notes(evidence):
        console.print(line)
    s = result.stats
    rej = ", ".join(f"{v} {k}" for k, v in s.rejected.items())
    console.print(Text(f"searched {s.structures} layout structures, memory-checked {s.memory_checked}, priced "
                       f"{s.priced} in {s.elapsed_s:.2f} s ({s.layouts_per_s:,.0f} layouts/s); rejected: {rej}",
                       style="dim"))
    console.print()
    console.print(Text(f"Best plan: {best.label}", style="bold green"))
    console.print(Text("network tiers: " + ", ".join(tier_mapping(best.layout, hw)), style="dim"))
    if without_offload is not None:
        console.print(Text(f"offload is needed: without it, {without_offload}", style="yellow"))
    from ..cost import estimate as estimate_with_ops  # the best plan again, with its recipe's per-op notes

    console.print(render_estimate(estimate_with_ops(model_spec, hw, best.training, best.layout, best.gpus,
                                                    breakdown=True)))
    if moe is not None:
        console.print(expert_comm_table(moe))
    console.print()
    if budget is not None:
        console.print(br.budget_table(budget))
        console.print()
    if reliability is not None:
        console.print(br.reliability_table(reliability, budget))
        console.print()
    if ref_source is not None:
        console.print(Text(f"• reference row 'ref': the layout published with {model_spec.name} ({ref_source}), "
                           "priced with the same model and recipe", style="dim"))
    for line in result.explanation:
        console.print(Text("• " + line))
    for line in trial_lines:
        console.print(Text(line, style="green"))
    if exported is not None:
        console.print()
        if out:
            console.print(Text(f"wrote {export} export to {out}: {', '.join(written)}", style="green"))
        else:
            plain_stdout(exported)
