"""Context parallelism for the validator: the sequence split over the cp ranks in 2*cp load-balanced
chunks (rank r holds chunks r and 2*cp-1-r; Megatron-Core / Transformer Engine, Llama 3 Sec. 3.3.2),
attention exchanged with ``torch.distributed`` as the planner prices it (planner/work/context.py):

- ring: cp steps; each step attends the local queries to one rank's K/V chunk and combines the
  partial outputs with the online softmax (Milakov & Gimelshein 2018, arXiv 1805.02867; Liu et al.
  2023, Ring Attention, arXiv 2310.01889), while the K/V chunk goes to the next rank (isend / irecv:
  cp-1 sends per layer forward). Backward runs the ring again carrying K/V together with the dK/dV
  partial sums (one packed send per step) and sends the finished dK/dV home (cp sends per layer);
- allgather: K/V all-gathered before the attention of the local queries, dK/dV reduce-scattered back.

Gradients (and the step's loss, in the same call) are all-reduced once per step over the dp x cp
ranks; the model is otherwise the single-process reference's, parameters replicated. fp32 on CPU.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from planner.work.context import resolve_cp_kind

from ..job import JobSpec
from ..model import apply_rope, build_model, loss_fn, make_job_optimizer


def chunk_positions(rank: int, cp: int, seq: int) -> torch.Tensor:
    """Global token positions held by ``rank``: chunks ``rank`` and ``2*cp-1-rank`` of ``seq // (2*cp)``."""
    c = seq // (2 * cp)
    return torch.cat([torch.arange(rank * c, (rank + 1) * c), torch.arange((2 * cp - 1 - rank) * c, (2 * cp - rank) * c)])


def _block(q, k, v, q_pos, k_pos, group):
    """Causal scores of local queries against one K/V chunk (GQA heads repeated), scaled; masked -inf."""
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    return s.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf")), k, v


def _fold_heads(t: torch.Tensor, group: int) -> torch.Tensor:
    """Sum the gradient of repeated GQA heads back onto their key/value head."""
    if group == 1:
        return t
    b, h, s, d = t.shape
    return t.view(b, h // group, group, s, d).sum(2)


def _exchange(send: torch.Tensor, pg, nxt: int, prv: int) -> torch.Tensor:
    """Send ``send`` to the next ring rank and receive the previous rank's tensor of the same shape."""
    buf = torch.empty_like(send)
    reqs = [dist.isend(send.contiguous(), nxt, group=pg), dist.irecv(buf, prv, group=pg)]
    for r in reqs:
        r.wait()
    return buf


class _Ring(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, q_pos, meta):
        pg, rank, cp, seq, group = meta
        ranks = dist.get_process_group_ranks(pg)
        nxt, prv = ranks[(rank + 1) % cp], ranks[(rank - 1) % cp]
        out = torch.zeros_like(q)
        lse = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype)
        kv = torch.stack((k, v))
        for i in range(cp):
            j = (rank - i) % cp
            s, _, vv = _block(q, kv[0], kv[1], q_pos, chunk_positions(j, cp, seq), group)
            new = torch.logaddexp(lse, torch.logsumexp(s, -1))
            out = out * torch.exp(lse - new)[..., None] + torch.exp(s - new[..., None]) @ vv  # online softmax
            lse = new
            if i < cp - 1:
                kv = _exchange(kv, pg, nxt, prv)
        ctx.save_for_backward(q, k, v, q_pos, out, lse)
        ctx.meta = meta
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, q_pos, out, lse = ctx.saved_tensors
        pg, rank, cp, seq, group = ctx.meta
        ranks = dist.get_process_group_ranks(pg)
        nxt, prv = ranks[(rank + 1) % cp], ranks[(rank - 1) % cp]
        delta = (dout * out).sum(-1)
        dq = torch.zeros_like(q)
        kv, dkv = torch.stack((k, v)), torch.zeros((2, *k.shape), dtype=k.dtype)
        scale = 1.0 / math.sqrt(q.shape[-1])
        for i in range(cp):
            j = (rank - i) % cp
            s, kk, vv = _block(q, kv[0], kv[1], q_pos, chunk_positions(j, cp, seq), group)
            p = torch.exp(s - lse[..., None])
            ds = p * (dout @ vv.transpose(-1, -2) - delta[..., None])
            dq += ds @ kk * scale
            dkv = dkv + torch.stack((_fold_heads(ds.transpose(-1, -2) @ q * scale, group),
                                     _fold_heads(p.transpose(-1, -2) @ dout, group)))
            if i < cp - 1:  # K/V and its partial gradient travel together: one send per step
                both = _exchange(torch.cat((kv, dkv)), pg, nxt, prv)
                kv, dkv = both[:2], both[2:]
            else:  # the finished dK/dV of rank r+1's chunk goes home
                dkv = _exchange(dkv, pg, nxt, prv)
        return dq, dkv[0], dkv[1], None, None


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, q_pos, meta):
        pg, rank, cp, seq, group = meta
        kv = torch.stack((k, v))
        full = torch.empty((cp * 2, *kv.shape[1:]), dtype=kv.dtype)  # ranks concatenated along dim 0
        dist.all_gather_into_tensor(full, kv.contiguous(), group=pg)
        full = full.view(cp, *kv.shape)
        kf = torch.cat([full[j, 0] for j in range(cp)], dim=2)
        vf = torch.cat([full[j, 1] for j in range(cp)], dim=2)
        k_pos = torch.cat([chunk_positions(j, cp, seq) for j in range(cp)])
        s, kk, vv = _block(q, kf, vf, q_pos, k_pos, group)
        p = torch.softmax(s, -1)
        ctx.save_for_backward(q, kk, vv, p)
        ctx.meta = meta
        return p @ vv

    @staticmethod
    def backward(ctx, dout):
        q, kk, vv, p = ctx.saved_tensors
        pg, rank, cp, seq, group = ctx.meta
        scale = 1.0 / math.sqrt(q.shape[-1])
        dp = dout @ vv.transpose(-1, -2)
        ds = p * (dp - (dp * p).sum(-1, keepdim=True))
        dq = ds @ kk * scale
        dk = _fold_heads(ds.transpose(-1, -2) @ q * scale, group)
        dv = _fold_heads(p.transpose(-1, -2) @ dout, group)
        n = dk.shape[2] // cp
        full = torch.cat([torch.stack((dk[:, :, j * n:(j + 1) * n], dv[:, :, j * n:(j + 1) * n])) for j in range(cp)])
        mine = torch.empty(full.shape[0] // cp, *full.shape[1:], dtype=full.dtype)
        dist.reduce_scatter_tensor(mine, full.contiguous(), group=pg)
        return dq, mine[0], mine[1], None, None


class _CPAttention(nn.Module):
    """Wraps a reference ``Attention``: same weights, the core run over the cp group."""

    def __init__(self, inner: nn.Module, kind: str, meta, q_pos: torch.Tensor):
        super().__init__()
        self.inner, self.kind, self.meta, self.q_pos = inner, kind, meta, q_pos
        self.recompute_core = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, s = self.inner, x.shape[0], x.shape[1]
        q = a.wq(x).view(b, s, -1, a.head_dim).transpose(1, 2)
        k = a.wk(x).view(b, s, -1, a.head_dim).transpose(1, 2)
        v = a.wv(x).view(b, s, -1, a.head_dim).transpose(1, 2)
        if a.rope:
            cos, sin = a.rope_cos[self.q_pos], a.rope_sin[self.q_pos]
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        fn = _Ring if self.kind == "ring" else _AllGather
        y = fn.apply(q, k, v, self.q_pos, self.meta)
        return a.wo(y.transpose(1, 2).reshape(b, s, -1))


class ContextParallelRun:
    """This rank's model (replicated parameters, cp attention), its optimizer and one training step;
    the same interface as ``ParallelRun``."""

    def __init__(self, job: JobSpec, mesh, device: torch.device):
        self.job, self.mesh, self.device = job, mesh, device
        lay = job.layout
        self.kind = resolve_cp_kind(lay, job.training_spec())
        self.cp_rank, self.dp_rank = mesh.get_local_rank("cp"), mesh.get_local_rank("dp")
        self.cp_group = mesh["cp"].get_group()
        self.q_pos = chunk_positions(self.cp_rank, lay.cp, job.seq_length)
        self.model = build_model(job.effective_model(), job.seq_length, job.seed)
        self.model.set_recompute(job.recompute)
        meta = (self.cp_group, self.cp_rank, lay.cp, job.seq_length, job.model.num_heads // job.model.kv_heads)
        for layer in self.model.layers.values():
            layer.attention = _CPAttention(layer.attention, self.kind, meta, self.q_pos)
        self.micro_batches = job.global_batch_size // (job.micro_batch_size * lay.dp)
        self.optimizer = make_job_optimizer(self.model.parameters(), job)
        self.holds_loss = True
        self.modules = [self.model]

    def _forward(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        h = m.tok_embeddings(tokens)
        if m.pos_embeddings is not None:
            h = h + m.pos_embeddings(self.q_pos[None])
        if m.embedding_norm is not None:
            h = m.embedding_norm(h)
        for layer in m.layers.values():
            h = checkpoint(layer, h, use_reentrant=False) if m.recompute_layers else layer(h)
        return m.output(m.norm(h))

    def forward_backward(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        """Gradients of the mean loss over the global batch (one all-reduce over dp x cp, the loss in it)."""
        lay = self.job.layout
        n = inputs.shape[0] // lay.dp
        rows = slice(self.dp_rank * n, (self.dp_rank + 1) * n)
        x, y = inputs[rows][:, self.q_pos], targets[rows][:, self.q_pos]
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros(())
        for xm, ym in zip(x.chunk(self.micro_batches), y.chunk(self.micro_batches)):
            loss = loss_fn(self._forward(xm), ym) / self.micro_batches
            loss.backward()
            total += loss.detach()
        params = [p for p in self.model.parameters() if p.grad is not None]
        flat = torch.cat([p.grad.reshape(-1) for p in params] + [total.reshape(1)])
        dist.all_reduce(flat)  # the world is the dp x cp group of this job
        flat /= dist.get_world_size()
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        return float(flat[-1])

    def optimizer_step(self) -> None:
        """One optimizer step."""
        self.optimizer.step()

    def named_parameters(self):
        """(reference name, parameter): the wrapper's ``inner`` level dropped."""
        for name, p in self.model.named_parameters():
            yield name.replace("attention.inner.", "attention."), p

    def full_params(self) -> dict[str, torch.Tensor]:
        """Parameters by reference name (replicated: no collective)."""
        return {n: p.detach().cpu().clone() for n, p in self.named_parameters()}

    def full_grads(self) -> dict[str, torch.Tensor]:
        """Gradients by reference name (already reduced over dp x cp)."""
        return {n: p.grad.detach().cpu().clone() for n, p in self.named_parameters() if p.grad is not None}

    def state_tensors(self) -> list[torch.Tensor]:
        """Parameters, gradients and optimizer state."""
        out = [p for _, p in self.named_parameters()]
        out += [p.grad for _, p in self.named_parameters() if p.grad is not None]
        for st in self.optimizer.state.values():
            out += [v for v in st.values() if isinstance(v, torch.Tensor)]
        return out


__all__ = ["ContextParallelRun", "chunk_positions"]
