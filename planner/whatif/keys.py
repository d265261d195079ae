"""``--set KEY=VALUE``: change one field of a Scenario, with units, multipliers and aliases.

Keys are dotted paths into the Scenario (``model.hidden_size``, ``training.seq_length``,
``layout.tp``, ``hardware.device.hbm_bandwidth_gbps``, ``hardware.node.nics.0.bandwidth_gbps``,
``gpus``) plus the aliases of :data:`ALIASES` (``hardware.nic_bandwidth`` scales every NIC, ...).
Values take units where the field has one (``_gbps`` GB/s, ``_gib`` GiB, ``_us`` us, peak TFLOP/s)
or a multiplier ``x1.5`` of the current value; see :mod:`planner.units`.

Changing ``gpus``, ``layout.tp``, ``layout.pp`` or ``layout.cp`` re-derives ``dp`` (gpus held);
changing ``layout.dp`` re-derives ``gpus``. Each re-derivation is reported as a note.
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, ValidationError

from ..errors import SpecError, format_validation_error
from ..scenario import Scenario
from ..specs import DTYPES, Layout, TrainingSpec, check_layout
from ..specs.hardware_edits import HARDWARE_EDITS
from ..specs.straggler import parse_slow_part
from ..units import Kind, resolve

SECTIONS = ("model", "training", "layout", "hardware", "stragglers")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
LAYOUT_SHAPE = ("tp", "pp", "cp")

# Short names of spec fields: alias -> full dotted key.
FIELD_ALIASES = {
    "model.layers": "model.num_layers", "model.heads": "model.num_heads",
    "model.kv_heads": "model.num_kv_heads", "model.ffn": "model.ffn_hidden_size",
    "model.vocab": "model.vocab_size", "model.experts": "model.num_experts",
    "training.seq": "training.seq_length", "training.global_batch": "training.global_batch_size",
    "training.micro_batch": "training.micro_batch_size", "layout.zero": "layout.zero_stage",
    "hardware.hbm_bandwidth": "hardware.device.hbm_bandwidth_gbps",
    "hardware.hbm_capacity": "hardware.device.hbm_capacity_gib",
    "hardware.memory_efficiency": "hardware.device.memory_efficiency",
    "hardware.kernel_overhead": "hardware.device.kernel_overhead_us",
    "hardware.network_latency": "hardware.network.latency_us",
    "hardware.network_efficiency": "hardware.network.efficiency",
    "hardware.node_latency": "hardware.node.collective_latency_us",
    "hardware.collective_efficiency": "hardware.node.collective_efficiency",
    "hardware.power_limit": "hardware.device.power_limit_w", "device.power_limit_w": "hardware.device.power_limit_w",
    **{f"hardware.peak_tflops.{d}": f"hardware.device.peak_tflops.{d}" for d in DTYPES},
}


# Bare names of layout and training fields, like ``gpus`` and the CLI's flags: ``tp=8``,
# ``zero=3``, ``micro_batch=2`` (``micro-batch`` too), ``seq=4096``, ``schedule=zb-h1``.
SHORT_NAMES = {
    **{name: f"layout.{name}" for name in Layout.model_fields},
    **{name: f"training.{name}" for name in TrainingSpec.model_fields},
    "zero": "layout.zero_stage", "seq": "training.seq_length", "global_batch": "training.global_batch_size",
    "micro_batch": "training.micro_batch_size",
}

LIST_KEYS_HINT = "list the keys with: paraplan whatif --list-keys"


def canonical_key(key: str) -> str:
    """The dotted key behind ``key``: a short name (``tp``, ``micro-batch``) or a field alias
    (``training.seq``) resolved to its spec field path; other keys unchanged."""
    short = SHORT_NAMES.get(key.replace("-", "_"))
    if short is not None:
        return short
    return FIELD_ALIASES.get(key, key)


def _field_unit(name: str, path: Sequence[str]) -> tuple[Kind | None, float]:
    """Unit kind and SI size of one unit of a field, from its name (house rule: units in names)."""
    if name.endswith("_gbps"):
        return "bandwidth", 1e9
    if name.endswith("_gib"):
        return "bytes", 2.0**30
    if name.endswith("_us"):
        return "time", 1e-6
    if name.endswith("_s"):
        return "time", 1.0
    if "peak_tflops" in path:
        return "flops", 1e12
    return None, 1.0


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return args[0] if len(args) == 1 else annotation
    return annotation


def _leaf_keys(cls: type[BaseModel], prefix: str) -> list[str]:
    """Every settable scalar path below ``cls`` (lists shown as ``<i>``)."""
    out = []
    for name, info in cls.model_fields.items():
        ann = _unwrap(info.annotation)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaf_keys(ann, f"{prefix}{name}.")
        elif typing.get_origin(ann) is list:
            (item,) = typing.get_args(ann)
            if isinstance(item, type) and issubclass(item, BaseModel):
                out += _leaf_keys(item, f"{prefix}{name}.<i>.")
        elif ann in (int, float, bool, str) or typing.get_origin(ann) is Literal:
            out.append(prefix + name)
    return out


def valid_keys() -> list[str]:
    """All keys ``--set`` accepts: short names, aliases, then every spec field path."""
    fields = ["gpus"]
    for section in SECTIONS:
        cls = Scenario.model_fields[section].annotation
        fields += _leaf_keys(cls, f"{section}.")
    return (sorted(SHORT_NAMES) + sorted(ALIASES) + sorted(FIELD_ALIASES)
            + [k for k in fields if "sources" not in k])


def _unknown_key(key: str) -> SpecError:
    """One short line: the closest keys (at most 3) and how to list them all."""
    import difflib

    close = difflib.get_close_matches(key, valid_keys(), n=3, cutoff=0.6)
    hint = f" (did you mean: {', '.join(close)}?)" if close else ""
    return SpecError(f"unknown key '{key}'{hint}; {LIST_KEYS_HINT}", field="--set")


def _parse_scalar(text: str, ann: Any, current: Any, key: str, name: str, path: Sequence[str]) -> Any:
    """Parse ``text`` for a field of type ``ann`` holding ``current``."""
    if typing.get_origin(ann) is Literal:
        choices = [str(c) for c in typing.get_args(ann)]
        if text not in choices:
            raise SpecError(f"'{text}' is not one of: {', '.join(choices)}", field=key)
        return text
    if ann is bool:
        low = text.lower()
        if low in TRUE_WORDS or low in FALSE_WORDS:
            return low in TRUE_WORDS
        raise SpecError(f"'{text}' is not a boolean; use one of: {', '.join(TRUE_WORDS + FALSE_WORDS)}", field=key)
    if ann is str:
        return text
    kind, scale = _field_unit(name, path)
    value = resolve(text, current, kind, scale, field=key)
    if not math.isfinite(value):
        raise SpecError(f"'{text}' gives {value}, not a finite number", field=key)
    if ann is int:
        if abs(value - round(value)) > 1e-9 * max(1.0, abs(value)):
            raise SpecError(f"{key} is a whole number; '{text}' gives {value:g}", field=key)
        return int(round(value))
    return float(value)


def _set_path(data: dict, key: str, text: str) -> None:
    """Set the field at dotted ``key`` of the Scenario dict ``data`` from ``text``."""
    parts = key.split(".")
    cls: Any = Scenario
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpecError(f"index '{part}' out of range 0..{len(node) - 1}", field=key)
            idx = int(part)
            if last:
                raise _unknown_key(key)
            node, cls = node[idx], cls
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            raise _unknown_key(key)
        ann = _unwrap(cls.model_fields[part].annotation)
        if last:
            if isinstance(ann, type) and issubclass(ann, BaseModel) or typing.get_origin(ann) is list:
                raise _unknown_key(key)
            node[part] = _parse_scalar(text, ann, node.get(part), key, part, parts)
            return
        if typing.get_origin(ann) is list:
            (cls,) = typing.get_args(ann)
        else:
            cls = ann
        node = node[part]


# --- aliases that touch several fields ------------------------------------------------------

def _set_hidden(data: dict, text: str, key: str) -> list[str]:
    """hidden_size, with the FFN width scaled by the same ratio (rounded to a multiple of tp).

    Heads are kept when they divide the new width; otherwise the head width is kept and the
    head count (and kv heads, in proportion) follows.
    """
    model = data["model"]
    old, heads = model["hidden_size"], model["num_heads"]
    head_size = model["head_dim"] or old // heads
    _set_path(data, "model.hidden_size", text)
    new = model["hidden_size"]
    notes = []
    if model["head_dim"] is None and new % heads:
        if new % head_size:
            raise SpecError(f"hidden({new}) is divisible neither by num_heads({heads}) nor by the head width "
                            f"({head_size})", field=key)
        model["num_heads"] = new // head_size
        if model["num_kv_heads"]:
            model["num_kv_heads"] = max(1, model["num_kv_heads"] * model["num_heads"] // heads)
        notes.append(f"{key}: heads {heads} -> {model['num_heads']} (head width {head_size} kept)")
    tp = data["layout"]["tp"]
    ffn = max(tp, round(model["ffn_hidden_size"] * new / old / tp) * tp)
    notes.insert(0, f"{key}: hidden {old} -> {new}, ffn_hidden_size {model['ffn_hidden_size']} -> {ffn} (ratio kept)")
    model["ffn_hidden_size"] = ffn
    return notes


def _add_straggler(data: dict, text: str, key: str) -> list[str]:
    """One more slow rank or node: ``straggler=rank=17,compute=0.8`` (simulate engine)."""
    part = parse_slow_part(text, field=key)
    data["stragglers"]["slow"].append(part.model_dump())
    return [f"{key}: {part.describe()} (priced by the simulator)"]


def _set_rank_variation(data: dict, text: str, key: str) -> list[str]:
    """Per-rank compute speed variation, lognormal sigma (``rank_variation=0.02``; simulate engine)."""
    data["stragglers"]["variation"] = resolve(text, data["stragglers"]["variation"] or None, None, field=key)
    return []


ALIASES: dict[str, Callable[[dict, str, str], list[str]]] = {
    "straggler": _add_straggler,
    "rank_variation": _set_rank_variation,
    **HARDWARE_EDITS,
    "model.hidden": _set_hidden,
}


def parse_assignment(text: str, option: str = "--set") -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``(key, value)``; SpecError (naming ``option``) when there is no ``=``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise SpecError(f"'{text}' is not KEY=VALUE (e.g. hardware.nic_bandwidth=x2)", field=option)
    return key.strip(), value.strip()


def apply_settings(scenario: Scenario, settings: Sequence[str | tuple[str, str]],
                   check: bool = True, option: str = "--set") -> tuple[Scenario, list[str]]:
    """``scenario`` with every ``KEY=VALUE`` applied in order; returns (new scenario, notes).

    Raises SpecError on an unknown key, an unreadable value or (``check``) a layout that cannot
    run (the message shows the arithmetic). ``check=False`` skips check_layout, for a caller that
    re-plans the layout anyway. ``option``: the command-line option errors name (``--vary``).
    """
    try:
        return _apply(scenario, settings, check)
    except SpecError as exc:
        if exc.field != "--set" or option == "--set":
            raise
        text = str(exc).removeprefix(f"{exc.field}: ")
        raise SpecError(text, field=option, source=exc.source) from None


def _apply(scenario: Scenario, settings: Sequence[str | tuple[str, str]],
           check: bool) -> tuple[Scenario, list[str]]:
    data = scenario.model_dump()
    notes: list[str] = []
    touched: set[str] = set()
    for item in settings:
        key, text = parse_assignment(item) if isinstance(item, str) else item
        full = canonical_key(key)
        if full in ALIASES:
            notes += ALIASES[full](data, text, key)
        elif full.split(".")[0] in SECTIONS + ("gpus",):
            _set_path(data, full, text)
        else:
            raise _unknown_key(key)
        touched.add(full)
    notes += _rederive(scenario, data, touched)
    try:
        out = Scenario.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), field="--set") from None
    if check:
        check_layout(out.layout, out.model, out.training, out.gpus)
    return out, notes


def _rederive(base: Scenario, data: dict, touched: set[str]) -> list[str]:
    """Keep tp*pp*dp*cp == gpus: re-derive dp (or gpus when only dp was set)."""
    lay = data["layout"]
    shape_changed = "gpus" in touched or any(f"layout.{k}" in touched for k in LAYOUT_SHAPE)
    if "layout.dp" in touched and "gpus" not in touched:
        gpus = lay["tp"] * lay["pp"] * lay["dp"] * lay["cp"]
        if gpus != data["gpus"]:
            data["gpus"] = gpus
            return [f"gpus re-derived: {base.gpus} -> {gpus} = tp({lay['tp']}) * pp({lay['pp']}) * "
                    f"dp({lay['dp']}) * cp({lay['cp']})"]
        return []
    if not shape_changed or "layout.dp" in touched:
        return []
    for name, value in (("gpus", data["gpus"]), *((f"layout.{k}", lay[k]) for k in LAYOUT_SHAPE)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SpecError(f"{value!r} must be a whole number >= 1", field=name)
    per_replica = lay["tp"] * lay["pp"] * lay["cp"]
    if data["gpus"] % per_replica:
        raise SpecError(
            f"gpus({data['gpus']}) % (tp({lay['tp']}) * pp({lay['pp']}) * cp({lay['cp']}) = {per_replica}) "
            f"= {data['gpus'] % per_replica} != 0", field="--set")
    dp = data["gpus"] // per_replica
    if dp != lay["dp"]:
        note = (f"dp re-derived: {lay['dp']} -> {dp} = gpus({data['gpus']}) / (tp({lay['tp']}) * "
                f"pp({lay['pp']}) * cp({lay['cp']}))")
        lay["dp"] = dp
        return [note]
    return []


def read_key(scenario: Scenario, key: str) -> float:
    """Current numeric value behind ``key`` (aliases: NIC/link totals in GB/s, the training dtype's peak)."""
    full = canonical_key(key)
    hw = scenario.hardware
    if full == "hardware.nic_bandwidth":
        return hw.node.nic_bandwidth_gbps
    if full == "hardware.link_bandwidth":
        names = {n.name for n in hw.node.nics}
        return sum(k.bandwidth_gbps for k in hw.node.links if k.a not in names and k.b not in names)
    if full == "hardware.peak_tflops":
        return hw.device.peak_tflops.for_dtype(scenario.training.precision)
    if full == "hardware.gemm_efficiency":
        return max(p.efficiency for p in hw.device.gemm_efficiency)
    if full == "model.hidden":
        full = "model.hidden_size"
    node: Any = scenario
    for part in full.split("."):
        node = node[int(part)] if isinstance(node, list) else getattr(node, part, None)
        if node is None:
            raise _unknown_key(key)
    return node
