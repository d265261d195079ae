"""Expert parallelism for a validation job: experts split over the ep ranks (validate.moe), and the
data-parallel gradient reduction split Megatron-Core's way: the non-expert gradients all-reduced over
dp in one flattened bucket (one call, as the planner prices a bucketed reduction), the experts'
gradients over the expert-data-parallel group dp/ep (empty when ep = dp, the layouts the validator
runs) — every expert's gradient already sums the token copies of all ranks, so it is only scaled by
1/dp like the loss."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from ..moe import apply_expert_parallel, expert_parameter


class ExpertDataParallel(nn.Module):
    """Wraps an expert-sharded model; ``finish_gradients`` after the last backward of a step."""

    def __init__(self, module: nn.Module, dp_group, dp: int, ep: int):
        super().__init__()
        self.module = module
        self.dp_group, self.dp = dp_group, dp
        apply_expert_parallel(module, dp_group, ep)  # the validator runs ep == dp: the ep group is dp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def finish_gradients(self) -> None:
        """Average the non-expert gradients over dp (one all-reduce); scale the experts' by 1/dp."""
        dense = [p for n, p in self.module.named_parameters() if p.grad is not None and not expert_parameter(n)]
        if dense:
            flat = torch.cat([p.grad.reshape(-1) for p in dense])
            dist.all_reduce(flat, group=self.dp_group)
            flat /= self.dp
            offset = 0
            for p in dense:
                n = p.grad.numel()
                p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
                offset += n
        for n, p in self.module.named_parameters():
            if p.grad is not None and expert_parameter(n):
                p.grad /= self.dp
