"""Per-stage op orders of the pipeline schedules (no times here).

An op is ``(kind, micro_batch, chunk)`` with kind ``"F"`` (forward) or ``"B"`` (backward; input-grad
only under ZB-H1, whose weight-grad passes ``"W"`` are ops of their own, see :func:`zb_h1_order`).

- GPipe (Huang et al. 2019): all forwards, then all backwards.
- 1F1B (Narayanan et al. 2021, Sec. 2.2, PipeDream-Flush): stage i runs min(p - i - 1, m) warm-up
  forwards, then alternates one forward and one backward, then drains the backwards.
- Interleaved 1F1B (same paper, Sec. 2.2.2; Megatron-LM ``forward_backward_pipelining_with_
  interleaving``): v model chunks per stage; warm-up (p - i - 1) * 2 + (v - 1) * p chunk-forwards;
  micro-batches go through the chunks in groups of p.
- ZB-H1 (Qi et al. 2023, arXiv 2401.10241, Sec. 2.1 and Fig. 3 top): the 1F1B order of forwards
  and input-grad backwards B; the weight-grad pass W of micro-batch k - i follows B of k on stage i
  (stage i delays its W passes by i micro-batches), so every stage holds p micro-batches in flight
  (p - i before their B, i waiting for their W) and the last stages' deferred W passes fill the
  drain. With equal stages the bubble is (p - 1)(T_F + T_B - T_W), a third of 1F1B's when
  T_F = T_B = T_W; the first stage's peak stays 1F1B's p micro-batches.
"""

from __future__ import annotations

from functools import lru_cache

from planner.errors import SpecError

Op = tuple[str, int, int]


def gpipe_order(m: int) -> list[Op]:
    """All m forwards then all m backwards (one chunk)."""
    return [("F", k, 0) for k in range(m)] + [("B", k, 0) for k in range(m)]


def one_f_one_b_order(stage: int, p: int, m: int) -> list[Op]:
    """PipeDream-Flush order of ``stage`` of ``p`` stages for ``m`` micro-batches: min(p - stage - 1, m)
    warm-up forwards, then forward k + warm-up alternating with backward k, then the last backwards
    (built by slices of the shared op tuples, no loop per op)."""
    warm = min(p - stage - 1, m)
    fwd, bwd = _ops("F", m), _ops("B", m)
    n = m - warm  # forward / backward pairs
    ops: list[Op] = [None] * (2 * m)
    ops[:warm] = fwd[:warm]
    ops[warm:warm + 2 * n:2] = fwd[warm:]
    ops[warm + 1:warm + 2 * n:2] = bwd[:n]
    ops[warm + 2 * n:] = bwd[n:]
    return ops


@lru_cache(maxsize=8)
def _ops(kind: str, m: int) -> tuple[Op, ...]:
    """(kind, k, 0) for k < m, made once per step size and shared by every stage's order."""
    return tuple((kind, k, 0) for k in range(m))


def zb_h1_order(stage: int, p: int, m: int) -> list[Op]:
    """ZB-H1 order of ``stage``: 1F1B's F/B order, W of micro-batch k - stage right after B of k,
    the remaining W passes at the end."""
    warm = min(p - stage - 1, m)
    ops: list[Op] = [("F", k, 0) for k in range(warm)]
    w = 0  # next weight-grad pass to place

    def backward(k: int) -> None:
        nonlocal w
        ops.append(("B", k, 0))
        if k - stage >= w:
            ops.append(("W", w, 0))
            w += 1

    for k in range(m - warm):
        ops.append(("F", warm + k, 0))
        backward(k)
    for k in range(m - warm, m):
        backward(k)
    ops.extend(("W", k, 0) for k in range(w, m))
    return ops


def _interleaved_id(k: int, p: int, v: int, forward: bool) -> tuple[int, int]:
    """(micro-batch, chunk) of the k-th forward / backward chunk-op (Megatron-LM order)."""
    in_group = k % (p * v)
    chunk = in_group // p
    if not forward:
        chunk = v - 1 - chunk
    return (k // (p * v)) * p + in_group % p, chunk


def interleaved_order(stage: int, p: int, m: int, v: int) -> list[Op]:
    """Interleaved 1F1B order of ``stage`` (``m`` must be a multiple of ``p``)."""
    total = m * v
    warm = min((p - stage - 1) * 2 + (v - 1) * p, total)
    ops: list[Op] = []
    for k in range(warm):
        mb, c = _interleaved_id(k, p, v, True)
        ops.append(("F", mb, c))
    for j in range(total - warm):
        mb, c = _interleaved_id(warm + j, p, v, True)
        ops.append(("F", mb, c))
        mb, c = _interleaved_id(j, p, v, False)
        ops.append(("B", mb, c))
    for j in range(total - warm, total):
        mb, c = _interleaved_id(j, p, v, False)
        ops.append(("B", mb, c))
    return ops


def stage_order(schedule: str, stage: int, p: int, m: int, v: int = 1) -> list[Op]:
    """Op order of ``stage`` under ``schedule``; SpecError for an unknown schedule."""
    if schedule == "gpipe":
        return gpipe_order(m)
    if schedule == "1f1b":
        return one_f_one_b_order(stage, p, m)
    if schedule == "zb-h1":
        return zb_h1_order(stage, p, m)
    if schedule == "interleaved-1f1b":
        if m % p:
            raise SpecError(
                f"interleaved 1F1B needs micro-batches({m}) % pp({p}) == 0 (Megatron-LM refuses it), "
                f"got {m % p}", field="training.global_batch_size")
        return interleaved_order(stage, p, m, v)
    raise SpecError(f"'{schedule}' is not one of: gpipe, 1f1b, interleaved-1f1b, zb-h1",
                    field="layout.schedule")


def splits_weight_grad(schedule: str) -> bool:
    """True when backward is split into input-grad B and deferred weight-grad W (ZB-H1)."""
    return schedule == "zb-h1"
