"""Options shared by the commands that take a scenario (estimate, whatif, sweep, sensitivity, ...)."""

from __future__ import annotations

import contextlib
import functools
import inspect
from typing import Annotated, Optional

import typer

from ..errors import SpecError, format_validation_error
from ..scenario import Scenario, infer_dp, load_scenario
from ..specs import Layout, TrainingSpec, check_layout
from ..specs.pipeline_layout import parse_pipeline_layout
from ..specs.recipe import RECIPE_NAMES
from ..specs.recipe_source import recipe_named
from .app import err_console


def _default(spec, field: str) -> str:
    """The spec's default of ``field`` as ``--help`` shows it (used when neither the flag nor a
    --layout file gives the value)."""
    return str(spec.model_fields[field].default)


ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Zoo model name, model YAML, HF config.json or a folder holding one.")]
HardwareOpt = Annotated[Optional[str], typer.Option("--hardware", "-H", help="Hardware profile name or YAML path.")]
CalibrationOpt = Annotated[Optional[str], typer.Option("--calibration", help="Calibration overlay YAML applied on the profile.")]
GpusOpt = Annotated[Optional[int], typer.Option("--gpus", "-g", help="Number of GPUs (ranks).")]
TpOpt = Annotated[Optional[int], typer.Option("--tp", help="Tensor-parallel degree.", show_default=_default(Layout, "tp"))]
PpOpt = Annotated[Optional[int], typer.Option("--pp", help="Pipeline-parallel degree.", show_default=_default(Layout, "pp"))]
VppOpt = Annotated[Optional[int], typer.Option("--vpp", help="Virtual stages per pipeline rank (interleaved 1F1B).", show_default=_default(Layout, "vpp"))]
DpOpt = Annotated[Optional[int], typer.Option("--dp", help="Data-parallel degree.", show_default="gpus / (tp*pp*cp)")]
CpOpt = Annotated[Optional[int], typer.Option("--cp", help="Context-parallel degree (sequence split in 2*cp chunks).", show_default=_default(Layout, "cp"))]
CpKindOpt = Annotated[Optional[str], typer.Option("--cp-kind", help="Context-parallel K/V exchange: ring or allgather.", show_default="the recipe's")]
MicroOpt = Annotated[Optional[int], typer.Option("--micro-batch", help="Micro-batch size, sequences.", show_default=_default(TrainingSpec, "micro_batch_size"))]
GlobalOpt = Annotated[Optional[int], typer.Option("--global-batch", help="Global batch, sequences per step.")]
SeqOpt = Annotated[Optional[int], typer.Option("--seq", help="Sequence length, tokens.", show_default=_default(TrainingSpec, "seq_length"))]
ZeroOpt = Annotated[Optional[int], typer.Option("--zero", help="ZeRO stage 0, 1, 2 or 3.", show_default=_default(Layout, "zero_stage"))]
FsdpOpt = Annotated[Optional[bool], typer.Option("--fsdp/--no-fsdp", help="FSDP2 full sharding (like ZeRO-3; not with --zero 1/2).", show_default="no-fsdp")]
RecomputeOpt = Annotated[Optional[str], typer.Option("--recompute", help="none, selective (attention core), op (torchtitan per-op save list) or full.", show_default=_default(TrainingSpec, "recompute"))]
CompileOpt = Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="Transformer blocks under torch.compile (fused norms, activations, RoPE).", show_default="the recipe's")]
Fp8GatherOpt = Annotated[Optional[bool], typer.Option("--fp8-all-gather/--no-fp8-all-gather", help="With fp8 and FSDP, all-gather Linear weights in fp8 (torchao enable_fsdp_float8_all_gather).", show_default="no-fp8-all-gather")]
SpOpt = Annotated[Optional[bool], typer.Option("--sequence-parallel/--no-sequence-parallel", help="Megatron sequence parallelism.", show_default="no-sequence-parallel")]
PrecisionOpt = Annotated[Optional[str], typer.Option("--precision", help="bf16, fp16 or fp8.", show_default=_default(TrainingSpec, "precision"))]
RecipeOpt = Annotated[Optional[str], typer.Option("--recipe", help="framework recipe: megatron-lm, megatron-core, deepspeed, deepspeed-2021, torchtitan, torchtitan-2506, torchtitan-0.3, fsdp1, fsdp1-amp, llm-foundry, llm-foundry-2309 or torch-amp (megatron = megatron-lm, fsdp = torchtitan-2412 = torchtitan).", show_default=_default(TrainingSpec, "recipe"))]
FlashOpt = Annotated[Optional[bool], typer.Option("--flash-attention/--no-flash-attention", help="Fused flash attention.", show_default="flash-attention")]
AttnKernelOpt = Annotated[Optional[str], typer.Option("--attention-kernel", help="Fused attention kernel generation: a table of the hardware profile (e.g. fa2).", show_default="the profile's attention_table")]
ScheduleOpt = Annotated[Optional[str], typer.Option("--schedule", help="gpipe, 1f1b, interleaved-1f1b or zb-h1.", show_default=_default(Layout, "schedule") + " (interleaved-1f1b with --vpp > 1)")]
FrameworkOpt = Annotated[Optional[str], typer.Option("--framework", help="megatron, deepspeed or torchtitan: refuse layouts it cannot launch (default: the recipe's); none: no framework's rules.")]
EpOpt = Annotated[Optional[int], typer.Option("--ep", help="Expert-parallel degree (MoE).")]
EtpOpt = Annotated[Optional[int], typer.Option("--etp", help="Expert tensor-parallel degree (MoE; default: tp).")]
CapacityOpt = Annotated[Optional[float], typer.Option(
    "--moe-capacity-factor", help="MoE expert capacity factor, padded to capacity (default: dropless).")]
ImbalanceOpt = Annotated[Optional[float], typer.Option(
    "--moe-imbalance", help="Dropless MoE load imbalance, max/mean tokens per expert (default 1 = balanced).")]
SharedOverlapOpt = Annotated[Optional[bool], typer.Option(
    "--moe-shared-expert-overlap/--no-moe-shared-expert-overlap", help="Shared experts overlap the all-to-alls.")]
DispatcherOpt = Annotated[Optional[str], typer.Option(
    "--moe-dispatcher", help="MoE token dispatch: alltoall (every routed copy), deepep or hybridep (once per node and "
    "rank, NVLink forward).")]
A2aOverlapOpt = Annotated[Optional[bool], typer.Option(
    "--moe-a2a-overlap/--no-moe-a2a-overlap", help="Expert all-to-alls of one micro-batch overlapped with another's "
    "compute (Megatron-Core --overlap-moe-expert-parallel-comm, combined 1F1B; DualPipe's overlap).")]
MtpOpt = Annotated[Optional[int], typer.Option(
    "--mtp-layers", help="Multi-token-prediction modules trained after the last layer (DeepSeek-V3: 1).")]
PipeLayoutOpt = Annotated[Optional[str], typer.Option(
    "--pipeline-layout", help="Megatron --pipeline-model-parallel-layout string for the pp x vpp virtual stages "
    "(E embedding, t layer, m MTP, L loss, | between stages; e.g. 'Et|(tt|)*30mL').")]
LayoutFileOpt = Annotated[Optional[str], typer.Option("--layout", help="Scenario JSON (from plan --export json); flags override it.")]

#: The options every scenario-taking command shares, in the order ``--help`` lists them.
SCENARIO_OPTIONS: tuple[tuple[str, object], ...] = (
    ("model", ModelOpt), ("hardware", HardwareOpt), ("calibration", CalibrationOpt), ("gpus", GpusOpt),
    ("tp", TpOpt), ("pp", PpOpt), ("vpp", VppOpt), ("dp", DpOpt), ("cp", CpOpt), ("cp_kind", CpKindOpt),
    ("micro_batch", MicroOpt),
    ("global_batch", GlobalOpt), ("seq", SeqOpt), ("zero", ZeroOpt), ("fsdp", FsdpOpt),
    ("recompute", RecomputeOpt), ("compile", CompileOpt), ("fp8_all_gather", Fp8GatherOpt),
    ("sequence_parallel", SpOpt), ("precision", PrecisionOpt),
    ("recipe", RecipeOpt), ("flash_attention", FlashOpt), ("attention_kernel", AttnKernelOpt), ("schedule", ScheduleOpt), ("layout", LayoutFileOpt),
    ("framework", FrameworkOpt),
    ("ep", EpOpt), ("etp", EtpOpt), ("moe_capacity_factor", CapacityOpt), ("moe_imbalance", ImbalanceOpt),
    ("moe_shared_expert_overlap", SharedOverlapOpt), ("moe_dispatcher", DispatcherOpt),
    ("moe_a2a_overlap", A2aOverlapOpt), ("mtp_layers", MtpOpt), ("pipeline_layout", PipeLayoutOpt),
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


def shards_by_fsdp(recipe: str | None) -> bool:
    """Whether ``recipe`` shards its states with FSDP (its rule ``fsdp_sharding``), so its layouts default to
    --fsdp; False for no recipe or an unknown one (TrainingSpec refuses that later, naming the field)."""
    if recipe is None:
        return False
    try:
        return recipe_named(recipe).fsdp_sharding
    except (SpecError, RuntimeError):
        return False


CHOICES = {
    "recompute": ("none", "selective", "op", "full"),
    "precision": ("bf16", "fp16", "fp8"),
    "recipe": (*RECIPE_NAMES, "megatron", "fsdp", "torchtitan-2412"),  # the recipes and their aliases
    "schedule": ("gpipe", "1f1b", "interleaved-1f1b", "zb-h1"),
    "cp_kind": ("ring", "allgather"),
    "moe-dispatcher": ("alltoall", "deepep", "hybridep"),
}


def check_choice(field: str, value: str | None) -> None:
    """SpecError listing the allowed values when ``value`` is not one of them."""
    if value is not None and value not in CHOICES[field]:
        raise SpecError(f"'{value}' is not one of: {', '.join(CHOICES[field])}", field=f"--{field.replace('_', '-')}")


def warn(message: str) -> None:
    """One ``warning:`` line on stderr (the command goes on)."""
    from rich.text import Text

    err_console.print(Text.assemble(("warning: ", "bold yellow"), message), highlight=False, soft_wrap=True)


def check_positive(*pairs: tuple[str, int | None]) -> None:
    """SpecError naming the option of the first given (not None) value below 1, or above the sanity bound
    of its kind (planner.specs.bounds: ranks for --gpus and the degrees, sequence, batch)."""
    from ..specs.bounds import MAX_GLOBAL_BATCH, MAX_MICRO_BATCH, MAX_RANKS, MAX_SEQ

    limits = {"--seq": MAX_SEQ, "--global-batch": MAX_GLOBAL_BATCH, "--micro-batch": MAX_MICRO_BATCH,
              "--tokens-per-step": MAX_GLOBAL_BATCH * MAX_SEQ}
    for option, value in pairs:
        if value is not None and value < 1:
            raise SpecError(f"{value} must be >= 1", field=option)
        limit = limits.get(option, MAX_RANKS)
        if value is not None and value > limit:
            raise SpecError(f"{value:,} is above paraplan's bound of {limit:,} (planner/specs/bounds.py)", field=option)


def check_name(option: str, value: str | None) -> None:
    """SpecError for a name or path given as an empty string (``--model ""``)."""
    if value is not None and not value.strip():
        raise SpecError("an empty name; give a name (see paraplan model list / hw list) or a file path",
                        field=option)


def check_seq_fits(model, seq: int, option: str = "--seq") -> None:
    """A learned position table has no row past ``max_position_embeddings``: refuse a longer --seq.
    RoPE/ALiBi models can run longer sequences (position interpolation, long-context fine-tuning),
    so there it is a warning that the model was trained on shorter ones; the estimate still holds."""
    limit = model.max_position_embeddings
    if seq <= limit:
        return
    if model.position_kind == "learned":
        raise SpecError(f"{seq} is above {model.name}'s {limit} learned positions (max_position_embeddings)",
                        field=option)
    warn(f"{option} {seq} is above {model.name}'s max_position_embeddings {limit} ({model.position_kind} "
         "positions extrapolate, but the model was not trained that long); estimating anyway")


#: Spec fields -> the option that sets them, so an error names what the user typed, not a spec path.
FLAG_OF = {
    "gpus": "--gpus", "layout.tp": "--tp", "layout.pp": "--pp", "layout.vpp": "--vpp", "layout.dp": "--dp",
    "layout.cp": "--cp", "layout.zero_stage": "--zero", "layout.fsdp": "--fsdp", "layout.schedule": "--schedule",
    "layout.sequence_parallel": "--sequence-parallel", "training.global_batch_size": "--global-batch",
    "training.micro_batch_size": "--micro-batch", "training.seq_length": "--seq", "training.recompute": "--recompute",
    "training.fp8_all_gather": "--fp8-all-gather", "training.compile": "--compile",
    "training.precision": "--precision", "training.recipe": "--recipe",
    "training.flash_attention": "--flash-attention", "training.attention_kernel": "--attention-kernel", "layout.ep": "--ep", "layout.etp": "--etp",
    "training.moe_capacity_factor": "--moe-capacity-factor", "training.moe_load_imbalance": "--moe-imbalance",
    "training.moe_token_dispatcher": "--moe-dispatcher", "training.mtp_layers": "--mtp-layers",
    "layout.pipeline_layout": "--pipeline-layout", "layout.stage_layers": "--pipeline-layout",
}


@contextlib.contextmanager
def user_names(given: set[str], layout_file: str | None):
    """Re-raise spec errors under the option the user typed (``--zero``, not ``layout.zero_stage``);
    a value that came from the --layout file keeps its file key and names the file."""
    from pydantic import ValidationError

    try:
        yield
    except ValidationError as exc:
        errors = exc.errors()
        loc = ".".join(str(x) for x in errors[0].get("loc", ())) if errors else ""
        title = exc.title
        key = {"TrainingSpec": "training.", "Layout": "layout."}.get(title, "") + loc if loc else (
            "training.global_batch_size" if title == "TrainingSpec" else "")
        message = format_validation_error(exc)
        message = message.removeprefix(f"{loc}: ") if loc else message
        _reraise(key, message, given, layout_file)
    except SpecError as exc:
        if exc.source is not None or exc.field not in FLAG_OF:
            raise
        _reraise(exc.field, str(exc).removeprefix(f"{exc.field}: "), given, layout_file)


def _reraise(key: str, message: str, given: set[str], layout_file: str | None):
    option = FLAG_OF.get(key)
    if option is not None and (option in given or layout_file is None):
        raise SpecError(message, field=option) from None
    raise SpecError(message, field=key or None, source=layout_file) from None


def build_scenario(
    *, model: str | None, hardware: str | None, calibration: str | None = None, gpus: int | None = None,
    tp: int | None = None, pp: int | None = None, vpp: int | None = None, dp: int | None = None,
    cp: int | None = None, cp_kind: str | None = None, micro_batch: int | None = None, global_batch: int | None = None,
    seq: int | None = None, zero: int | None = None, fsdp: bool | None = None,
    recompute: str | None = None, compile: bool | None = None, fp8_all_gather: bool | None = None,
    sequence_parallel: bool | None = None, precision: str | None = None,
    recipe: str | None = None, flash_attention: bool | None = None, attention_kernel: str | None = None,
    schedule: str | None = None, layout_file: str | None = None, framework: str | None = None, ep: int | None = None, etp: int | None = None,
    moe_capacity_factor: float | None = None, moe_imbalance: float | None = None,
    moe_shared_expert_overlap: bool | None = None, moe_dispatcher: str | None = None,
    moe_a2a_overlap: bool | None = None, mtp_layers: int | None = None, pipeline_layout: str | None = None,
) -> Scenario:
    """A Scenario from CLI values (None = not given): a layout file first, then flags on top."""
    from hwprofiles import load_hardware, load_model

    from ..frameworks import default_split

    for field, value in (("recompute", recompute), ("precision", precision), ("recipe", recipe),
                         ("schedule", schedule), ("cp_kind", cp_kind), ("moe-dispatcher", moe_dispatcher)):
        check_choice(field, value)
    if zero is not None and zero not in (0, 1, 2, 3):
        raise SpecError(f"{zero} is not one of: 0, 1, 2, 3", field="--zero")
    for option, value in (("--model", model), ("--hardware", hardware), ("--calibration", calibration),
                          ("--layout", layout_file)):
        check_name(option, value)
    check_positive(("--gpus", gpus), ("--tp", tp), ("--pp", pp), ("--vpp", vpp), ("--dp", dp), ("--cp", cp),
                   ("--micro-batch", micro_batch), ("--global-batch", global_batch), ("--seq", seq))
    if fsdp and zero in (1, 2):
        raise SpecError(f"shards parameters like ZeRO-3, which contradicts --zero {zero} (drop one of them)",
                       field="--fsdp")
    base = load_scenario(layout_file) if layout_file else None
    if base is None and (model is None or hardware is None):
        missing = [n for n, v in (("--model", model), ("--hardware", hardware)) if v is None]
        raise SpecError(f"{' and '.join(missing)} required (or --layout FILE)", field=missing[0])
    model_spec = load_model(model) if model is not None else base.model
    hw = load_hardware(hardware, calibration) if hardware is not None else base.hardware
    if calibration and hardware is None:
        hw = load_hardware(base.hardware.name, calibration)
    lay = base.layout.model_dump() if base else {}
    trn = base.training.model_dump() if base else {}

    def put(d: dict, key: str, value) -> None:
        if value is not None:
            d[key] = value

    for key, value in (("tp", tp), ("pp", pp), ("vpp", vpp), ("cp", cp), ("cp_kind", cp_kind), ("zero_stage", zero),
                       ("fsdp", fsdp), ("sequence_parallel", sequence_parallel), ("schedule", schedule)):
        put(lay, key, value)
    if vpp is not None and vpp > 1 and schedule is None:
        lay["schedule"] = "interleaved-1f1b"
    if shards_by_fsdp(recipe) and fsdp is None and zero is None:
        lay["fsdp"] = True
    if recipe is None and framework not in (None, "none") and "recipe" not in trn:  # price with the target's recipe
        from ..frameworks import DEFAULT_RECIPE, check_framework_name

        check_framework_name(framework)
        recipe = DEFAULT_RECIPE[framework]
        if shards_by_fsdp(recipe) and fsdp is None and zero is None:
            lay["fsdp"] = True
    for key, value in (("micro_batch_size", micro_batch), ("global_batch_size", global_batch),
                       ("seq_length", seq), ("recompute", recompute), ("precision", precision),
                       ("compile", compile), ("fp8_all_gather", fp8_all_gather),
                       ("recipe", recipe), ("flash_attention", flash_attention),
                       ("attention_kernel", attention_kernel),
                       ("moe_capacity_factor", moe_capacity_factor), ("moe_load_imbalance", moe_imbalance),
                       ("moe_shared_expert_overlap", moe_shared_expert_overlap),
                       ("moe_token_dispatcher", moe_dispatcher), ("moe_a2a_overlap", moe_a2a_overlap),
                       ("mtp_layers", mtp_layers)):
        put(trn, key, value)
    for key, value in (("ep", ep), ("etp", etp)):
        put(lay, key, value)
    if "global_batch_size" not in trn:
        raise SpecError("--global-batch is required", field="--global-batch")
    given = {FLAG_OF[k] for k, v in (("gpus", gpus), ("layout.tp", tp), ("layout.pp", pp), ("layout.vpp", vpp),
                                     ("layout.dp", dp), ("layout.cp", cp), ("layout.zero_stage", zero),
                                     ("layout.fsdp", fsdp), ("layout.schedule", schedule),
                                     ("layout.sequence_parallel", sequence_parallel),
                                     ("training.global_batch_size", global_batch),
                                     ("training.micro_batch_size", micro_batch), ("training.seq_length", seq),
                                     ("training.recompute", recompute), ("training.precision", precision),
                                     ("training.fp8_all_gather", fp8_all_gather),
                                     ("training.recipe", recipe), ("training.attention_kernel", attention_kernel),
                                     ("layout.ep", ep), ("layout.etp", etp),
                                     ("training.moe_capacity_factor", moe_capacity_factor),
                                     ("training.moe_load_imbalance", moe_imbalance),
                                     ("training.moe_token_dispatcher", moe_dispatcher),
                                     ("training.mtp_layers", mtp_layers),
                                     ("layout.pipeline_layout", pipeline_layout)) if v is not None}
    n_gpus = gpus if gpus is not None else (base.gpus if base else None)
    if n_gpus is None:
        raise SpecError("--gpus is required", field="--gpus")
    if n_gpus <= 0:
        raise SpecError(f"gpus({n_gpus}) must be > 0", field="--gpus")
    if lay.get("fsdp") and lay.get("zero_stage", 0) in (1, 2):
        raise SpecError(f"FSDP shards parameters like ZeRO-3; it contradicts ZeRO stage {lay['zero_stage']} "
                        "(drop --fsdp or --zero)", field="--zero" if zero is not None else "--fsdp")
    if seq is not None:
        check_seq_fits(model_spec, seq)
    with user_names(given, layout_file):
        if trn.get("attention_kernel") is not None:  # a table the profile has (planner.pricing.compute)
            from ..pricing.compute import attention_points

            attention_points(hw.device, trn["attention_kernel"])
        if dp is not None:
            lay["dp"] = dp
        elif base is None or any(v is not None for v in (gpus, tp, pp, cp)):
            lay["dp"] = infer_dp(n_gpus, lay.get("tp", 1), lay.get("pp", 1), lay.get("cp", 1))
        if pipeline_layout is not None:  # Megatron's layout string: its per-rank sums are the stage split
            lay["pipeline_layout"] = pipeline_layout
            lay["stage_layers"] = parse_pipeline_layout(pipeline_layout, lay.get("pp", 1), lay.get("vpp", 1),
                                                        model_spec.num_layers, trn.get("mtp_layers", 0)).stage_layers
        if lay.get("stage_layers") is None and lay.get("pp", 1) > 1 and model_spec.num_layers % lay["pp"]:
            lay["stage_layers"] = default_split(model_spec.num_layers, lay["pp"], lay.get("vpp", 1),
                                                trn.get("recipe", TrainingSpec.model_fields["recipe"].default))
        scenario = Scenario(model=model_spec, hardware=hw, gpus=n_gpus, training=TrainingSpec(**trn),
                            layout=Layout(**lay))
        check_layout(scenario.layout, scenario.model, scenario.training, scenario.gpus)
    check_framework(scenario, framework)
    return scenario


def check_framework(scenario: Scenario, framework: str | None) -> None:
    """SpecError with the framework's reason when the resolved framework (``--framework``, else the
    recipe's) cannot launch the scenario (planner.frameworks); also after ``--offload`` changed it."""
    from ..frameworks import check_launchable, resolve_framework

    fw = resolve_framework(framework, scenario.training.recipe)
    check_launchable(fw, scenario.model, scenario.training, scenario.layout,
                     field=f"--framework {fw}" if framework else f"--recipe {scenario.training.recipe}",
                     model_rules=framework is not None)
