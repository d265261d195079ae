"""ZeRO-3 collectives as DeepSpeed issues them per module (recipe ``zero3``, planner.specs.recipe.Zero3Rules):
which parameter tensors are gathered per use, how many calls that is, the copies around each call, and
which gathered weights a module keeps from one use to the next. Elements and bytes per GPU.

- Per parameter tensor (``gather_unit: tensor``): DeepSpeed 2021 (v0.3.13 partition_parameters.py
  ``_all_gather`` -> ``_allgather_param``) all-gathers each non-persistent parameter of a module with its own
  ``torch.distributed.all_gather`` and reduce-scatters each parameter's gradient with its own
  ``reduce_scatter`` (``_reduce_scatter_gradients`` -> ``_reduce_scatter_gradient``).
- Persistent tensors (``persistence_threshold_numel``, DeepSpeed ``stage3_param_persistence_threshold``,
  default 1e5 in stage3.py): never freed after use (``release_sub_module`` skips ``ds_persist``), partitioned
  after backward (``_partition_all_parameters``) and gathered once per step after the optimizer
  (``_post_step``: one coalesced ``_allgather_params``) — their gradients are still reduce-scattered per tensor.
- Kept between uses (``max_reuse_distance_numel``, ``stage3_max_reuse_distance``): a module's weights stay
  gathered when the parameters its hooks use before its next use number fewer (``_keep_for_later``; the
  current releases' ``__params_to_release``). With full recompute the replayed forward gathers every module
  again (its hooks fire in the replay), and its backward follows the replay of the modules after it and their
  own backward: 2 x the elements of the later modules of the layer lie in between, so only the last modules
  of a layer can stay gathered for backward.
- Tensor-list calls (``rank_copies``): DeepSpeed 2021 builds each call's list of per-rank tensors in Python
  (``_allgather_param``: a ``narrow`` per rank; ``_reduce_scatter_gradient``: a ``view`` and a ``narrow`` per
  rank), and PyTorch 1.8 ProcessGroupNCCL ``allgather`` / ``reduce_scatter`` with such a list stage the buffer
  in a flat tensor (``flatten_for_scatter_gather``) and copy each rank's chunk with its own ``copy_`` (one
  kernel per rank per call; pytorch/pytorch#33924 and #57769 name the extra device-to-device copies); each
  gather's buffer is also zero-filled (``torch.zeros`` in ``_allgather_param``).
- Python unflatten (``persistent_python_unflatten``): ``_allgather_params`` copies each gathered tensor out
  of each rank's partition in a Python loop, per (tensor, rank holding part of it) a ``narrow``, a ``view``, a
  ``narrow`` and an eager ``copy_``.

Models with MLA or routed experts are split into their attention and FFN blocks (one tensor each).
"""

from __future__ import annotations

import math

from ..specs import Layout, ModelSpec, TrainingSpec
from .context import shard_group_size
from .memory import grad_reduce_bytes_per_param, param_gather_bytes_per_param
from .ops import Collective
from .params import layer_parameter_counts

Module = tuple[float, ...]  # the parameter tensors of one module, elements each


def per_tensor(training: TrainingSpec) -> bool:
    """Whether the recipe issues ZeRO-3 collectives per parameter tensor."""
    return training.recipe_spec.zero3.gather_unit == "tensor"


def norm_tensors(model: ModelSpec) -> Module:
    """A norm's tensors: LayerNorm weight and bias, or the RMSNorm weight (h elements each)."""
    h = float(model.hidden_size)
    return (h, h) if model.norm_kind == "layernorm" else (h,)


def layer_modules(model: ModelSpec, layout: Layout) -> tuple[Module, ...]:
    """Parameter tensors of one layer on one TP rank, by module in forward order: the norm, the attention
    projections (GPT-style fused QKV, or q, k, v for gated-FFN models), the output projection, the second norm
    and the FFN Linears, each weight with its bias (row-parallel biases are whole on every rank)."""
    h, t = model.hidden_size, layout.tp
    norm = norm_tensors(model)
    if model.attention_kind == "mla" or model.is_moe:
        counts = layer_parameter_counts(model)
        return norm, (counts.attention / t,), norm, (counts.mlp / t,)
    q, kv, f = model.num_heads * model.head_size, model.kv_heads * model.head_size, model.ffn_hidden_size
    bias, qkv_bias = model.linear_bias, model.linear_bias or model.qkv_bias

    def linear(n_in: float, n_out: float, bias_width: float) -> Module:
        return (n_in * n_out,) + ((float(bias_width),) if bias_width else ())

    if model.gated_ffn:  # separate q, k, v (Hugging Face / torchtitan Llama), gate, up, down
        attn = (linear(h, q / t, qkv_bias * q / t), linear(h, kv / t, qkv_bias * kv / t),
                linear(h, kv / t, qkv_bias * kv / t))
        ffn = (linear(h, f / t, bias * f / t), linear(h, f / t, bias * f / t), linear(f / t, h, bias * h))
    else:  # Megatron GPT: fused QKV, fc1, fc2
        attn = (linear(h, (q + 2 * kv) / t, qkv_bias * (q + 2 * kv) / t),)
        ffn = (linear(h, f / t, bias * f / t), linear(f / t, h, bias * h))
    return (norm, *attn, linear(q / t, h, bias * h), norm, *ffn)


def root_modules(model: ModelSpec, layout: Layout, first: bool, last: bool) -> tuple[Module, ...]:
    """Parameter tensors outside the layers on a stage: the token (and learned position) embedding and the
    embedding norm on the first stage; the final norm and an output projection on the last (a tied one on a
    stage that also holds the embedding is the embedding's own tensor, gathered with it)."""
    h, t = model.hidden_size, layout.tp
    out: list[Module] = []
    if first:
        out.append((model.vocab_size * h / t,))
        if model.position_kind == "learned":
            out.append((float(model.max_position_embeddings * h),))
        if model.embedding_norm:
            out.append(norm_tensors(model))
    if last:
        out.append(norm_tensors(model))
        if not model.tied_embeddings or not first:
            out.append((model.vocab_size * h / t,))
    return tuple(out)


def kept_tensors(modules: tuple[Module, ...], threshold: float, max_reuse: float) -> tuple[float, int]:
    """(elements, tensors) of the non-persistent tensors that stay gathered from a module's replayed forward to
    its backward: walking back from the layer's last module, 2 x the elements of the modules after it lie in
    between; kept while that is below ``max_reuse``."""
    after, numel, count = 0.0, 0.0, 0
    for module in reversed(modules):
        if 2 * after >= max_reuse:
            break
        big = [x for x in module if x >= threshold]
        numel, count = numel + sum(big), count + len(big)
        after += sum(module)
    return numel, count


def rank_copies(numel: float, n: int) -> int:
    """Ranks whose partition of a ``numel``-element tensor holds elements: DeepSpeed pads a tensor to a multiple
    of the n ranks (``_aligned_size``), so each rank holds ceil(numel / n) and the last ones may hold padding."""
    part = math.ceil(numel / n)
    return math.ceil(numel / part) if part else 0


def tensor_dp_comm(model: ModelSpec, training: TrainingSpec, layout: Layout, layers: int, first: bool,
                   last: bool, axis: str) -> tuple[tuple[Collective, ...], tuple[Collective, ...]]:
    """(per micro-batch, per step) ZeRO-3 collectives of a stage of ``layers`` layers over ``axis`` issued per
    parameter tensor (module docstring): the forward gathers, with full recompute the replay's gathers, the
    backward gathers of what was freed, one gradient reduce-scatter per tensor; once per step the gather of the
    persistent tensors."""
    rules = training.recipe_spec.zero3
    thr = rules.persistence_threshold_numel
    gather_b, reduce_b = param_gather_bytes_per_param(training), grad_reduce_bytes_per_param(training)
    n = shard_group_size(layout)
    layer = layer_modules(model, layout)
    root = root_modules(model, layout, first, last)
    layer_big = [x for m in layer for x in m if x >= thr]
    root_big = [x for m in root for x in m if x >= thr]
    fwd_numel, fwd_calls = layers * sum(layer_big) + sum(root_big), layers * len(layer_big) + len(root_big)
    kept_numel, kept_calls = kept_tensors(layer, thr, rules.max_reuse_distance_numel)
    replay = training.recompute == "full" and rules.recompute_gathers
    kept_layers = layers if replay else min(1, layers)  # without a replay only the last layer's end stays
    copies = n if rules.rank_copies else 0

    def gather(name: str, numel: float, calls: int, phase: str) -> Collective:
        nbytes = numel * gather_b  # zero-filled buffer (1x) and the staged copy (read + write)
        return Collective(name, "all-gather", axis, nbytes, phase, max(1, calls), staging_bytes=3 * nbytes if copies else 0.0,
                          staging_kernels=copies + 1 if copies else 0, staging_views=copies)

    per_mb = [gather("params.allgather.fwd", fwd_numel, fwd_calls, "fwd")]
    if replay:
        per_mb.append(gather("params.allgather.recompute", layers * sum(layer_big), layers * len(layer_big),
                             "recompute"))
    bwd_calls = fwd_calls - kept_layers * kept_calls
    if bwd_calls > 0:
        per_mb.append(gather("params.allgather.bwd", fwd_numel - kept_layers * kept_numel, bwd_calls, "bwd_input"))
    all_tensors = [x for m in layer for x in m]
    all_root = [x for m in root for x in m]
    grad_bytes = (layers * sum(all_tensors) + sum(all_root)) * reduce_b
    per_mb.append(Collective("grads.reduce_scatter", "reduce-scatter", axis, grad_bytes, "bwd_weight",
                             layers * len(all_tensors) + len(all_root),
                             staging_bytes=2 * grad_bytes if copies else 0.0, staging_kernels=copies,
                             staging_views=2 * copies))
    small_layer = [x for x in all_tensors if x < thr]
    small_root = [x for x in all_root if x < thr]
    if not (layers and small_layer) and not small_root:
        return tuple(per_mb), ()
    nbytes = (layers * sum(small_layer) + sum(small_root)) * gather_b
    unflatten = 0
    if rules.persistent_python_unflatten:
        unflatten = layers * sum(rank_copies(x, n) for x in small_layer) + sum(rank_copies(x, n) for x in small_root)
    step = Collective("params.persistent_allgather", "all-gather", axis, nbytes, "fwd",
                      staging_bytes=(2 + (2 if copies else 0)) * nbytes, staging_kernels=unflatten + copies,
                      staging_views=3 * unflatten, staging_host=rules.persistent_python_unflatten)
    return tuple(per_mb), (step,)
