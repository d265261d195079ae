"""Mixture-of-experts rows of the published-runs CSV: the architecture comes from the zoo model the
row's ``moe`` cell names (``zoo: qwen3-30b-a3b; ...``), because the CSV's columns cannot hold experts,
shared experts, dense-first layers or MLA; the row's own architecture columns must agree with it
(layers, hidden, heads, vocab), so a wrong name cannot slip through. The ``ep`` column is the
expert-parallel degree; the expert tensor-parallel degree is Megatron-Core's default (= tp)
unless the cell says ``etp N``. When that default breaks Megatron-Core's expert grid (ep * etp must
divide the tp * cp * dp ranks of a stage: megatron/core/parallel_state.py, initialize_model_parallel),
the run cannot have used it: etp is then the largest divisor of tp that the grid admits (listed in
``defaults_used`` as ``etp``).

How the run dispatched and overlapped, read from the same cell (``row_moe_training``; unstated = Megatron-Core's
defaults: the alltoall dispatcher, dropless, no overlap, no MTP): ``deepep`` / ``hybridep`` (the flex dispatcher with DeepEP / HybridEP),
``a2a overlap`` (--overlap-moe-expert-parallel-comm), ``shared expert overlap`` (--moe-shared-expert-overlap),
``capacity factor C`` (token drop, padded to capacity), ``mtp N`` (--mtp-num-layers), ``imbalance L``; and the
pipeline split, ``layout S`` with S Megatron's --pipeline-model-parallel-layout string (``row_pipeline_layout``).
"""

from __future__ import annotations

import re

from hwprofiles.loader import list_models, load_model

from ..errors import SpecError
from ..specs import ModelSpec
from ..specs.pipeline_layout import parse_pipeline_layout
from .cells import Unmappable, int_cell


def moe_model(row: dict[str, str]) -> ModelSpec:
    """The zoo ModelSpec a MoE row names, checked against the row's architecture columns."""
    m = re.search(r"zoo:\s*([\w.\-]+)", row["moe"])
    if m is None:
        raise Unmappable("MoE row without 'zoo: NAME' in its moe cell (the columns cannot hold the experts)")
    name = m.group(1)
    if name not in list_models():
        raise Unmappable(f"moe cell names zoo model '{name}', which is not in the zoo")
    model = load_model(name)
    for col, value in (("layers", model.num_layers), ("hidden", model.hidden_size), ("heads", model.num_heads),
                       ("vocab", model.vocab_size)):
        stated = int_cell(row, col)
        if stated is not None and stated != value:
            raise Unmappable(f"{col}({stated}) differs from zoo model {name} ({value})")
    return model


def row_ep(row: dict[str, str], model: ModelSpec, stage_ranks: int, tp: int) -> tuple[dict, bool]:
    """Layout fields for the experts: ep (column ``ep``) and etp (``etp N`` in the moe cell, else
    Megatron-Core's default tp when the grid admits it), and whether etp was derived from the grid.
    ``stage_ranks`` is tp * cp * dp, the ranks of one pipeline stage."""
    if not model.is_moe:
        return {}, False
    ep = int_cell(row, "ep") or 1
    out: dict = {"ep": ep}
    m = re.search(r"\betp\s*(\d+)", row["moe"])
    if m:
        out["etp"] = int(m.group(1))
        return out, False
    if stage_ranks % (ep * tp) == 0:
        return out, False
    fits = [e for e in range(tp, 0, -1) if tp % e == 0 and stage_ranks % (ep * e) == 0]
    if not fits:  # no expert grid at all: check_layout names the rule
        return out, False
    out["etp"] = fits[0]
    return out, True


def row_moe_training(row: dict[str, str]) -> dict:
    """TrainingSpec fields the ``moe`` cell states (module docstring), the others left to their defaults."""
    cell = row["moe"].lower()
    out: dict = {}
    m = re.search(r"\b(deepep|hybridep)\b", cell)
    if m:
        out["moe_token_dispatcher"] = m.group(1)
    if "a2a overlap" in cell:
        out["moe_a2a_overlap"] = True
    if "shared expert overlap" in cell:
        out["moe_shared_expert_overlap"] = True
    for key, pattern, kind in (("moe_capacity_factor", r"capacity factor\s*([\d.]+)", float),
                               ("mtp_layers", r"\bmtp\s*(\d+)", int),
                               ("moe_load_imbalance", r"\bimbalance\s*([\d.]+)", float)):
        m = re.search(pattern, cell)
        if m:
            out[key] = kind(m.group(1))
    return out


def row_pipeline_layout(row: dict[str, str], model: ModelSpec, pp: int, vpp: int, mtp_layers: int) -> dict:
    """Layout fields of a ``layout S`` entry of the ``moe`` cell (Megatron's layout string and its per-rank
    layer counts); {} without one. Unmappable when the string does not fit the row."""
    m = re.search(r"\blayout\s+([^;\s]+)", row["moe"])
    if m is None:
        return {}
    try:
        split = parse_pipeline_layout(m.group(1), pp, vpp, model.num_layers, mtp_layers)
    except SpecError as exc:
        raise Unmappable(str(exc)) from None
    return {"pipeline_layout": split.text, "stage_layers": split.stage_layers}
