"""Numerics check: a parallel step against a single-process reference of the same model and data.

Error of a tensor = max |parallel - reference| / scale. Gradients: scale = the tensor's largest reference
entry, floored at 1% of the largest gradient of the model (some gradients are zero in exact arithmetic,
e.g. a key bias under softmax, and hold only rounding noise). Parameters after the optimizer step: scale =
the largest reference parameter of the model, over the entries whose reference gradient is farther from
zero than the gradient check allows (Adam's first step moves a parameter by lr * g / (|g| + eps), about
+-lr whatever |g| is, so a gradient that is zero within tolerance has no determined direction: on GPT-2
such entries moved 0.4 lr apart; a real error moves a parameter by ~lr = 1e-3, ten times the fp32
tolerance). Tolerances: fp32 1e-4 (reduction order only); bf16 autocast 5e-2 (8-bit
mantissa, Kalamkar et al. 2019 arXiv 1905.12322); fp16 autocast 2e-2 (11-bit mantissa, with the loss
scaled by LOSS_SCALE as in mixed-precision training, Micikevicius et al. 2018 arXiv 1710.03740).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel

from .job import JobSpec
from .model import build_model, loss_fn, make_batch, make_job_optimizer

TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2, "fp16": 2e-2}
AUTOCAST_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}
LOSS_SCALE = 2.0**10  # initial fp16 loss scale of the run's GradScaler and the reference's fixed scale


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


def reference_step(job: JobSpec, device: torch.device | None = None) -> Reference:
    """One step of the unparallelised model on the whole global batch of step 0, on ``device`` (CPU by
    default; the job's GPU for NCCL runs, where a CPU reference of a GPU-sized model would take minutes).
    Results are returned on the CPU."""
    device = device or torch.device("cpu")
    model = build_model(job.effective_model(), job.seq_length, job.seed).to(device)
    model.set_recompute(job.recompute)
    x, y = (t.to(device) for t in step_batch(job, 0))
    dtype = AUTOCAST_DTYPE.get(job.compute_dtype)
    with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = loss_fn(model(x), y)
    scale = LOSS_SCALE if job.compute_dtype == "fp16" else 1.0
    (loss * scale).backward()
    for p in model.parameters():
        p.grad /= scale
    grads = {n: p.grad.detach().cpu().clone() for n, p in model.named_parameters()}
    opt = make_job_optimizer(model.parameters(), job)
    opt.step()
    params = {n: p.detach().cpu().clone() for n, p in model.named_parameters()}
    return Reference(loss=float(loss.detach()), grads=grads, params_after=params)


GRAD_FLOOR = 1e-2


def relative_error(got: torch.Tensor, want: torch.Tensor, floor: float = 0.0) -> float:
    """max |got - want| / max(max |want|, floor) (absolute error when both are zero)."""
    diff = (got.float() - want.float()).abs().max().item()
    scale = max(want.float().abs().max().item(), floor)
    return diff / scale if scale > 0 else diff


def compare(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], floor_fraction: float) -> tuple[float, str]:
    """Worst error over the tensors in ``got`` and its name; each tensor's scale is floored at
    ``floor_fraction`` x the largest entry of any tensor in ``want``. Missing names raise KeyError."""
    floor = floor_fraction * max(t.float().abs().max().item() for t in want.values())
    worst, where = 0.0, ""
    for name, t in got.items():
        if t.shape != want[name].shape:
            return float("inf"), f"{name} shape {tuple(t.shape)} != {tuple(want[name].shape)}"
        err = relative_error(t, want[name], floor)
        if err > worst:
            worst, where = err, name
    return worst, where


def compare_params(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], want_grads: dict[str, torch.Tensor],
                   tolerance: float) -> tuple[float, str]:
    """Worst error of the updated parameters in ``got`` (scale: the largest parameter in ``want``) and its
    name, over the entries whose reference gradient exceeds the gradient check's allowance (``tolerance``
    times the scale ``compare`` uses for that gradient); entries with a gradient that is zero within
    tolerance are skipped."""
    grad_floor = GRAD_FLOOR * max(t.float().abs().max().item() for t in want_grads.values())
    scale = max(t.float().abs().max().item() for t in want.values())
    worst, where = 0.0, ""
    for name, t in got.items():
        if t.shape != want[name].shape:
            return float("inf"), f"{name} shape {tuple(t.shape)} != {tuple(want[name].shape)}"
        g = want_grads[name].float().abs()
        determined = g > tolerance * max(g.max().item(), grad_floor)
        if not bool(determined.any()):
            continue
        diff = (t.float() - want[name].float()).abs()[determined].max().item()
        err = diff / scale if scale > 0 else diff
        if err > worst:
            worst, where = err, name
    return worst, where
