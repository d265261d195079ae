"""``paraplan bench accuracy``: predict published measured runs and compare on each row's own
FLOPs convention.

For every row (see planner/bench/rows.py for the mapping and the documented defaults) the
analytic estimate gives a step time ``t`` (seconds). The compared figure is:

- ``sec_per_iter`` when the source printed it (not back-computed): error = t_meas / t_pred - 1;
- for a mixture-of-experts row, next ``tokens_per_sec_per_gpu`` when the source printed it (a measured
  throughput needs no FLOPs convention): error = predicted / measured tokens/s - 1;
- otherwise ``tflops_per_gpu`` on the row's convention (data README Sec. 4, formulas in
  planner/work/conventions.py; MoE rows: Megatron-Bridge's MoE-aware count of routed top-k and shared
  experts, MLA / GQA and MTP, ``megatron_bridge_flops``): the predicted TFLOP/s is the *same* formula's
  FLOPs per step divided by ``t * gpus``; error = pred / meas - 1;
- otherwise ``tokens_per_sec_per_gpu`` when the source printed it.

A MoE row is never compared on a dense FLOPs formula: without tokens/s or step time it needs the
Megatron-Bridge convention (or another MoE-aware one), else it is skipped with the reason.
Both are throughput errors in percent: positive means paraplan predicts a faster run than was
measured. The prediction path is :func:`predict`, which sees only the Scenario — no row id, no
source — so no per-row or per-source correction can enter it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

import hwprofiles
from hwprofiles import load_hardware

from ..cost import Estimate, estimate
from ..errors import SpecError
from ..evidence.table import recipe_family
from ..scenario import Scenario
from ..work.conventions import (
    bigscience_flops,
    gpt_neox_flops,
    korthikanti_model_flops,
    megatron_bridge_flops,
    megatron_core_model_flops,
    megatron_eq3_flops,
    mosaicml_model_flops_per_sequence,
    palm_model_flops_per_token,
)
from .gaps import GapRow, gap_flags
from .rows import BenchCase, ConventionInputs, HardwareMap, Unmappable, build_case, read_rows

WITHIN = 10.0  # percent: the "within 10 %" share of the summary
MOE_CONVENTIONS = ("megatron-bridge",)  # conventions that count routed top-k and shared experts

CONVENTIONS: dict[str, Callable[[ConventionInputs], float]] = {
    # FLOPs per optimizer step, each with the row's own numbers (planner/work/conventions.py)
    "megatron-eq3": lambda i: megatron_eq3_flops(i.batch, i.seq, i.layers, i.hidden, i.vocab,
                                                 4 if i.recompute == "full" else 3),
    "korthikanti-eq7": lambda i: korthikanti_model_flops(i.batch, i.seq, i.layers, i.hidden, i.vocab),
    "megatron-core": lambda i: megatron_core_model_flops(i.batch, i.seq, i.layers, i.hidden, i.heads, i.kv_heads,
                                                         i.head_dim, i.ffn_hidden, i.vocab, swiglu=i.swiglu),
    "mosaicml": lambda i: i.batch * mosaicml_model_flops_per_sequence(i.params, i.layers, i.hidden, i.seq),
    "palm": lambda i: i.batch * i.seq * palm_model_flops_per_token(i.params, i.layers, i.heads * i.head_dim, i.seq),
    "bigscience": lambda i: bigscience_flops(i.params, i.batch * i.seq),
    "gpt-neox": lambda i: gpt_neox_flops(i.params, i.layers, i.hidden, i.seq, i.batch * i.seq),
    "megatron-bridge": lambda i: megatron_bridge_flops(i.model, i.batch, i.seq, i.tp, i.mtp_layers),
}


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RowResult(_Result):
    """Prediction of one published row and its error."""

    row_id: str = Field(description="row id in the CSV")
    source_id: str = Field(description="source key")
    model: str = Field(description="model name as in the row")
    hardware: str = Field(description="hardware profile used")
    recipe: str = Field(description="framework recipe that priced the row (inferred from its framework column)")
    gpus: int = Field(description="ranks")
    cp: int = Field(1, description="context-parallel degree of the layout")
    layout: str = Field(description="layout, micro-batch and global batch used")
    recompute: str = Field(description="recompute setting used")
    compared: str = Field(description="'step_time' (sec_per_iter read from the source), 'tflops' or 'tokens'")
    convention: str | None = Field(description="FLOPs convention of the row's TFLOP/s")
    measured_tflops: float | None = Field(description="published TFLOP/s per GPU on the convention")
    predicted_tflops: float | None = Field(description="predicted TFLOP/s per GPU on the same convention")
    measured_step_s: float | None = Field(description="published seconds per step (read, not derived)")
    predicted_step_s: float = Field(description="predicted seconds per step")
    error_pct: float = Field(description="throughput error of the compared figure, % (+ = predicted faster)")
    tflops_error_pct: float | None = Field(description="error on TFLOP/s, %")
    step_error_pct: float | None = Field(description="error on step time as throughput, %")
    predicted_mfu: float = Field(description="paraplan's own MFU of the prediction")
    time_s: dict[str, float] = Field(description="predicted step-time breakdown, s")
    fits: bool = Field(description="the prediction fits in device memory (the real run did)")
    defaults_used: list[str] = Field(description="settings not stated by the row, filled with defaults")
    fully_stated: bool = Field(description="no default was needed")
    flags: list[str] = Field(description="other remarks: approximations, predicted out-of-memory, ...")
    moe: bool = Field(False, description="a mixture-of-experts model (expert parallelism priced)")
    measured_tokens_per_gpu: float | None = Field(None, description="published tokens/s per GPU (read)")
    predicted_tokens_per_gpu: float | None = Field(None, description="predicted tokens/s per GPU")
    memory_kind: str | None = Field(
        None, description="which peak the row's memory is and the prediction compared with it: 'reserved' (the "
        "caching allocator's reserved peak; predicted = live tensors + the profile's runtime reserve), "
        "'allocated' (max_memory_allocated; predicted = live tensors), 'unstated' (compared as reserved)")
    measured_memory_gib: float | None = Field(None, description="published peak memory per GPU, GiB")
    predicted_memory_gib: float | None = Field(None, description="predicted peak of the same kind, GiB")
    memory_error_pct: float | None = Field(
        None, description="predicted minus measured peak memory over measured, % (+ = predicted more)")


class Skipped(_Result):
    """A row that was not predicted."""

    row_id: str = Field(description="row id in the CSV")
    source_id: str = Field(description="source key")
    model: str = Field(description="model name")
    hardware: str = Field(description="hardware as in the row")
    reason: str = Field(description="why it was skipped")


class GroupStats(_Result):
    """Error statistics of a group of rows (absolute throughput errors, %)."""

    rows: int = Field(description="rows in the group")
    median_abs_error_pct: float | None = Field(description="median |error|, %")
    mean_abs_error_pct: float | None = Field(description="mean |error|, %")
    within_10pct: float | None = Field(description="share of rows with |error| <= 10 %, 0..1")
    median_error_pct: float | None = Field(description="median signed error, % (+ = predicted faster)")


class Summary(_Result):
    """Error statistics overall, over fully-stated rows, per hardware profile and per source."""

    all_rows: GroupStats = Field(description="every predicted row")
    dense_rows: GroupStats | None = Field(None, description="every predicted dense row (no experts)")
    fully_stated: GroupStats = Field(description="dense rows that needed no default (MoE rows: moe_rows)")
    by_hardware: dict[str, GroupStats] = Field(description="dense rows per hardware profile")
    by_source: dict[str, GroupStats] = Field(description="per source key")
    by_recipe: dict[str, GroupStats] = Field(description="dense rows per framework recipe")
    by_recipe_family: dict[str, GroupStats] = Field(
        default_factory=dict, description="dense rows per recipe family: a recipe with its releases (``base:``), "
        "e.g. fsdp1 with llm-foundry, deepspeed with deepspeed-2021; only families of more than one recipe")
    fully_stated_by_hardware: dict[str, GroupStats] = Field(description="fully-stated dense rows per profile")
    context_parallel: GroupStats | None = Field(None, description="rows run with context parallelism (cp > 1)")
    moe_rows: GroupStats | None = Field(None, description="mixture-of-experts rows (expert parallelism priced)")
    memory: GroupStats | None = Field(
        None, description="peak-memory errors of the rows that publish a peak (predicted minus measured over "
        "measured, %; + = predicted more)")


class AccuracyReport(_Result):
    """Result of ``paraplan bench accuracy``."""

    csv: str = Field(description="the CSV read")
    rows: list[RowResult] = Field(description="predicted rows")
    skipped: list[Skipped] = Field(description="rows not predicted, with the reason")
    skipped_reasons: dict[str, int] = Field(description="count of skipped rows per reason")
    summary: Summary = Field(description="error statistics")


def default_csv() -> Path:
    """The shipped data set: hwprofiles/data/published_runs.csv (citations in PUBLISHED_RUNS.md)."""
    return Path(hwprofiles.__file__).resolve().parent / "data" / "published_runs.csv"


def predict(scenario: Scenario) -> Estimate:
    """The prediction of one scenario: the analytic estimate, nothing added (no row, no source)."""
    return estimate(scenario.model, scenario.hardware, scenario.training, scenario.layout, scenario.gpus)


def compare(case: BenchCase, est: Estimate) -> RowResult | str:
    """The RowResult of ``case`` given its estimate, or the reason nothing can be compared."""
    t = est.step_time_s
    gpus = case.scenario.gpus
    pred_tflops = meas_tflops = tflops_err = None
    moe_blind = case.moe and case.convention not in MOE_CONVENTIONS  # a dense formula cannot count experts
    if case.convention is not None and case.measured_tflops and not moe_blind:
        meas_tflops = case.measured_tflops
        pred_tflops = CONVENTIONS[case.convention](case.inputs) / (t * gpus) / 1e12
        tflops_err = (pred_tflops / meas_tflops - 1) * 100
    step_err = (case.measured_step_s / t - 1) * 100 if case.measured_step_s else None
    tokens_err = None
    if case.measured_tokens_per_gpu:
        tokens_err = (case.scenario.training.tokens_per_step / t / gpus / case.measured_tokens_per_gpu - 1) * 100
    if step_err is None and tflops_err is None and tokens_err is None:
        return "no comparable measurement (no sec_per_iter read and TFLOP/s convention unknown)"
    order = ("step_time", "tokens", "tflops") if case.moe else ("step_time", "tflops", "tokens")
    errors = {"step_time": step_err, "tflops": tflops_err, "tokens": tokens_err}
    compared = next(k for k in order if errors[k] is not None)
    lay = case.scenario.layout
    trn = case.scenario.training
    flags = list(case.flags) + ([] if est.fits else ["predicted_oom"])
    mem_pred = mem_err = None
    if case.measured_memory_gib:
        reserve = est.memory[0].breakdown.reserved if est.memory else 0.0
        mem_pred = (est.peak_memory_bytes - (reserve if case.memory_kind == "allocated" else 0.0)) / 2**30
        mem_err = (mem_pred / case.measured_memory_gib - 1) * 100
    gap = GapRow(case.source_id, case.model_name.lower(), trn.recipe, lay.cp, lay.effective_zero_stage, lay.dp, case.moe,
                 trn.moe_a2a_overlap)
    flags += gap_flags(gap, errors[compared], mem_err)  # rows beyond 25 % name their known gap (bench/gaps.py)
    return RowResult(
        row_id=case.row_id, source_id=case.source_id, model=case.model_name, hardware=est.hardware,
        recipe=case.scenario.training.recipe, gpus=gpus,
        cp=lay.cp,
        layout=f"{lay.describe()} mb{trn.micro_batch_size} gbs{trn.global_batch_size}",
        recompute=trn.recompute, compared=compared, convention=case.convention,
        measured_tflops=meas_tflops, predicted_tflops=pred_tflops, measured_step_s=case.measured_step_s,
        predicted_step_s=t,
        error_pct=errors[compared],
        tflops_error_pct=tflops_err, step_error_pct=step_err, predicted_mfu=est.mfu,
        time_s=est.time.model_dump(), fits=est.fits, defaults_used=list(case.defaults_used),
        fully_stated=not case.defaults_used, flags=flags, moe=case.moe,
        measured_tokens_per_gpu=case.measured_tokens_per_gpu,
        predicted_tokens_per_gpu=case.scenario.training.tokens_per_step / t / gpus,
        memory_kind=case.memory_kind if case.measured_memory_gib else None,
        measured_memory_gib=case.measured_memory_gib, predicted_memory_gib=mem_pred, memory_error_pct=mem_err,
    )


def group_stats(errors: Iterable[float]) -> GroupStats:
    """Median / mean absolute error, share within 10 %, median signed error."""
    errs = list(errors)
    if not errs:
        return GroupStats(rows=0, median_abs_error_pct=None, mean_abs_error_pct=None, within_10pct=None,
                          median_error_pct=None)
    absolute = [abs(e) for e in errs]
    return GroupStats(
        rows=len(errs), median_abs_error_pct=statistics.median(absolute),
        mean_abs_error_pct=statistics.fmean(absolute),
        within_10pct=sum(a <= WITHIN for a in absolute) / len(errs), median_error_pct=statistics.median(errs),
    )


def summarize(rows: list[RowResult]) -> Summary:
    """Summary statistics of predicted rows."""
    def by(key: Callable[[RowResult], str], subset: list[RowResult]) -> dict[str, GroupStats]:
        groups: dict[str, list[float]] = {}
        for r in subset:
            groups.setdefault(key(r), []).append(r.error_pct)
        return {k: group_stats(v) for k, v in sorted(groups.items())}

    dense = [r for r in rows if not r.moe]  # MoE rows have their own group (moe_rows)
    full = [r for r in dense if r.fully_stated]
    return Summary(
        all_rows=group_stats(r.error_pct for r in rows), dense_rows=group_stats(r.error_pct for r in rows if not r.moe),
        fully_stated=group_stats(r.error_pct for r in full),
        by_hardware=by(lambda r: r.hardware, dense), by_source=by(lambda r: r.source_id, rows),
        by_recipe=by(lambda r: r.recipe, dense),
        by_recipe_family={k: g for k, g in by(lambda r: recipe_family(r.recipe), dense).items()
                          if len({r.recipe for r in dense if recipe_family(r.recipe) == k}) > 1},
        fully_stated_by_hardware=by(lambda r: r.hardware, full),
        context_parallel=group_stats(r.error_pct for r in rows if r.cp > 1),
        moe_rows=group_stats(r.error_pct for r in rows if r.moe),
        memory=group_stats(r.memory_error_pct for r in rows if r.memory_error_pct is not None),
    )


def predicted_rows(path: Path, hardware_map: HardwareMap = ()
                   ) -> Iterator[tuple[dict[str, str], BenchCase | None, RowResult | str]]:
    """(row, its case or None, its RowResult or the reason it was not predicted) for every row of the
    CSV ``path``, in order (``run_accuracy`` and planner.bench.evidence read the same predictions)."""
    def fits(scenario: Scenario) -> bool:
        return predict(scenario).fits

    for row in read_rows(path):
        case = None
        try:
            case = build_case(row, hardware_map, load_hardware, fits)
            outcome = compare(case, predict(case.scenario))
        except Unmappable as exc:
            outcome = str(exc)
        except SpecError as exc:  # the layout does not run the model (heads % tp, batch % dp, ...)
            outcome = str(exc)
        yield row, case, outcome


def run_accuracy(csv_path: str | Path | None = None, hardware_map: HardwareMap = ()) -> AccuracyReport:
    """Predict every row of ``csv_path`` (default: the shipped data set) and compare."""
    path = Path(csv_path) if csv_path is not None else default_csv()
    for _prefix, _mem, profile in hardware_map:  # a bad --hardware-map entry is an input error (exit 2)
        load_hardware(profile)
    results: list[RowResult] = []
    skipped: list[Skipped] = []
    for row, _case, outcome in predicted_rows(path, hardware_map):
        if isinstance(outcome, str):
            skipped.append(Skipped(row_id=row["row_id"], source_id=row["source_id"], model=row["model"],
                                   hardware=row["hardware"], reason=outcome))
        else:
            results.append(outcome)
    reasons = Counter(s.reason for s in skipped)
    return AccuracyReport(csv=str(path), rows=results, skipped=skipped, skipped_reasons=dict(reasons),
                          summary=summarize(results))

