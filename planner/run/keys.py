"""``paraplan run PLAN --set KEY=VALUE``: change one field of a run plan, with units and multipliers.

Keys are dotted paths into the plan (``failures.rate_per_gpu_hour``, ``checkpoint.mode``,
``checkpoint.interval_s``, ``storage.aggregate_write_gbps``, ``stages.2.tokens``,
``stages.2.layout.tp``, ``gpus``) plus the short names of :data:`ALIASES`. A multiplier (``x2``)
scales the value in effect, also where the plan leaves it to a default (the profile's storage
rate, the Llama 3 failure rate, the 600 s rescheduling). ``storage.bandwidth`` scales every
storage rate. Units: ``_gbps`` fields take ``40GB/s`` or GB/s as a plain number, ``_s`` fields
``90s`` / ``1.5ms`` or seconds as a plain number; tokens take ``2.5T``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence

from pydantic import BaseModel, ValidationError

from ..errors import SpecError, format_validation_error
from ..specs import HardwareProfile
from ..specs.run import RunPlanSpec
from ..units import parse_count, parse_quantity, resolve
from .fleets import DEFAULT_DETECT_S, DEFAULT_RESCHEDULE_S, FLEETS, fleet_rate

ALIASES = {
    "failure_rate": "failures.rate_per_gpu_hour", "planned_rate": "failures.planned_rate_per_gpu_hour",
    "detect": "failures.detect_s", "reschedule": "failures.reschedule_s", "warmup_steps": "failures.warmup_steps",
    "checkpoint": "checkpoint.mode", "checkpoint_interval": "checkpoint.interval_s",
}
STORAGE_RATES = ("node_write_gbps", "node_read_gbps", "aggregate_write_gbps", "aggregate_read_gbps")


def _effective(data: dict, path: list[str], hardware: HardwareProfile):
    """The value in effect at ``path`` when the plan leaves it unset (None)."""
    section, name = (path + [""])[:2]
    if section == "storage" and hardware.storage is not None:
        return getattr(hardware.storage, name, None)
    if section == "failures" and name == "detect_s":
        return DEFAULT_DETECT_S
    if section == "failures" and name == "reschedule_s":
        return DEFAULT_RESCHEDULE_S
    return None


def _parse(text: str, ann, current, key: str, name: str):
    """``text`` as a value of a field annotated ``ann`` that holds ``current``."""
    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    args = [a for a in (typing.get_args(ann) if union else (ann,)) if a is not type(None)]
    literals = [a for a in args if typing.get_origin(a) is typing.Literal]
    for lit in literals:
        if text in map(str, typing.get_args(lit)):
            return text
    if str in args and text.strip().lower() in FLEETS:  # a fleet's name (failure rates)
        return text.strip().lower()
    if str in args and float not in args:
        return text
    if literals and not any(a in (int, float) for a in args):
        allowed = [str(v) for lit in literals for v in typing.get_args(lit)]
        raise SpecError(f"'{text}' is not one of: {', '.join(allowed)}", field=key)
    if isinstance(current, str):  # a fleet name in effect: its number
        current = fleet_rate(current, key, planned="planned" in name)[0]
    if name == "tokens":
        try:
            q = parse_quantity(text, None, field=key)
        except SpecError:
            q = None
        return current * q.factor if q is not None and q.is_factor else parse_count(text, field=key)
    kind, scale = ("bandwidth", 1e9) if name.endswith("_gbps") else (("time", 1.0) if name.endswith("_s") else (None, 1.0))
    try:
        value = resolve(text, current, kind, scale, field=key)
    except SpecError:
        if str in args:  # a rate field: a number or a fleet's name
            raise SpecError(f"'{text}' is neither a number nor one of: {', '.join(FLEETS)}", field=key) from None
        raise
    if int in args and float not in args:
        if value != int(value):
            raise SpecError(f"{key} is a whole number; '{text}' gives {value:g}", field=key)
        return int(value)
    return value


def _set(data: dict, key: str, text: str, hardware: HardwareProfile) -> None:
    parts = key.split(".")
    cls: typing.Any = RunPlanSpec
    node: typing.Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SpecError(f"index '{part}' out of range 0..{len(node) - 1}", field=key)
            node = node[int(part)]
            continue
        if not isinstance(node, dict) or not (isinstance(cls, type) and issubclass(cls, BaseModel)) \
                or part not in cls.model_fields:
            raise SpecError(f"unknown key '{key}' (keys: {', '.join(sorted(ALIASES))}, storage.bandwidth, or a "
                            "dotted path of the plan: failures.*, checkpoint.*, storage.*, stages.<i>.*, gpus)",
                            field="--set")
        ann = cls.model_fields[part].annotation
        if last:
            current = node.get(part)
            if current is None:
                current = _effective(data, parts, hardware)
            node[part] = _parse(text, ann, current, key, part)
            return
        models = [a for a in (typing.get_args(ann) or (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if typing.get_origin(ann) is list:
            (cls,) = typing.get_args(ann)
        elif models:
            cls = models[0]
        if node.get(part) is None and models:
            node[part] = {}
        node = node[part]
        if node == "plan":
            raise SpecError(f"stage layout is 'plan' (searched); set {'.'.join(parts[:i + 1])} to a layout first",
                            field=key)


def apply_run_settings(plan: RunPlanSpec, settings: Sequence[str], hardware: HardwareProfile) -> RunPlanSpec:
    """``plan`` with every ``KEY=VALUE`` applied in order (``hardware``: the profile, for values in effect)."""
    data = plan.model_dump()
    for item in settings:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key or not text:
            raise SpecError(f"'{item}' is not KEY=VALUE (e.g. failures.rate_per_gpu_hour=x2)", field="--set")
        key = ALIASES.get(key.replace("-", "_"), key)
        if key == "storage.bandwidth":
            for name in STORAGE_RATES:
                if (data.get("storage") or {}).get(name) is not None or _effective(data, ["storage", name], hardware):
                    _set(data, f"storage.{name}", text, hardware)
            continue
        _set(data, key, text, hardware)
    try:
        return RunPlanSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc), field="--set") from None
