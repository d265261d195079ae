"""The dense feed-forward block of the validator's model (validate/model.py), also each routed and shared
expert of its MoE layer (validate/moe.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from planner.specs import ModelSpec


class FeedForward(nn.Module):
    """GELU MLP (two matrices) or SwiGLU (three matrices, Shazeer 2020 arXiv 2002.05202)."""

    def __init__(self, model: ModelSpec):
        super().__init__()
        h, f, bias = model.hidden_size, model.ffn_hidden_size, model.linear_bias
        self.kind = model.ffn_kind
        self.w1 = nn.Linear(h, f, bias=bias)
        self.w2 = nn.Linear(f, h, bias=bias)
        self.w3 = nn.Linear(h, f, bias=bias) if self.kind == "swiglu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "swiglu":
            return self.w2(F.silu(self.w1(x)) * self.w3(x))
        act = F.gelu if self.kind == "gelu" else F.relu
        return self.w2(act(self.w1(x)))
