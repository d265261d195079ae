"""Build Megatron-Core's GPTModel (megatron-core 0.19.2) from exported Megatron-LM arguments on meta
tensors and count its parameters: total, and active per token (the experts a token does not use
subtracted, one expert's size read off the built module).

Runs in the framework environment (python fw_megatron_model.py SPEC OUT). Each export's argument file
goes through Megatron's own ``parse_args`` + ``validate_args`` (fw_megatron.shell_args, with the plan's
world size) and ``core_transformer_config_from_args``; the model is then built as pretrain_gpt's
builder does (megatron/training/models/gpt.py:50-88: ``get_gpt_decoder_block_spec`` for MoE models,
which reads ``--moe-layer-freq``, else ``get_gpt_layer_local_spec``), on one rank (tp = pp = ep = 1:
the count of the whole model does not depend on the layout) under ``torch.device("meta")``.

CPU-only substitutions, none of which changes a parameter:
- the local (non Transformer Engine) layer spec, ``--transformer-impl local``; kernel fusions off
  (persist_layer_norm, gradient-accumulation / bias / softmax fusions need apex or CUDA);
- MoE experts as SequentialMLP (``moe_grouped_gemm`` off: GroupedMLP holds the same E x 2 weights),
  the allgather token dispatcher (parameter-free, as alltoall; the alltoall one creates a CUDA stream
  when built, token_dispatcher.py:469); the all-to-all / computation overlap off (it needs expert
  parallelism, a layout property; parameter-free); the MTP modules off (the count is the model's, as
  ``parameter_counts``; MTP modules are priced in planner.work.mtp);
- MLA's core attention (parameter-free) replaced by a parameter-free stand-in: the local
  DotProductAttention takes no ``k_channels`` (multi_latent_attention.py:207 builds it with one; the
  Transformer Engine spec's TEDotProductAttention does);
- ``torch.cuda.current_device`` answers "cpu": YaRN RoPE of MLA asks for the CUDA device
  (yarn_rotary_pos_embedding.py:76).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import typing

import typing_extensions

typing.override = typing_extensions.override  # Python 3.12 API (fw_megatron.py)

EXTRA = ["--mock-data", "--tokenizer-type", "NullTokenizer", "--lr", "3e-4", "--train-iters", "10",
         "--transformer-impl", "local"]


def parsed_args(plan_dir: str, world_size: int):
    """Megatron's args for the export, parsed and validated at the plan's world size."""
    import megatron.training.arguments as A
    from fw_megatron import shell_args
    from megatron.core.tokenizers.utils.build_tokenizer import vocab_size_with_padding

    os.environ.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)  # only what this args file exports
    argv, env = shell_args(plan_dir)
    os.environ.update(env, WORLD_SIZE=str(world_size), RANK="0")
    sys.argv = ["pretrain_gpt.py", *argv, *EXTRA]
    with contextlib.redirect_stdout(io.StringIO()):
        args = A.parse_args()
        A.validate_args(args)
        args.padded_vocab_size = vocab_size_with_padding(args.vocab_size, args)
    return args


def one_rank_config(args):
    """Megatron's TransformerConfig of the args, on one rank, with the CPU substitutions above."""
    import megatron.training.arguments as A

    args.apply_rope_fusion = False
    with contextlib.redirect_stdout(io.StringIO()):
        config = A.core_transformer_config_from_args(args)
    return dataclasses.replace(
        config, tensor_model_parallel_size=1, pipeline_model_parallel_size=1, expert_model_parallel_size=1,
        context_parallel_size=1, virtual_pipeline_model_parallel_size=None, pipeline_model_parallel_layout=None,
        sequence_parallel=False, expert_tensor_parallel_size=1, account_for_embedding_in_pipeline_split=False,
        account_for_loss_in_pipeline_split=False, num_layers_in_first_pipeline_stage=None,
        num_layers_in_last_pipeline_stage=None, use_cpu_initialization=True, perform_initialization=False,
        persist_layer_norm=False, gradient_accumulation_fusion=False, masked_softmax_fusion=False,
        bias_activation_fusion=False, bias_dropout_fusion=False, moe_grouped_gemm=False, moe_token_dispatcher_type="allgather", fp8=None,
        overlap_moe_expert_parallel_comm=False, mtp_num_layers=None)


def build(args):
    """Megatron-Core GPTModel of the args on meta tensors."""
    import torch
    from megatron.core.models.gpt import GPTModel
    from megatron.core.models.gpt.gpt_layer_specs import get_gpt_decoder_block_spec, get_gpt_layer_local_spec

    config = one_rank_config(args)
    if config.num_moe_experts:
        spec = get_gpt_decoder_block_spec(config, use_transformer_engine=False, normalization=config.normalization)
    else:
        spec = get_gpt_layer_local_spec(None, False, config.qk_layernorm, config.multi_latent_attention,
                                        normalization=config.normalization)
    class CoreAttentionStandIn(torch.nn.Module):
        """Parameter-free stand-in for MLA's core attention (see the module docstring)."""

        def __init__(self, *args, **kwargs):
            super().__init__()

    for layer in getattr(spec, "layer_specs", [spec]):
        if config.multi_latent_attention:
            layer.submodules.self_attention.submodules.core_attention = CoreAttentionStandIn
    with torch.device("meta"), contextlib.redirect_stdout(io.StringIO()):
        return GPTModel(config=config, transformer_layer_spec=spec, vocab_size=args.padded_vocab_size,
                        max_sequence_length=args.max_position_embeddings,
                        share_embeddings_and_output_weights=not args.untie_embeddings_and_output_weights,
                        position_embedding_type=args.position_embedding_type, rotary_base=args.rotary_base)


def counts(model) -> dict:
    """Total parameters, and active ones: each MoE layer less (experts - top-k) of its experts."""
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for layer in model.decoder.layers:
        experts = getattr(layer.mlp, "experts", None)
        if experts is None:
            continue
        one = sum(p.numel() for p in experts.local_experts[0].parameters())
        inactive += (len(experts.local_experts) - layer.mlp.router.topk) * one
    moe = sum(getattr(layer.mlp, "experts", None) is not None for layer in model.decoder.layers)
    return {"total": total, "active": total - inactive, "moe_layers": moe, "layers": len(model.decoder.layers)}


def main(spec_path: str, out_path: str) -> None:
    import torch

    torch.cuda.get_device_capability = lambda *a, **k: (9, 0)  # no GPU: H100 (fw_megatron.py)
    torch.cuda.current_device = lambda: "cpu"  # YaRN RoPE's device query (module docstring)
    import megatron.training.arguments as A

    A.get_device_arch_version = lambda: 9
    store = os.path.join(os.path.dirname(os.path.abspath(out_path)), "megatron_model.store")  # no TCP port to clash
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=0, world_size=1)
    from megatron.core import parallel_state

    parallel_state.initialize_model_parallel()
    results = {}
    for item in json.load(open(spec_path)):
        try:
            args = parsed_args(item["dir"], item["world_size"])
            results[item["dir"]] = {"ok": True, **counts(build(args))}
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            results[item["dir"]] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    json.dump(results, open(out_path, "w"))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1], sys.argv[2])
