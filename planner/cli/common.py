"""Options shared by the commands that take a scenario (estimate, whatif, sweep, sensitivity, ...)."""

from __future__ import annotations

import functools
import inspect
from typing import Annotated, Optional

import typer

from ..errors import SpecError
from ..scenario import Scenario, infer_dp, load_scenario
from ..specs import Layout, TrainingSpec

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo model name, model YAML or HF config.json path.")]
HardwareOpt = Annotated[Optional[str], typer.Option("--hardware", "-H", help="Hardware profile name or YAML path.")]
CalibrationOpt = Annotated[Optional[str], typer.Option("--calibration", help="Calibration overlay YAML applied on the profile.")]
GpusOpt = Annotated[Optional[int], typer.Option("--gpus", "-g", help="Number of GPUs (ranks).")]
TpOpt = Annotated[Optional[int], typer.Option("--tp", help="Tensor-parallel degree.")]
PpOpt = Annotated[Optional[int], typer.Option("--pp", help="Pipeline-parallel degree.")]
VppOpt = Annotated[Optional[int], typer.Option("--vpp", help="Virtual stages per pipeline rank (interleaved 1F1B).")]
DpOpt = Annotated[Optional[int], typer.Option("--dp", help="Data-parallel degree (default: gpus / (tp*pp*cp)).")]
CpOpt = Annotated[Optional[int], typer.Option("--cp", help="Context-parallel degree (validated; priced later).")]
MicroOpt = Annotated[Optional[int], typer.Option("--micro-batch", help="Micro-batch size, sequences.")]
GlobalOpt = Annotated[Optional[int], typer.Option("--global-batch", help="Global batch, sequences per step.")]
SeqOpt = Annotated[Optional[int], typer.Option("--seq", help="Sequence length, tokens.")]
ZeroOpt = Annotated[Optional[int], typer.Option("--zero", help="ZeRO stage 0, 1, 2 or 3.")]
FsdpOpt = Annotated[Optional[bool], typer.Option("--fsdp/--no-fsdp", help="FSDP2 full sharding.")]
RecomputeOpt = Annotated[Optional[str], typer.Option("--recompute", help="none, selective or full.")]
SpOpt = Annotated[Optional[bool], typer.Option("--sequence-parallel/--no-sequence-parallel", help="Megatron sequence parallelism.")]
PrecisionOpt = Annotated[Optional[str], typer.Option("--precision", help="bf16, fp16 or fp8.")]
RecipeOpt = Annotated[Optional[str], typer.Option("--recipe", help="framework recipe: megatron-lm, megatron-core, deepspeed, torchtitan, fsdp1 or torch-amp (megatron = megatron-lm, fsdp = torchtitan).")]
FlashOpt = Annotated[Optional[bool], typer.Option("--flash-attention/--no-flash-attention", help="Fused flash attention.")]
ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="gpipe, 1f1b, interleaved-1f1b or zb-h1.")]
EpOpt = Annotated[Optional[int], typer.Option("--ep", help="Expert-parallel degree (MoE).")]
EtpOpt = Annotated[Optional[int], typer.Option("--etp", help="Expert tensor-parallel degree (MoE; default: tp).")]
CapacityOpt = Annotated[Optional[float], typer.Option(
    "--moe-capacity-factor", help="MoE expert capacity factor, padded to capacity (default: dropless).")]
ImbalanceOpt = Annotated[Optional[float], typer.Option(
    "--moe-imbalance", help="Dropless MoE load imbalance, max/mean tokens per expert (default 1 = balanced).")]
SharedOverlapOpt = Annotated[Optional[bool], typer.Option(
    "--moe-shared-expert-overlap/--no-moe-shared-expert-overlap", help="Shared experts overlap the all-to-alls.")]
DispatcherOpt = Annotated[Optional[str], typer.Option(
    "--moe-dispatcher", help="MoE token dispatch: alltoall (every routed copy) or deepep (once per node, NVLink forward).")]
LayoutFileOpt = Annotated[Optional[str], typer.Option("--layout", help="Scenario JSON (from plan --export json); flags override it.")]

#: The options every scenario-taking command shares, in the order ``--help`` lists them.
SCENARIO_OPTIONS: tuple[tuple[str, object], ...] = (
    ("model", ModelOpt), ("hardware", HardwareOpt), ("calibration", CalibrationOpt), ("gpus", GpusOpt),
    ("tp", TpOpt), ("pp", PpOpt), ("vpp", VppOpt), ("dp", DpOpt), ("cp", CpOpt), ("micro_batch", MicroOpt),
    ("global_batch", GlobalOpt), ("seq", SeqOpt), ("zero", ZeroOpt), ("fsdp", FsdpOpt),
    ("recompute", RecomputeOpt), ("sequence_parallel", SpOpt), ("precision", PrecisionOpt),
    ("recipe", RecipeOpt), ("flash_attention", FlashOpt), ("schedule", ScheduleOpt), ("layout", LayoutFileOpt),
    ("ep", EpOpt), ("etp", EtpOpt), ("moe_capacity_factor", CapacityOpt), ("moe_imbalance", ImbalanceOpt),
    ("moe_shared_expert_overlap", SharedOverlapOpt), ("moe_dispatcher", DispatcherOpt),
)


def scenario_options(*, exclude: tuple[str, ...] = ()):
    """Decorator: give a command the shared scenario options. The command receives them as one dict
    ``scenario_flags`` (keys as ``build_scenario`` takes them; ``layout`` becomes ``layout_file``)."""

    def decorate(func):
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "scenario_flags"]
        extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ann)
                 for name, ann in SCENARIO_OPTIONS if name not in exclude]
        names = [p.name for p in extra]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            flags = {name: kwargs.pop(name, None) for name in names}
            flags["layout_file"] = flags.pop("layout", None)
            return func(*args, scenario_flags=flags, **kwargs)

        params = own + extra
        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return decorate


CHOICES = {
    "recompute": ("none", "selective", "full"),
    "precision": ("bf16", "fp16", "fp8"),
    "recipe": ("megatron-lm", "megatron-core", "deepspeed", "torchtitan", "fsdp1", "torch-amp", "megatron", "fsdp"),
    "schedule": ("gpipe", "1f1b", "interleaved-1f1b", "zb-h1"),
    "moe-dispatcher": ("alltoall", "deepep"),
}


def check_choice(field: str, value: str | None) -> None:
    """SpecError listing the allowed values when ``value`` is not one of them."""
    if value is not None and value not in CHOICES[field]:
        raise SpecError(f"'{value}' is not one of: {', '.join(CHOICES[field])}", field=f"--{field}")


def build_scenario(
    *, model: str | None, hardware: str | None, calibration: str | None = None, gpus: int | None = None,
    tp: int | None = None, pp: int | None = None, vpp: int | None = None, dp: int | None = None,
    cp: int | None = None, micro_batch: int | None = None, global_batch: int | None = None,
    seq: int | None = None, zero: int | None = None, fsdp: bool | None = None,
    recompute: str | None = None, sequence_parallel: bool | None = None, precision: str | None = None,
    recipe: str | None = None, flash_attention: bool | None = None, schedule: str | None = None,
    layout_file: str | None = None, ep: int | None = None, etp: int | None = None,
    moe_capacity_factor: float | None = None, moe_imbalance: float | None = None,
    moe_shared_expert_overlap: bool | None = None, moe_dispatcher: str | None = None,
) -> Scenario:
    """A Scenario from CLI values (None = not given): a layout file first, then flags on top."""
    from hwprofiles import load_hardware, load_model

    for field, value in (("recompute", recompute), ("precision", precision), ("recipe", recipe),
                         ("schedule", schedule), ("moe-dispatcher", moe_dispatcher)):
        check_choice(field, value)
    if zero is not None and zero not in (0, 1, 2, 3):
        raise SpecError(f"{zero} is not one of: 0, 1, 2, 3", field="--zero")
    base = load_scenario(layout_file) if layout_file else None
    if base is None and (model is None or hardware is None):
        missing = [n for n, v in (("--model", model), ("--hardware", hardware)) if v is None]
        raise SpecError(f"{' and '.join(missing)} required (or --layout FILE)", field=missing[0])
    model_spec = load_model(model) if model else base.model
    hw = load_hardware(hardware, calibration) if hardware else base.hardware
    if calibration and not hardware:
        hw = load_hardware(base.hardware.name, calibration)
    lay = base.layout.model_dump() if base else {}
    trn = base.training.model_dump() if base else {}

    def put(d: dict, key: str, value) -> None:
        if value is not None:
            d[key] = value

    for key, value in (("tp", tp), ("pp", pp), ("vpp", vpp), ("cp", cp), ("zero_stage", zero),
                       ("fsdp", fsdp), ("sequence_parallel", sequence_parallel), ("schedule", schedule)):
        put(lay, key, value)
    if vpp is not None and vpp > 1 and schedule is None:
        lay["schedule"] = "interleaved-1f1b"
    if recipe in ("fsdp", "torchtitan", "fsdp1") and fsdp is None and zero is None:
        lay["fsdp"] = True
    for key, value in (("micro_batch_size", micro_batch), ("global_batch_size", global_batch),
                       ("seq_length", seq), ("recompute", recompute), ("precision", precision),
                       ("recipe", recipe), ("flash_attention", flash_attention),
                       ("moe_capacity_factor", moe_capacity_factor), ("moe_load_imbalance", moe_imbalance),
                       ("moe_shared_expert_overlap", moe_shared_expert_overlap),
                       ("moe_token_dispatcher", moe_dispatcher)):
        put(trn, key, value)
    for key, value in (("ep", ep), ("etp", etp)):
        put(lay, key, value)
    if "global_batch_size" not in trn:
        raise SpecError("--global-batch is required", field="--global-batch")
    n_gpus = gpus if gpus is not None else (base.gpus if base else None)
    if n_gpus is None:
        raise SpecError("--gpus is required", field="--gpus")
    if n_gpus <= 0:
        raise SpecError(f"gpus({n_gpus}) must be > 0", field="--gpus")
    if dp is not None:
        lay["dp"] = dp
    elif base is None or any(v is not None for v in (gpus, tp, pp, cp)):
        lay["dp"] = infer_dp(n_gpus, lay.get("tp", 1), lay.get("pp", 1), lay.get("cp", 1))
    return Scenario(model=model_spec, hardware=hw, gpus=n_gpus, training=TrainingSpec(**trn),
                    layout=Layout(**lay))
