"""A job's model, parallelised with PyTorch's own APIs over a (dp, pp, tp) DeviceMesh.

``ParallelRun`` builds the full model from the seed, cuts this rank's pipeline chunks, applies tensor
parallel, then data parallel, and drives one training step (plain loop or pipeline schedule).
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

from ..job import JobSpec
from ..model import build_model, loss_fn
from ..numerics import AUTOCAST_DTYPE
from .data import apply_data_parallel, make_grad_scaler, make_optimizer
from .expert import ExpertDataParallel
from .mesh import coords, make_mesh
from .pipeline import build_chunks, build_schedule
from .tensor import apply_tensor_parallel

__all__ = ["ParallelRun", "make_mesh", "coords", "full_tensor"]


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor (gathers a DTensor's shards; a collective over its mesh)."""
    return t.full_tensor() if isinstance(t, DTensor) else t


def _clean(name: str) -> str:
    return name.removeprefix("module.").removeprefix("module.")


class ParallelRun:
    """This rank's share of the model, its optimizer and (with pp > 1) its pipeline schedule."""

    def __init__(self, job: JobSpec, mesh, device: torch.device):
        self.job, self.mesh, self.device = job, mesh, device
        lay = job.layout
        self.coords = coords(mesh)
        self.micro_batches = job.global_batch_size // (job.micro_batch_size * lay.dp)
        full = build_model(job.effective_model(), job.seq_length, job.seed)
        full.set_recompute(job.recompute)
        if lay.pp > 1:
            chunks = build_chunks(full, lay, self.coords["pp"])
        else:
            chunks = [(0, full)]
        self.stage_ids = [idx for idx, _ in chunks]
        self.num_stages = lay.pp * lay.vpp
        modules = []
        for _, m in chunks:
            if lay.tp > 1:
                apply_tensor_parallel(m, mesh["tp"], lay.sequence_parallel)
            modules.append(m.to(device))
        if lay.ep > 1:  # experts split over the ep (= dp) ranks, Megatron-style gradient reduction

            self.modules = [ExpertDataParallel(modules[0], mesh["dp"].get_group(), lay.dp, lay.ep)]
        else:
            self.modules = apply_data_parallel(modules, lay, mesh["dp"], mixed_precision=job.recipe == "fsdp")
        self.optimizer = make_optimizer(self.modules, lay, mesh["dp"], job)
        self.scaler = make_grad_scaler(job, device) if job.compute_dtype == "fp16" else None
        self.schedule = None
        if lay.pp > 1:
            self.schedule = build_schedule(list(zip(self.stage_ids, self.modules)), lay, mesh["pp"], device,
                                           self.micro_batches, loss_fn)

    @property
    def holds_loss(self) -> bool:
        """True where this rank computes the loss (the last pipeline chunk)."""
        return self.num_stages - 1 in self.stage_ids

    def _autocast(self):
        """bf16 autocast around a whole step, without autocast's weight-cast cache: FSDP2 frees and
        re-gathers the unsharded parameters between micro-batches, and with bf16 copies cached from an
        earlier gather its gradients came out wrong (numerics check: 0.87 relative error, 3e-3 without)."""
        if self.job.compute_dtype in AUTOCAST_DTYPE and self.job.recipe == "torch-amp":
            return torch.autocast(self.device.type, dtype=AUTOCAST_DTYPE[self.job.compute_dtype], cache_enabled=False)
        return contextlib.nullcontext()

    def local_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This data-parallel rank's rows of the global batch, on the device."""
        n = inputs.shape[0] // self.job.layout.dp
        r = self.coords["dp"]
        return inputs[r * n:(r + 1) * n].to(self.device), targets[r * n:(r + 1) * n].to(self.device)

    def forward_backward(self, inputs: torch.Tensor, targets: torch.Tensor) -> float | None:
        """Gradients of the mean loss over the global batch; returns that loss where this rank holds it."""
        x, y = self.local_batch(inputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            if self.schedule is not None:
                losses: list[torch.Tensor] = []
                args = (x,) if 0 in self.stage_ids else ()
                kwargs = {"target": y, "losses": losses} if self.holds_loss else {}
                self.schedule.step(*args, **kwargs)
                loss = torch.stack([t.detach() for t in losses]).mean() if self.holds_loss else None
            else:
                loss = self._accumulate(x, y)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)  # gradients as the reference has them
        if loss is None:
            return None
        if self.job.layout.dp > 1:
            loss = loss.clone()
            dist.all_reduce(loss, group=self.mesh["dp"].get_group())
            loss = loss / self.job.layout.dp
        return float(loss)

    def _accumulate(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model = self.modules[0]
        n = self.micro_batches
        total = torch.zeros((), device=self.device)
        stage = self.job.layout.effective_zero_stage
        for i, (xm, ym) in enumerate(zip(x.chunk(n), y.chunk(n))):
            last = i == n - 1
            sync = last or stage == 3  # ZeRO-3 keeps gradient shards only: reduce-scatter every micro-batch
            ctx = model.no_sync() if hasattr(model, "no_sync") and not sync else contextlib.nullcontext()
            if hasattr(model, "set_requires_gradient_sync"):
                model.set_requires_gradient_sync(sync)
                if stage == 2:  # ZeRO-2 keeps parameters whole until the step: one gather per step
                    model.set_reshard_after_backward(last)
            with ctx:
                loss = loss_fn(model(xm), ym) / n
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            total += loss.detach()
        finish = getattr(model, "finish_gradients", None)  # expert parallel: its own gradient reduction
        if finish is not None:
            finish()
        return total

    def optimizer_step(self) -> None:
        """One optimizer step (with fp16: skipped by the scaler on overflow, and the scale updated)."""
        if self.scaler is None:
            self.optimizer.step()
            return
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def named_parameters(self):
        """(reference name, parameter) for every parameter this rank holds (DTensors as DTensors)."""
        seen: set[int] = set()
        for m in self.modules:
            for name, p in m.named_parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield _clean(name), p

    def full_params(self) -> dict[str, torch.Tensor]:
        """Whole parameters by reference name (collectives over tp/dp meshes)."""
        return {n: full_tensor(p.detach()).cpu() for n, p in self.named_parameters()}

    def full_grads(self) -> dict[str, torch.Tensor]:
        """Whole gradients by reference name (collectives over tp/dp meshes)."""
        return {n: full_tensor(p.grad).cpu() for n, p in self.named_parameters() if p.grad is not None}

    def state_tensors(self) -> list[torch.Tensor]:
        """Every tensor the step keeps alive across steps: parameters, gradients, optimizer state."""
        out = [p for _, p in self.named_parameters()]
        out += [p.grad for _, p in self.named_parameters() if p.grad is not None]
        opt = getattr(self.optimizer, "optim", self.optimizer)
        for st in opt.state.values():
            out += [v for v in st.values() if isinstance(v, torch.Tensor)]
        return out
