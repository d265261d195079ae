"""How many parameter tensors one GPU's optimizer steps: what a per-tensor optimizer loop pays for in host
time (recipe ``optimizer_loop_sync``: Composer's DecoupledAdamW reads each tensor's step count with
``.item()``, one device sync per tensor, so the host launches of the next tensor's kernels are not hidden).

FSDP1 with ``use_orig_params=True`` (Composer's default, ``composer/trainer/dist_strategy.py``) flattens each
wrapped unit's tensors in order and gives every rank one contiguous 1/N slice of the flat parameter; a rank
steps only the original tensors its slice overlaps (the others have no local gradient and the loop skips
them). The step ends at the next collective, so the rank with the most tensors sets the time.
"""

from __future__ import annotations

from collections import Counter
from itertools import accumulate

from ..specs import Layout, ModelSpec, TrainingSpec
from .ops import Collective
from .zero3_tensors import layer_modules, norm_tensors, root_modules


def tensors_on_busiest_rank(sizes: tuple[float, ...], ranks: int) -> int:
    """Tensors (elements ``sizes``, flattened in order) that overlap the fullest of ``ranks`` equal contiguous
    slices: 1 + the most tensor boundaries inside one slice (all of them when unsharded)."""
    if ranks <= 1 or len(sizes) <= 1:
        return len(sizes)
    width = sum(sizes) / ranks
    inside = Counter(int(edge // width) for edge in list(accumulate(sizes))[:-1] if edge % width)
    return min(len(sizes), 1 + max(inside.values(), default=0))


def optimizer_tensor_count(model: ModelSpec, layout: Layout, layers: int, first: bool, last: bool,
                           shard_ranks: int) -> int:
    """Parameter tensors the busiest GPU of a stage of ``layers`` layers steps, its units (one per layer, one
    for the root modules of the first / last stage) sharded over ``shard_ranks`` (1: every tensor)."""
    per_layer = tuple(t for module in layer_modules(model, layout) for t in module)
    root = tuple(t for module in root_modules(model, layout, first, last) for t in module)
    count = layers * tensors_on_busiest_rank(per_layer, shard_ranks)
    return count + (tensors_on_busiest_rank(root, shard_ranks) if root else 0)


def sp_norm_grad_allreduce(model: ModelSpec, training: TrainingSpec, layout: Layout, layers: int, first: bool,
                           last: bool) -> tuple[Collective, ...]:
    """The all-reduces over tp of the optimizer step that redistribute the Partial gradients of the sequence-
    parallel norms (``recipe.sp_norm_grad_reads`` per tensor: torch's Adam reads each gradient in ``lerp_`` and
    twice in ``addcmul_(grad, grad)``): two norms a layer, the final norm on the last stage and the embedding norm
    on the first, each of its tensors (LayerNorm weight and bias, or RMSNorm weight) h elements in the
    gradient dtype. None without sequence parallelism or when the recipe reduces them otherwise."""
    reads = training.recipe_spec.sp_norm_grad_reads
    if layout.tp <= 1 or not layout.sequence_parallel or not reads:
        return ()
    per_norm = norm_tensors(model)
    norms = 2 * layers + int(last) + int(first and bool(model.embedding_norm))
    tensors = norms * len(per_norm)
    grad_bytes = training.recipe_spec.grad_bytes
    calls = int(round(tensors * reads))
    return (Collective("sp-norm-grad-redistribute", "all-reduce", "tp", calls * per_norm[0] * grad_bytes, "step",
                       calls=calls),)
