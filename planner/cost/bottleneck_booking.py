"""How an overlap window is booked in the time breakdown (seconds).

A pass of compute C overlapped with communication G takes max(C, G). The window is booked to the
resource on its critical path: when C >= G the compute in full and no communication; when G > C
the communication in full — C of it ran with the compute hidden under it (booked as
communication, not as compute) and G - C after it. Booked this way each part is the step time's
derivative with respect to its resource (the window moves 1:1 with its longer side and not at
all with the shorter one), which is what ``paraplan sensitivity`` measures; booking the hidden
compute as compute made a gather-bound step read "compute 84 %" while 2x compute saved 6 %.
"""

from __future__ import annotations


def hidden_compute(compute_s: float, comm_s: float, slowdown: float = 0.0) -> float:
    """Compute of one window that runs hidden under longer communication, s (0 when compute-bound). With
    ``slowdown`` extra seconds per second beside the communication (planner.pricing.compute.beside_slowdown) the
    window is communication-bound only once the slowed compute fits under it, comm > compute x (1 + slowdown)."""
    return compute_s if comm_s > compute_s * (1.0 + slowdown) else 0.0


def zero3_hidden_compute(fwd_compute_s: float, fwd_comm_s: float, bwd_compute_s: float,
                         bwd_comm_s: float, fwd_slowdown: float = 0.0, bwd_slowdown: float = 0.0) -> float:
    """Compute of one micro-batch hidden under ZeRO-3/FSDP traffic: the forward window (parameter
    gathers prefetched under the forward) and the backward window (gathers and gradient
    reduce-scatters under the backward), each slowed beside its traffic by its ``*_slowdown``, s."""
    return (hidden_compute(fwd_compute_s, fwd_comm_s, fwd_slowdown)
            + hidden_compute(bwd_compute_s, bwd_comm_s, bwd_slowdown))
