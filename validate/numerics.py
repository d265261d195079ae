"""Numerics check: a parallel step against a single-process reference of the same model and data.

Error of a tensor = max |parallel - reference| / max |reference| (a relative error scaled by the tensor's
largest entry, so elements near zero do not dominate). Tolerances: fp32 1e-4 (reduction order only);
bf16 autocast 5e-2 (8-bit mantissa, Kalamkar et al. 2019 arXiv 1905.12322).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel

from .job import JobSpec
from .model import build_model, loss_fn, make_batch

TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}


class Reference(BaseModel):
    """Reference loss, gradients and updated parameters (tensors kept as Python objects)."""

    model_config = {"arbitrary_types_allowed": True}
    loss: float
    grads: dict[str, torch.Tensor]
    params_after: dict[str, torch.Tensor]


def data_seed(job: JobSpec, step: int) -> int:
    """Seed of step ``step``'s batch (distinct from the weight seed)."""
    return job.seed * 7919 + 1 + step


def step_batch(job: JobSpec, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global batch (inputs, targets) of step ``step``."""
    return make_batch(job.model.vocab_size, job.global_batch_size, job.seq_length, data_seed(job, step))


def reference_step(job: JobSpec) -> Reference:
    """One step of the unparallelised model on the whole global batch of step 0 (CPU)."""
    model = build_model(job.effective_model(), job.seq_length, job.seed)
    model.set_recompute(job.recompute)
    x, y = step_batch(job, 0)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=job.compute_dtype == "bf16")
    with ctx:
        loss = loss_fn(model(x), y)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt = (torch.optim.Adam if job.optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=job.lr)
    opt.step()
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    return Reference(loss=float(loss), grads=grads, params_after=params)


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| / max |want| (absolute error when ``want`` is all zeros)."""
    diff = (got.float() - want.float()).abs().max().item()
    scale = want.float().abs().max().item()
    return diff / scale if scale > 0 else diff


def compare(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> tuple[float, str]:
    """Worst relative error over the tensors in ``got`` and its name; missing names raise KeyError."""
    worst, where = 0.0, ""
    for name, t in got.items():
        if t.shape != want[name].shape:
            return float("inf"), f"{name} shape {tuple(t.shape)} != {tuple(want[name].shape)}"
        err = relative_error(t, want[name])
        if err > worst:
            worst, where = err, name
    return worst, where
