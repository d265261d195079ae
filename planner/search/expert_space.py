"""Expert-parallel degrees of the search space (MoE models only). Enumeration, no formulas.

Megatron-Core's rule (megatron/core/parallel_state.py): ep * etp must divide the tp * cp * dp ranks
of a stage, ep must divide the number of experts, etp the expert width. etp is searched at 1 (the
"MoE parallel folding" choice the Megatron-Core MoE guide recommends for fine-grained experts) and at
tp (the legacy default, experts split like the dense FFN); ep over the divisors of the expert count.
"""

from __future__ import annotations

from ..specs import ModelSpec


def expert_degrees(model: ModelSpec, tp: int, cp: int, dp: int, ep_pin: int | None = None,
                   etp_pin: int | None = None) -> list[tuple[int, int | None]]:
    """(ep, etp) pairs for a stage of tp * cp * dp ranks; [(1, None)] for a dense model. etp None
    means 'same as tp'."""
    if not model.is_moe:
        return [(1, None)]
    width = model.expert_ffn_hidden_size or model.ffn_hidden_size
    ranks = tp * cp * dp
    etps = sorted({1, tp}) if etp_pin is None else [etp_pin]
    out: list[tuple[int, int | None]] = []
    for etp in etps:
        if width % etp:
            continue
        for ep in range(1, model.num_experts + 1):
            if model.num_experts % ep or ranks % (ep * etp):
                continue
            if ep_pin is not None and ep != ep_pin:
                continue
            out.append((ep, None if etp == tp else etp))
    return out
