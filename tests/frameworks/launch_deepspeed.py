"""Run a DeepSpeed export (deepspeed 0.19.8, ``DS_ACCELERATOR=cpu``) for 2 training steps on CPU with
gloo, and write what the running engine holds: its ZeRO stage, data-parallel size, micro-batch and
accumulation steps, offload devices, each parameter's ZeRO-3 partition, the micro-batches it ran.

Launched by test_launch.py as ``torchrun --nproc-per-node N launch_deepspeed.py PLAN_DIR OUT_DIR``;
rank r writes OUT_DIR/rank{r}.json. ``deepspeed.initialize`` reads the exported ds_config.json
unchanged; the model is the plan's own model as torchtitan's llama3 code builds it (the torchtitan
export of the same plan, ``paraplan_model()``, with causal SDPA attention as in launch_torchtitan.py),
since DeepSpeed carries no model code and Megatron-DeepSpeed is not on PyPI. The training loop is
DeepSpeed's: ``engine(x)``, ``engine.backward(loss)``, ``engine.step()`` once per micro-batch, the
optimizer stepping at each accumulation boundary.
"""

from __future__ import annotations

import json
import os
import sys

import torch
from launch_exit import leave_together


def build_model(plan_dir: str):
    """The plan's model (torchtitan's llama3 modules), initialised on the CPU, in bf16 where asked."""
    sys.path.insert(0, plan_dir)
    from launch_torchtitan import sdpa_attention
    from paraplan_torchtitan import paraplan_model

    config = paraplan_model()
    sdpa_attention(config)
    torch.manual_seed(0)
    model = config.build()
    with torch.no_grad():
        model.init_weights()
    return model


def main(plan_dir: str, out_dir: str, steps: int = 2) -> None:
    import deepspeed

    model = build_model(plan_dir)
    vocab = model.lm_head.out_features
    calls = [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    config = os.path.join(plan_dir, "ds_config.json")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)  # the training script's (Adam, as planned)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    rank = torch.distributed.get_rank()
    micro, seq = engine.train_micro_batch_size_per_gpu(), int(os.environ["PARAPLAN_SEQ"])
    g = torch.Generator().manual_seed(rank)
    losses = []
    for _ in range(steps * engine.gradient_accumulation_steps()):
        tokens = torch.randint(0, vocab, (micro, seq + 1), generator=g)
        logits = engine(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab), tokens[:, 1:].reshape(-1))
        engine.backward(loss)
        engine.step()
        losses.append(float(loss))
    off_opt, off_param = engine.zero_offload_optimizer(), engine.zero_offload_param()
    params = {n: {"local": int(p.ds_tensor.numel()) if hasattr(p, "ds_tensor") else p.numel(),
                  "full": int(getattr(p, "ds_numel", p.numel()))} for n, p in engine.module.named_parameters()}
    state = {"rank": rank, "world": torch.distributed.get_world_size(), "dp": engine.dp_world_size,
             "zero_stage": int(engine.zero_optimization_stage()), "micro": micro,
             "accumulation": engine.gradient_accumulation_steps(), "bf16": engine.bfloat16_enabled(),
             "offload_optimizer": None if off_opt is None else str(off_opt.device.value),
             "offload_param": None if off_param is None else str(off_param.device.value),
             "global_steps": engine.global_steps, "forwards": calls[0], "losses": losses, "params": params}
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(state, f)
    leave_together()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1], sys.argv[2])
