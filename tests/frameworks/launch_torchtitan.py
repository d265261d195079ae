"""Run a torchtitan export (torchtitan 0.3.0) for 2 training steps on CPU with gloo, and write what the
running job holds: its mesh, each parameter's local shard, the micro-batches each model part ran, the
pipeline stages and their layers, and which layers are activation-checkpointed.

Launched by test_launch.py as ``torchrun --nproc-per-node N launch_torchtitan.py PLAN_DIR OUT_DIR``
in the framework environment; rank r writes OUT_DIR/rank{r}.json. The exported module is loaded by
torchtitan's own ConfigManager and trained by torchtitan's own Trainer. What is changed for a CPU
machine with torch 2.13, and why (nothing here changes the layout, the batch or the model):

- device: torchtitan picks CUDA when no accelerator is found (torchtitan/tools/utils.py:55); the
  device module is answered by a CPU stand-in (no memory statistics), the device is ``cpu``, and
  torchtitan then takes gloo, the backend torch maps to ``cpu`` (distributed/utils.py:512-520);
- data: random tokens, one document per sequence (positions 0..seq-1), instead of the c4 dataset and
  a Hugging Face tokenizer the recipe names (no network, no assets);
- attention: FlexAttention has no backward on CPU (torch/nn/attention/flex_attention.py
  ``_validate_device``); each layer's inner attention is torchtitan's ScaledDotProductAttention,
  causal, which on one-document sequences is what the block-causal flex mask computes;
- gradient reduction: FSDP2 reduce-scatters with PREMUL_SUM(1.0) once torchtitan disables its gradient
  division (distributed/fsdp.py:27-41); gloo has no PREMUL_SUM, so each FSDP module also sets
  ``set_force_sum_reduction_for_comms`` (a SUM, then the same division by 1);
- torch 2.13 lacks ``torch.distributed.set_timeout`` (trainer.py:1062 changes the collective timeout
  after the first step): a no-op here;
- pipelining: torchtitan 0.3.0 hands the schedule pre-split micro-batches,
  ``step(arg_mbs=, kwarg_mbs=, target_mbs=)`` (trainer.py:856), a later torch's API; torch 2.13's
  ``step`` splits a whole batch itself. The adapter below passes the micro-batches to torch 2.13's own
  ``_step_microbatches`` after the per-step reset ``step`` does (schedules.py:740-790, 1934-1999).
"""

from __future__ import annotations

import json
import os
import sys
import types
from dataclasses import dataclass

import torch
from launch_exit import leave_together


def cpu_device() -> None:
    """torchtitan's device to the CPU (see the module docstring); before torchtitan's other imports."""
    import torchtitan.tools.utils as utils

    utils.device_type = "cpu"
    utils.device_module = types.SimpleNamespace(
        set_device=lambda *a: None, current_device=lambda: 0, device_count=lambda: 1,
        synchronize=lambda *a: None, get_device_name=lambda *a: "cpu", empty_cache=lambda: None,
        get_device_properties=lambda *a: types.SimpleNamespace(total_memory=1 << 40),
        reset_peak_memory_stats=lambda *a: None, memory_stats=lambda *a: {})
    utils.get_local_device = lambda: torch.device("cpu")


def gloo_sum_reduction() -> None:
    """FSDP2 modules reduce with SUM (gloo has no PREMUL_SUM)."""
    import torchtitan.distributed.fsdp as fsdp

    disable = fsdp.disable_fsdp_gradient_division

    def disable_and_sum(model):
        disable(model)
        for module in model.modules():
            if isinstance(module, fsdp.FSDPModule):
                module.set_force_sum_reduction_for_comms(True)

    fsdp.disable_fsdp_gradient_division = disable_and_sum
    if not hasattr(torch.distributed, "set_timeout"):
        torch.distributed.set_timeout = lambda timeout, group=None: None


def microbatch_step() -> None:
    """torch 2.13 schedules accept pre-split micro-batches (see the module docstring)."""
    from torch.distributed.pipelining import schedules

    def adapt(whole_batch_step):
        def step(self, *args, arg_mbs=None, kwarg_mbs=None, target_mbs=None, losses=None,
                 return_outputs=True, loss_kwargs=None, **kwargs):
            if arg_mbs is None and kwarg_mbs is None and target_mbs is None:
                return whole_batch_step(self, *args, losses=losses, return_outputs=return_outputs,
                                        loss_kwargs=loss_kwargs, **kwargs)
            for stage in getattr(self, "_stages", None) or [self._stage]:
                stage.has_backward = self._has_backward
                stage.clear_runtime_states()
            self._step_microbatches(arg_mbs, kwarg_mbs, target_mbs, losses, return_outputs,
                                    loss_kwargs=loss_kwargs)
        return step

    for cls in (schedules.PipelineScheduleSingle, schedules.PipelineScheduleMulti):
        cls.step = adapt(cls.step)


def random_token_data():
    """A tokenizer stand-in and a dataloader of random tokens (torchtitan Configurables)."""
    from torch.utils.data import IterableDataset
    from torchtitan.components.dataloader import ParallelAwareDataloader
    from torchtitan.components.tokenizer import BaseTokenizer

    class NoTokenizer(BaseTokenizer):
        @dataclass(kw_only=True, slots=True)
        class Config(BaseTokenizer.Config):
            pass

        def __init__(self, config=None, tokenizer_path=None):
            super().__init__()

        def encode(self, *args, **kwargs):
            raise NotImplementedError

        def decode(self, *args, **kwargs):
            raise NotImplementedError

        def get_vocab_size(self) -> int:
            return 0

    class Tokens(IterableDataset):
        def __init__(self, vocab: int, seq_len: int, seed: int):
            self.vocab, self.seq_len, self.seed = vocab, seq_len, seed

        def __iter__(self):
            g = torch.Generator().manual_seed(self.seed)
            while True:
                t = torch.randint(0, self.vocab, (self.seq_len + 1,), generator=g)
                yield {"input": t[:-1], "positions": torch.arange(self.seq_len)}, t[1:]

    class RandomTokens(ParallelAwareDataloader):
        @dataclass(kw_only=True, slots=True)
        class Config(ParallelAwareDataloader.Config):
            vocab_size: int = 0

        def __init__(self, config, *, dp_world_size, dp_rank, tokenizer, seq_len, local_batch_size,
                     snapshot_every_n_steps=None, **kwargs):
            super().__init__(Tokens(config.vocab_size, seq_len, dp_rank), dp_rank=dp_rank,
                             dp_world_size=dp_world_size, batch_size=local_batch_size)

    return NoTokenizer, RandomTokens


def sdpa_attention(model_config) -> None:
    """Each FlexAttention config of the model becomes a causal ScaledDotProductAttention config."""
    from torchtitan.models.common.attention import FlexAttention, ScaledDotProductAttention

    for _, _, parent, attr in list(model_config.traverse(FlexAttention.Config)):
        if isinstance(parent, list):
            parent[attr] = ScaledDotProductAttention.Config()
        elif parent is not None:
            setattr(parent, attr, ScaledDotProductAttention.Config())


def count_forwards(trainer) -> list[list[int]]:
    """Forward calls of each model part in each training step (one per micro-batch), counted by a
    forward pre-hook. (A pipeline stage's first step adds one shape-inference forward.)"""
    parts = trainer.model_parts
    calls, per_step = [0] * len(parts), []
    for i, part in enumerate(parts):
        part.register_forward_pre_hook(lambda module, args, i=i: calls.__setitem__(i, calls[i] + 1))
    train_step = trainer.train_step

    def counted_step(*args, **kwargs):
        calls[:] = [0] * len(parts)
        train_step(*args, **kwargs)
        per_step.append(list(calls))

    trainer.train_step = counted_step
    return per_step


def job_state(trainer, per_step: list[list[int]]) -> dict:
    """What the running job holds, read from its own objects."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import CheckpointWrapper
    from torch.distributed.tensor import DTensor

    dims = trainer.parallel_dims
    parts = []
    stages = getattr(trainer, "pp_schedule", None)
    stage_ids = [s.stage_index for s in getattr(stages, "_stages", [getattr(stages, "_stage", None)])] \
        if dims.pp_enabled else [0]
    for i, part in enumerate(trainer.model_parts):
        layers = part.layers
        names = [f"layers.{n}" for n in (layers.keys() if hasattr(layers, "keys") else range(len(layers)))]
        blocks = list(layers.values()) if hasattr(layers, "values") else list(layers)
        shards = {}
        for name, p in part.named_parameters():
            local = p.to_local() if isinstance(p, DTensor) else p
            shards[name] = {"local": local.numel(), "full": p.numel(),
                            "placements": [str(x) for x in p.placements] if isinstance(p, DTensor) else []}
        parts.append({"stage": stage_ids[i], "layers": names,
                      "has_embedding": getattr(part, "tok_embeddings", None) is not None,
                      "has_head": getattr(part, "lm_head", None) is not None,
                      "checkpointed": [n for n, b in zip(names, blocks) if isinstance(b, CheckpointWrapper)],
                      "forwards_last_step": per_step[-1][i], "params": shards})
    return {"rank": torch.distributed.get_rank(), "world": torch.distributed.get_world_size(),
            "mesh": {"dp_replicate": dims.dp_replicate, "dp_shard": dims.dp_shard, "tp": dims.tp,
                     "pp": dims.pp, "cp": dims.cp},
            "gradient_accumulation_steps": trainer.gradient_accumulation_steps,
            "pipeline_microbatches": trainer.num_pipeline_parallel_microbatches if dims.pp_enabled else None,
            "steps": trainer.step, "parts": parts}


def main(plan_dir: str, out_dir: str, steps: int = 2) -> None:
    cpu_device()
    gloo_sum_reduction()
    microbatch_step()
    from torchtitan.config.manager import ConfigManager

    no_tokenizer, random_tokens = random_token_data()
    sys.path.insert(0, plan_dir)
    cfg = ConfigManager().parse_args(["--module", "paraplan_torchtitan", "--config", "paraplan_plan"])
    cfg.training.steps = steps
    cfg.tokenizer = no_tokenizer.Config()
    cfg.dataloader = random_tokens.Config(vocab_size=cfg.model_spec.model.vocab_size)
    cfg.validator.enable = False
    cfg.checkpoint.enable = False
    cfg.dump_folder = os.path.join(out_dir, "dump")
    sdpa_attention(cfg.model_spec.model)
    trainer = cfg.build()
    per_step = count_forwards(trainer)
    trainer.train()
    state = job_state(trainer, per_step)
    trainer.close()
    with open(os.path.join(out_dir, f"rank{state['rank']}.json"), "w") as f:
        json.dump(state, f)
    leave_together()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
