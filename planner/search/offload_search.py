"""Offload in the search: tried only for a candidate that does not fit without it, lightest level
first (optimizer; + gradients; + parameters; + activation checkpoints), within what the recipe and
the ``--framework`` target (planner.frameworks.offload) can express and the node's host memory
holds. No formula here: bytes come from planner.work, the fit from
planner.search.memory_check.check_memory, the time later from planner.cost."""

from __future__ import annotations

from ..errors import SpecError
from ..frameworks import refusal
from ..specs import HardwareProfile, ModelSpec
from ..work.offload import OFFLOAD_LEVELS, check_offload, host_bytes_per_node, offload_kinds
from ..work.step_bytes import step_bytes
from .space import Candidate, SearchConstraints

GIB = 2**30


def offload_levels(hardware: HardwareProfile, c: SearchConstraints):
    """Offload levels the search may try on ``hardware`` (none when the profile lacks a host link
    or a CPU Adam rate, or when the user said ``--offload none``)."""
    if c.offload == "none" or hardware.device.host_link_gbps is None or hardware.node.cpu_adam_params_per_s is None:
        return ()
    return OFFLOAD_LEVELS


def host_memory_fits(model: ModelSpec, hardware: HardwareProfile, cand: Candidate) -> bool:
    """Every stage's offloaded bytes, times the GPUs of a node, fit the node's host memory."""
    cap = hardware.node.host_memory_gib
    if cap is None:
        return False
    step = step_bytes(model, cand.training, cand.layout)
    need = max(host_bytes_per_node(s.offload, s.in_flight, hardware.node.devices_per_node) for s in step.stages)
    return need <= cap * GIB


def freeable_bytes(mc, cand: Candidate) -> float:
    """Upper bound of the HBM bytes offload can free at the peak stage of ``mc`` (what the recipe
    can offload of its optimizer state, gradients, weights under ZeRO-3, checkpoints under full
    recompute): a candidate still over capacity without them is not tried."""
    bd, trn = mc.breakdown, cand.training
    kinds = offload_kinds(trn)
    if bd is None or not kinds:
        return 0.0
    free = bd.optimizer
    free += bd.grads if "gradients" in kinds else 0.0
    free += bd.params if "params" in kinds and cand.layout.effective_zero_stage == 3 else 0.0
    free += bd.activations if "activations" in kinds and trn.recompute == "full" else 0.0
    return free


def offload_fit(model: ModelSpec, hardware: HardwareProfile, cand: Candidate, usable: float,
                c: SearchConstraints, check_memory, mc=None):
    """(the lightest offloaded candidate that fits, its MemoryCheck), or (None, None). ``mc`` is
    the candidate's own (non-fitting) check, used to skip hopeless cases without building steps."""
    if not offload_levels(hardware, c):
        return None, None
    if mc is not None and mc.peak_bytes - freeable_bytes(mc, cand) > usable:
        return None, None
    valid = []
    for level in offload_levels(hardware, c):
        if c.offload not in (None, "auto") and level.describe() != c.offload:
            continue
        try:
            trial = Candidate(cand.layout, cand.training.replace(offload=level.model_dump()), cand.gpus)
            check_offload(trial.training, trial.layout)
        except (SpecError, ValueError):
            continue
        if c.framework and refusal(c.framework, model, trial.training, trial.layout, c.framework_model_rules):
            continue  # the target framework cannot express this level (planner.frameworks.offload)
        valid.append(trial)
    if not valid or not check_memory(model, hardware, valid[-1], usable).fits:
        return None, None  # levels are supersets: if the heaviest does not fit HBM, none does
    for trial in valid:
        mc = check_memory(model, hardware, trial, usable)
        if mc.fits and host_memory_fits(model, hardware, trial):
            return trial, mc
    return None, None
