"""What one validation job runs: model, layout, batch, precision, steps. Torch-free.

A job's ``training_spec()`` is the ``TrainingSpec`` the planner is asked about, so the validator and
the cost model describe the same step.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError, model_validator

import hwprofiles  # noqa: F401 - installs the recipe loader a TrainingSpec resolves its recipe through
from planner.errors import SpecError, format_validation_error
from planner.specs import Layout, ModelSpec, TrainingSpec
from planner.specs.base import Spec
from planner.specs.layout import check_layout

#: Timed or warm-up steps of one validation job at most (a step of the tiny CPU model is ~0.1 s).
MAX_STEPS = 10_000

LAYOUT_KEYS = {"tp", "pp", "dp", "cp", "cp_kind", "vpp", "zero", "zero_stage", "schedule", "fsdp", "sp",
               "sequence_parallel", "ep"}


def parse_layout(text: str) -> Layout:
    """``tp=2,pp=2,dp=1,zero=1,fsdp,sp,schedule=gpipe,vpp=2`` → Layout (SpecError on bad keys)."""
    values: dict[str, object] = {}
    for raw in text.replace(" ", "").split(","):
        if not raw:
            continue
        key, _, val = raw.partition("=")
        key = key.lower()
        if key not in LAYOUT_KEYS:
            raise SpecError(f"unknown key '{key}' in '{text}'; allowed: {', '.join(sorted(LAYOUT_KEYS))}",
                            field="layout")
        if key in ("fsdp", "sp", "sequence_parallel"):
            flag = val.lower() not in ("0", "false", "no", "off") if val else True
            values["fsdp" if key == "fsdp" else "sequence_parallel"] = flag
        elif key in ("schedule", "cp_kind"):
            values[key] = val
        else:
            try:
                values["zero_stage" if key.startswith("zero") else key] = int(val)
            except ValueError:
                raise SpecError(f"'{key}' needs an integer, got '{val}'", field="layout") from None
    if values.get("vpp", 1) > 1 and "schedule" not in values:
        values["schedule"] = "interleaved-1f1b"
    if values.get("cp", 1) > 1 and "cp_kind" not in values:
        values["cp_kind"] = "ring"  # the validator's cp job runs the ring unless told cp_kind=allgather
    if "ep" in values and "dp" not in values:  # the experts' ranks are data-parallel ranks: ep divides dp
        values["dp"] = values["ep"]
    try:
        return Layout.model_validate(values)
    except ValueError as exc:  # pydantic ValidationError is a ValueError


        msg = format_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise SpecError(f"'{text}': {msg}", field="layout") from None


def layout_text(layout: Layout) -> str:
    """Inverse of ``parse_layout`` (only non-default keys), e.g. ``tp=2,pp=2``."""
    parts = [f"tp={layout.tp}", f"pp={layout.pp}", f"dp={layout.dp}"]
    if layout.cp > 1:
        parts += [f"cp={layout.cp}", f"cp_kind={layout.cp_kind or 'ring'}"]
    if layout.pp > 1:
        parts.append(f"schedule={layout.schedule}")
    if layout.vpp > 1:
        parts.append(f"vpp={layout.vpp}")
    if layout.fsdp:
        parts.append("fsdp")
    elif layout.zero_stage:
        parts.append(f"zero={layout.zero_stage}")
    if layout.sequence_parallel:
        parts.append("sp")
    if layout.ep > 1:
        parts.append(f"ep={layout.ep}")
    return ",".join(parts)


class JobSpec(Spec):
    """One validation job. Batches are in sequences; times in seconds."""

    model: ModelSpec = Field(description="the model (planner spec)")
    layout: Layout = Field(description="the parallel layout")
    seq_length: int = Field(64, gt=0, description="tokens per sequence")
    global_batch_size: int = Field(8, gt=0, description="sequences per optimizer step")
    micro_batch_size: int = Field(2, gt=0, description="sequences per micro-batch per data-parallel rank")
    recompute: Literal["none", "selective", "full"] = Field("none", description="activation recompute")
    compute_dtype: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="fp32 (exact, CPU default), or bf16 / fp16 autocast with fp32 parameters (fp16 with "
        "dynamic loss scaling)"
    )
    recipe: Literal["torch-amp", "fsdp"] = Field(
        "torch-amp", description="torch-amp: fp32 parameters, autocast to compute_dtype; fsdp: FSDP2 mixed "
        "precision (compute_dtype parameters gathered, fp32 gradient reduction and optimizer), dp > 1 with "
        "zero >= 2 only")
    optimizer: Literal["adam", "sgd"] = Field("adam", description="optimizer")
    lr: float = Field(1e-3, gt=0, description="learning rate")
    steps: int = Field(4, gt=0, le=MAX_STEPS, description="timed training steps (after warm-up)")
    warmup: int = Field(1, ge=0, le=MAX_STEPS, description="untimed warm-up steps")
    seed: int = Field(1234, description="seed of weights and data")
    backend: Literal["gloo", "nccl"] = Field("gloo", description="torch.distributed backend")
    check_numerics: bool = Field(True, description="compare step 1 with a single-process reference")
    track_memory: bool = Field(True, description="measure peak memory per rank")
    count_collectives: bool = Field(True, description="count one step's collective calls (torch profiler)")
    trace_steps: int = Field(2, ge=0, description="steps run under torch.profiler after the timed ones, their "
                             "trace kept per rank (0 = none; the collective calls are counted on them)")
    fault: str | None = Field(
        None, description="fault injection for robustness tests: 'RANK:die' or 'RANK:hang' (in step 1)"
    )

    @model_validator(mode="after")
    def _check(self):
        if self.fault is not None:
            rank, _, kind = self.fault.partition(":")
            if not rank.isdigit() or kind not in ("die", "hang"):
                raise ValueError(f"fault '{self.fault}' must be RANK:die or RANK:hang")
        return self

    @property
    def nproc(self) -> int:
        """Processes (ranks) the job needs."""
        return self.layout.gpus

    def optimizer_options(self) -> dict[str, bool]:
        """The Adam implementation the job's recipe prices (planner.pricing.pricer.Pricer.optimizer_time): the
        fused single-pass kernel unless the recipe says foreach or a per-tensor loop. Untold, torch picks its
        single-tensor loop on a CPU (the foreach default covers CUDA-like devices only: torch/optim/optimizer.py
        ``_default_to_fused_or_foreach``), which runs every operation per tensor, each through DTensor's dispatch
        for DTensor parameters; the fused kernel (CPU since torch 2.4; DTensor ``aten._fused_adam_``) is one call."""
        if self.optimizer != "adam":
            return {}
        recipe = self.training_spec().recipe_spec
        if recipe.optimizer_loop_sync:
            return {"foreach": False}
        return {"foreach": True} if recipe.optimizer_foreach else {"fused": True}

    def training_spec(self) -> TrainingSpec:
        """The planner's description of this step (recipe torch-amp: fp32 parameters and autocast; or
        fsdp: FSDP2 mixed precision)."""
        return TrainingSpec(
            seq_length=self.seq_length,
            global_batch_size=self.global_batch_size,
            micro_batch_size=self.micro_batch_size,
            precision="fp16" if self.compute_dtype == "fp16" else "bf16",
            recipe=self.recipe,
            optimizer=self.optimizer,
            recompute=self.recompute,
            flash_attention=True,
        )

    def effective_model(self) -> ModelSpec:
        """The model as the validator builds it (tied embeddings are untied under tp or pp > 1)."""
        if self.model.tied_embeddings and (self.layout.tp > 1 or self.layout.pp > 1):
            return self.model.replace(tied_embeddings=False)
        return self.model

    def check(self) -> None:
        """SpecError (with the arithmetic) if the job cannot run."""
        lay, m = self.layout, self.model
        check_layout(lay, m, self.training_spec(), lay.gpus)
        if lay.cp > 1 and lay.ep > 1:
            raise SpecError(f"the validator runs context parallelism or expert parallelism, not both; got "
                            f"cp={lay.cp}, ep={lay.ep}", field="layout")
        if lay.cp > 1 and (lay.tp > 1 or lay.pp > 1 or lay.effective_zero_stage or self.compute_dtype != "fp32"):
            raise SpecError(f"the context-parallel job runs cp with dp only, replicated fp32 parameters (tp=1, pp=1, "
                            f"zero=0, --dtype fp32); got tp={lay.tp}, pp={lay.pp}, zero={lay.effective_zero_stage}, "
                            f"dtype={self.compute_dtype}", field="layout.cp")
        if lay.ep > 1 and (lay.tp > 1 or lay.pp > 1 or lay.dp != lay.ep or lay.effective_zero_stage
                           or self.recompute == "full"):
            raise SpecError(f"expert parallel jobs run ep = dp with tp = pp = 1, zero 0 and recompute none or "
                            f"selective; got ep={lay.ep}, dp={lay.dp}, tp={lay.tp}, pp={lay.pp}, "
                            f"zero={lay.effective_zero_stage}, recompute={self.recompute}", field="layout.ep")
        if m.kv_heads % lay.tp:
            raise SpecError(f"kv_heads({m.kv_heads}) % tp({lay.tp}) != 0 (validator shards k/v by head)",
                            field="layout.tp")
        if m.position_kind == "learned" and self.seq_length > m.max_position_embeddings:
            raise SpecError(f"seq_length({self.seq_length}) > max_position_embeddings({m.max_position_embeddings})",
                            field="seq_length")
        if lay.sequence_parallel and self.seq_length % lay.tp:
            raise SpecError(f"seq_length({self.seq_length}) % tp({lay.tp}) != 0 (sequence parallel)",
                            field="seq_length")
        if lay.dp > 1 and lay.tp > 1 and lay.effective_zero_stage < 2:
            raise SpecError(
                f"dp({lay.dp}) with tp({lay.tp}) needs zero=2, zero=3 or fsdp (FSDP2 over a 2-D mesh); "
                "DDP and ZeroRedundancyOptimizer take plain tensors only",
                field="layout.zero_stage",
            )
        if lay.dp > 1 and lay.pp > 1 and lay.effective_zero_stage < 2:
            raise SpecError(
                f"dp({lay.dp}) with pp({lay.pp}) needs zero=2 (FSDP2 keeping parameters gathered); DDP under "
                "torch.distributed.pipelining gives wrong last-stage gradients (caught by the numerics check)",
                field="layout.zero_stage",
            )
        if lay.pp > 1:
            chunks = lay.pp * lay.vpp
            if m.num_layers < chunks:
                raise SpecError(f"num_layers({m.num_layers}) < pp({lay.pp}) * vpp({lay.vpp})", field="layout.pp")
            mbs = self.global_batch_size // (self.micro_batch_size * lay.dp)
            if lay.schedule == "interleaved-1f1b" and mbs % lay.pp:
                raise SpecError(f"interleaved-1f1b needs micro-batches({mbs}) % pp({lay.pp}) == 0",
                                field="global_batch_size")
            if lay.schedule not in ("gpipe", "1f1b", "interleaved-1f1b"):
                raise SpecError(f"schedule '{lay.schedule}' not run by the validator; allowed: gpipe, 1f1b, "
                                "interleaved-1f1b", field="layout.schedule")
        if self.recipe == "fsdp" and (lay.dp == 1 or lay.effective_zero_stage < 2 or self.compute_dtype != "bf16"):
            raise SpecError(f"fsdp (FSDP2 mixed precision) needs dp > 1 with zero=2, zero=3 or fsdp and "
                            f"--dtype bf16; got dp={lay.dp}, zero={lay.effective_zero_stage}, "
                            f"dtype={self.compute_dtype}", field="recipe")
        if self.compute_dtype == "fp16" and lay.pp > 1:
            raise SpecError(f"fp16 loss scaling is not wired into the pipeline schedules (pp={lay.pp}: they own the "
                            "backward pass); use --dtype bf16", field="compute_dtype")
        if (self.compute_dtype == "fp16" and lay.tp > 1 and not lay.sequence_parallel
                and (lay.dp == 1 or lay.effective_zero_stage < 2)):
            raise SpecError(f"fp16 with tp={lay.tp} needs sp or FSDP2: torch's GradScaler cannot unscale a mix of "
                            "plain (replicated norm) and DTensor gradients; use --dtype bf16", field="compute_dtype")
        if lay.stage_layers is not None:
            raise SpecError("the validator splits layers evenly (stage_layers must be unset)",
                            field="layout.stage_layers")


def tiny_model(*, layers: int = 4, hidden: int = 64, heads: int = 4, kv_heads: int | None = None,
               ffn: int | None = None, ffn_kind: str = "gelu", vocab: int = 256, seq: int = 64) -> ModelSpec:
    """A small GPT (untied embeddings, learned positions up to ``seq``) from inline dimensions."""


    name = f"tiny-l{layers}-h{hidden}-a{heads}" + (f"-kv{kv_heads}" if kv_heads else "") + f"-{ffn_kind}"
    try:
        return ModelSpec(
            name=name, num_layers=layers, hidden_size=hidden, num_heads=heads, num_kv_heads=kv_heads,
            ffn_hidden_size=ffn or 4 * hidden, ffn_kind=ffn_kind, vocab_size=vocab, tied_embeddings=False,
            max_position_embeddings=seq, source="inline dimensions (paraplan validate)",
        )
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), field="model") from None


def layout_for_nproc(text: str, nproc: int | None) -> Layout:
    """Parse ``text``; without an explicit ``dp=``, dp = nproc / (tp * pp) (arithmetic shown on error)."""
    lay = parse_layout(text)
    if nproc is None or "dp=" in text.replace(" ", ""):
        if nproc is not None and lay.gpus != nproc:
            raise SpecError(f"tp({lay.tp}) * pp({lay.pp}) * dp({lay.dp}) = {lay.gpus} != nproc({nproc})",
                            field="layout")
        return lay
    per = lay.tp * lay.pp * lay.cp
    if nproc % per:
        cp = f" * cp({lay.cp})" if lay.cp > 1 else ""
        raise SpecError(f"nproc({nproc}) % (tp({lay.tp}) * pp({lay.pp}){cp}) = {nproc % per} != 0", field="layout")
    return lay.replace(dp=nproc // per)
