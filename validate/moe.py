"""The validator's mixture-of-experts FFN (torch), single-process and expert-parallel.

Routing as in Mixtral / Qwen3-MoE: softmax router scores (fp32), the top-k experts per token, their
weights renormalised to sum to 1; the output is the weighted sum of the k experts' FFNs, plus the
shared experts' FFN when the model has some (DeepSeekMoE, Qwen2-MoE without its gate).

Expert parallel over ``ep`` ranks (GShard, arXiv 2006.16668, Sec. 2.2; Megatron-Core's alltoall
dispatcher): rank r owns experts [r*E/ep, (r+1)*E/ep). Each token copy is sent to its expert's rank by
one ``all_to_all_single`` (dispatch) and the expert outputs come back by a second one (combine);
autograd runs the mirror all-to-alls in backward (``torch.distributed.nn.functional``), so a MoE
layer makes exactly the 2 forward + 2 backward all-to-alls the planner prices. The per-destination
buffers are padded to the largest possible count (all T*k copies), and each row carries its local
expert index (-1 = padding) in one extra column, so no separate token-count exchange is needed.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.nn.functional import all_to_all_single

from planner.specs import ModelSpec

from .feed_forward import FeedForward


def route(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(expert indices (T, k), weights (T, k)): top-k of the softmax scores, renormalised."""
    probs = F.softmax(logits.float(), dim=-1)
    weights, idx = probs.topk(k, dim=-1)
    return idx, (weights / weights.sum(dim=-1, keepdim=True)).to(logits.dtype)


class MoEFeedForward(nn.Module):
    """Router + E routed experts (+ shared experts); expert parallel after ``shard``."""

    def __init__(self, model: ModelSpec):
        super().__init__()
        h = model.hidden_size
        width = model.expert_ffn_hidden_size or model.ffn_hidden_size
        self.num_experts, self.top_k = model.num_experts, model.moe_top_k
        self.router = nn.Linear(h, model.num_experts, bias=False)
        expert_spec = model.replace(ffn_hidden_size=width, num_experts=0, moe_top_k=0, num_dense_layers=0,
                                    expert_ffn_hidden_size=None, num_shared_experts=0)
        self.experts = nn.ModuleDict({str(e): FeedForward(expert_spec) for e in range(model.num_experts)})
        self.shared = None
        if model.num_shared_experts:
            shared_width = model.num_shared_experts * (model.shared_expert_ffn_hidden_size or width)
            self.shared = FeedForward(expert_spec.replace(ffn_hidden_size=shared_width))
        self.group = None
        self.ep = 1
        self.first = 0  # first expert this rank owns

    def shard(self, group, ep: int, rank: int) -> None:
        """Keep experts [rank*E/ep, (rank+1)*E/ep) and run the routed path over ``group``."""
        local = self.num_experts // ep
        self.group, self.ep, self.first = group, ep, rank * local
        for e in list(self.experts.keys()):
            if not self.first <= int(e) < self.first + local:
                del self.experts[e]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        idx, weights = route(self.router(flat), self.top_k)
        routed = self._local(flat, idx, weights) if self.group is None else self._expert_parallel(flat, idx, weights)
        if self.shared is not None:
            routed = routed + self.shared(flat)
        return routed.reshape(shape)

    def _local(self, flat, idx, weights):
        out = torch.zeros_like(flat)
        for e, expert in self.experts.items():
            token, slot = (idx == int(e)).nonzero(as_tuple=True)
            if token.numel():
                out = out.index_add(0, token, expert(flat[token]) * weights[token, slot, None])
        return out

    def _expert_parallel(self, flat, idx, weights):
        T, h = flat.shape
        ep, local = self.ep, self.num_experts // self.ep
        cap = T * self.top_k  # the most copies any destination can receive from this rank
        token = torch.arange(T, device=flat.device).repeat_interleave(self.top_k)
        expert = idx.reshape(-1)
        weight = weights.reshape(-1)
        dest = expert // local
        send = flat.new_zeros(ep * cap, h + 1)
        send[:, h] = -1.0
        order, rows = [], []
        for d in range(ep):
            sel = (dest == d).nonzero(as_tuple=True)[0]
            order.append(sel)
            rows.append(torch.arange(sel.numel(), device=flat.device) + d * cap)
        sel_all, row_all = torch.cat(order), torch.cat(rows)
        payload = torch.cat([flat[token[sel_all]], (expert[sel_all] % local).to(flat.dtype)[:, None]], dim=1)
        send = send.index_copy(0, row_all, payload)
        recv = all_to_all_single(torch.empty_like(send), send, group=self.group)  # dispatch
        which = recv[:, h].detach()
        out = recv.new_zeros(ep * cap, h)
        for e, module in self.experts.items():
            rows_e = (which == int(e) - self.first).nonzero(as_tuple=True)[0]
            if rows_e.numel():
                out = out.index_copy(0, rows_e, module(recv[rows_e, :h]))
        back = all_to_all_single(torch.empty_like(out), out, group=self.group)  # combine
        mine = back[row_all] * weight[sel_all, None]
        return torch.zeros_like(flat).index_add(0, token[sel_all], mine)


def expert_parameter(name: str) -> bool:
    """True for a routed expert's parameter (reduced over the expert-data-parallel group, not dp)."""
    return ".experts." in name


def apply_expert_parallel(model: nn.Module, group, ep: int) -> None:
    """Shard every MoE FFN of ``model`` over the ep process ``group`` (this rank's index in it)."""
    rank = dist.get_rank(group)
    for module in model.modules():
        if isinstance(module, MoEFeedForward):
            module.shard(group, ep, rank)
