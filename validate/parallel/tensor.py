"""Tensor (and sequence) parallelism with ``torch.distributed.tensor.parallel``.

The plan is Megatron-LM's (Shoeybi et al. 2019, arXiv 1909.08053, section 3): q/k/v and the first FFN
matrices column-parallel, the attention output and second FFN matrix row-parallel; the token embedding
vocab-parallel and the output projection column-parallel with gathered logits. With sequence parallel
(Korthikanti et al. 2022, arXiv 2205.05198, section 4.2.2) norms run on sequence shards and the
row-parallel outputs are reduce-scattered along the sequence. Same plan as torchtitan's llama.
"""

from __future__ import annotations

from torch import nn
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)


def apply_tensor_parallel(model: nn.Module, tp_mesh: DeviceMesh, sequence_parallel: bool) -> None:
    """Shard ``model`` (a GPT or one pipeline chunk of it) over ``tp_mesh`` in place."""
    sp = sequence_parallel
    act = Shard(1) if sp else Replicate()
    root: dict[str, object] = {}
    if getattr(model, "tok_embeddings", None) is not None:
        root["tok_embeddings"] = RowwiseParallel(input_layouts=Replicate(), output_layouts=act)
        if sp and model.pos_embeddings is not None:
            root["pos_embeddings"] = RowwiseParallel(input_layouts=Replicate(), output_layouts=Shard(1))
        if sp and model.embedding_norm is not None:
            root["embedding_norm"] = SequenceParallel()
    if getattr(model, "norm", None) is not None and sp:
        root["norm"] = SequenceParallel()
    if getattr(model, "output", None) is not None:
        root["output"] = ColwiseParallel(input_layouts=act, output_layouts=Replicate(), use_local_output=True)
    if root:
        parallelize_module(model, tp_mesh, root)
    for block in model.layers.values():
        plan: dict[str, object] = {
            "attention.wq": ColwiseParallel(),
            "attention.wk": ColwiseParallel(),
            "attention.wv": ColwiseParallel(),
            "attention.wo": RowwiseParallel(output_layouts=act),
            "feed_forward.w1": ColwiseParallel(),
            "feed_forward.w2": RowwiseParallel(output_layouts=act),
        }
        if block.feed_forward.w3 is not None:
            plan["feed_forward.w3"] = ColwiseParallel()
        for name in ("attention", "feed_forward"):
            plan[name] = PrepareModuleInput(input_layouts=(act,), desired_input_layouts=(Replicate(),))
        if sp:
            plan.update({"attention_norm": SequenceParallel(), "ffn_norm": SequenceParallel()})
        parallelize_module(block, tp_mesh, plan)
