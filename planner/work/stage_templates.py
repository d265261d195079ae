"""Caches of ``planner.work.step.build_step`` and ``planner.work.step_bytes.step_bytes`` across calls
(pure functions of identical inputs: what they return is what a fresh computation returns): stage
templates and stage records shared by layouts that differ only in schedule, the template key per
Layout object, the parameter counts of the last model, the layer op sets and bytes per identity of
their inputs, the step frame of the last (model, training, layout)."""

from __future__ import annotations

from ..specs import Layout, ModelSpec
from .params import parameter_counts

#: Layout fields a stage template never reads: the schedule and its chunks decide only the micro-batches
#: in flight (planner.work.memory.in_flight_per_stage, applied by StageWork.at), the rank order only placement.
SCHEDULE_FIELDS = ("schedule", "vpp", "rank_order")
TEMPLATES: dict[tuple, tuple] = {}


TEMPLATE_KEYS: dict[int, tuple] = {}


def template_key(layout: Layout) -> tuple:
    """``layout`` without ``SCHEDULE_FIELDS`` (with the model, training and micro-batches, the key of
    the stage-template cache: structures that differ only in schedule share their templates); kept
    per Layout object (every candidate of a search structure shares one)."""
    hit = TEMPLATE_KEYS.get(id(layout))
    if hit is not None and hit[0] is layout:
        return hit[1]
    key = tuple(tuple(v) if isinstance(v, list) else v for k, v in layout.__dict__.items() if k not in SCHEDULE_FIELDS)
    if len(TEMPLATE_KEYS) > 4096:
        TEMPLATE_KEYS.clear()
    TEMPLATE_KEYS[id(layout)] = (layout, key)  # keeps the layout alive: its id stays its own
    return key


COUNTS: list[tuple] = []


def model_parameter_counts(model: ModelSpec):
    """``parameter_counts(model)`` of the last model asked for (a search asks for one model throughout)."""
    if COUNTS and COUNTS[0][0] is model:
        return COUNTS[0][1]
    pc = parameter_counts(model)
    COUNTS[:] = [(model, pc)]
    return pc


def get(shared: tuple, kind: tuple, model: ModelSpec, training):
    """The stage template built for (``shared``, ``kind``) of exactly ``model`` and ``training``, or None."""
    hit = TEMPLATES.get((shared, kind))
    if hit is not None and hit[0] is model and hit[1] is training:
        return hit[2]
    return None


def put(shared: tuple, kind: tuple, model: ModelSpec, training, template) -> None:
    """Keep ``template`` for ``get`` (with ``model`` and ``training``, so their ids stay theirs)."""
    if len(TEMPLATES) > 4096:
        TEMPLATES.clear()
    TEMPLATES[(shared, kind)] = (model, training, template)


LAYERS: dict[tuple, tuple] = {}


def by_identity(fn, model: ModelSpec, training, layout: Layout, *args):
    """``fn(model, training, layout, *args)`` (a pure function of planner.work.step / step_bytes), kept
    per identity of its inputs: the lru cache hashes every field of the pydantic specs on each call."""
    key = (fn, id(model), id(training), id(layout), *args)
    hit = LAYERS.get(key)
    if hit is not None and hit[0] is model and hit[1] is training and hit[2] is layout:
        return hit[3]
    out = fn(model, training, layout, *args)
    if len(LAYERS) > 4096:
        LAYERS.clear()
    LAYERS[key] = (model, training, layout, out)  # keeps the inputs alive: their ids stay theirs
    return out


PER_LAYOUT: dict[tuple, tuple] = {}


def by_layout(fn, model: ModelSpec, layout: Layout):
    """``fn(model, layout)`` (a pure function of planner.work.step_bytes) kept per identity of its inputs
    (every candidate of a search structure shares one Layout object)."""
    key = (fn, id(model), id(layout))
    hit = PER_LAYOUT.get(key)
    if hit is not None and hit[0] is model and hit[1] is layout:
        return hit[2]
    out = fn(model, layout)
    if len(PER_LAYOUT) > 4096:
        PER_LAYOUT.clear()
    PER_LAYOUT[key] = (model, layout, out)  # keeps the inputs alive: their ids stay theirs
    return out


#: the last ``step_bytes.step_frame``: [(model, training, layout, frame)] (a memory survivor's full step
#: follows its memory check)
FRAME: list[tuple] = []


def clear() -> None:
    """Empty every cache of this module."""
    FRAME.clear()
    PER_LAYOUT.clear()
    LAYERS.clear()
    TEMPLATES.clear()
    TEMPLATE_KEYS.clear()
    COUNTS.clear()
