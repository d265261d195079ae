"""The memory-bound kernels a framework recipe runs around the GEMMs (hwprofiles/recipes/*.yaml):
norms (fused 16-bit, or eager fp32 under autocast, or a hand-written RMSNorm), autocast casts of
weights and Linear inputs, residual adds, RoPE, activations, q/k/v copies, bias-gradient reductions,
the logits/loss path. Bytes count every tensor read and written once (the convention of
planner/pricing/kernel_fit.py, which fits each kernel class's bandwidth); shapes as in layer.py.

Sources per rule are in the recipe files; the eager PyTorch behaviour follows the autocast op lists
(https://pytorch.org/docs/stable/amp.html) and autograd's derivative formulas
(tools/autograd/derivatives.yaml in PyTorch).

Kernel classes: PyTorch's own eager kernels (layer_norm, gelu, dropout, softmax, ...) carry the class
the H200 microbenchmark measured them as; a framework's fused kernels (apex, Transformer Engine,
Megatron jit fusions) are class ``fused``, which no shipped profile measures, so they run at the
copy bandwidth.
"""

from __future__ import annotations

from ..specs import ModelSpec
from ..specs.recipe import RecipeSpec
from .ops import MemoryOp

ACT_BYTES = 2  # 16-bit activations
FP32 = 4


def residual_bytes(recipe: RecipeSpec) -> int:
    """Bytes per element of the residual stream: fp32 under eager autocast (fp32 embeddings and the
    fp32 + bf16 add promote), else 16-bit."""
    return FP32 if recipe.autocast else ACT_BYTES


def norm_ops(name: str, tokens: int, h: int, model: ModelSpec, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """A pre-norm over ``tokens`` x ``h`` and, under autocast, the bf16 cast of its output that the
    next Linear reads. Fused: one 16-bit kernel (2 B in, 2 B out; backward reads x and dy, writes dx).
    Native: PyTorch's layer_norm / rms_norm kernel, on fp32 under autocast (autocast's fp32 list).
    Hand-written RMSNorm (x.float(), pow, mean, rsqrt, mul, type_as, mul by weight): 7 kernels, 36 B per
    element forward, 2x backward."""
    n = tokens * h
    r = residual_bytes(recipe)
    if recipe.norm_kernel == "fused":
        return [MemoryOp(name, n * 2 * ACT_BYTES, phase, "fused", 1, 1.5, "fused")]
    if model.norm_kind == "rmsnorm" and recipe.norm_kernel == "handwritten":
        per = (r + FP32) + 2 * FP32 + FP32 + 2 * FP32 + (FP32 + r) + 2 * ACT_BYTES
        ops = [MemoryOp(name, n * per, phase, "activation_fwd", 7, 2.0, "activation_bwd")]
    else:
        ops = [MemoryOp(name, n * 2 * FP32 if recipe.autocast else n * 2 * r, phase, "norm_fwd", 1, 1.5,
                        "norm_bwd")]
    if recipe.autocast:  # cast of the fp32 norm output for the Linear; backward casts the grad back
        ops.append(MemoryOp(name + ".cast", n * (FP32 + ACT_BYTES), phase, "cast", 1, 1.0, "cast"))
    return ops


def residual_ops(name: str, tokens: int, h: int, recipe: RecipeSpec, dropout: bool, phase: str) -> list[MemoryOp]:
    """Residual add of a block's output (with dropout when present). Fused bias-dropout-add: read
    x and the branch, write x (+ a 1-byte mask). Eager: a separate dropout kernel, then the add; under
    autocast x is fp32 and the branch bf16; backward casts the branch grad to bf16 and accumulates the
    residual grad (read 2, write 1)."""
    n = tokens * h
    r = residual_bytes(recipe)
    if recipe.bias_activation_fused or not recipe.autocast and not dropout:
        drop = 1 if dropout else 0
        return [MemoryOp(name, n * (2 * r + ACT_BYTES + drop), phase, "add", 1, 2.0, "add")]
    ops = []
    if dropout:
        ops.append(MemoryOp(name + ".dropout", n * (2 * ACT_BYTES + 1), phase, "dropout_fwd", 1, 1.0, "dropout_bwd"))
    fwd = n * (2 * r + ACT_BYTES)
    bwd = n * ((FP32 + ACT_BYTES) if recipe.autocast else 0) + n * 3 * r
    ops.append(MemoryOp(name, fwd, phase, "add", 2 if recipe.autocast else 1, bwd / fwd, "add"))
    return ops


def rope_ops(tokens: int, q_width: int, kv_width: int, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """Rotary embedding of q and k: fused, one read and write of each; eager (float cast, complex
    mul, type_as back): 3 kernels per tensor, 20 B per element."""
    n = tokens * (q_width + kv_width)
    if recipe.inductor_fused:  # one generated kernel over q and k
        return [MemoryOp("rope", n * 2 * ACT_BYTES, phase, "activation_fwd", 1, 1.5, "activation_bwd")]
    if recipe.rope_fused:
        return [MemoryOp("rope", n * 2 * ACT_BYTES, phase, "fused", 1, 1.5, "fused")]
    per = (ACT_BYTES + FP32) + 3 * FP32 + (FP32 + ACT_BYTES)
    return [MemoryOp("rope", n * per, phase, "activation_fwd", 6, 1.0, "activation_bwd")]


def activation_ops(tokens: int, ffn: int, gated: bool, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """FFN activation over ``tokens`` x ``ffn``. GeLU: read and write (backward reads x and dy,
    writes dx). SwiGLU fused: read the two halves, write one (backward 10 B); eager silu and mul on
    the halves of one fc1 output: 2 kernels at the measured eager-SwiGLU class; on separate gate and
    up tensors (``recipe.swiglu_split_gate``): a SiLU kernel (activation class) and a mul (add class)."""
    n = tokens * ffn
    if recipe.inductor_fused:  # one generated kernel: read the input(s), write the output (backward 1.5x / 5/3 x)
        per = 3 if gated else 2
        return [MemoryOp("activation", n * per * ACT_BYTES, phase, "activation_fwd", 1, (5 / 3) if gated else 1.5,
                         "activation_bwd")]
    if recipe.bias_activation_fused:  # one fused kernel (Megatron bias_gelu / TE swiglu)
        per = 3 if gated else 2
        return [MemoryOp("activation", n * per * ACT_BYTES, phase, "fused", 1, (5 / 3) if gated else 1.5, "fused")]
    if not gated:
        return [MemoryOp("activation", n * 2 * ACT_BYTES, phase, "activation_fwd", 1, 1.5, "activation_bwd")]
    if recipe.swiglu_split_gate:  # silu(gate) then mul(., up) on contiguous tensors; backward: silu_backward
        # (read x, dy; write dx) and the mul's two gradients (read 2, write 1 each)
        return [MemoryOp("activation.silu", n * 2 * ACT_BYTES, phase, "activation_fwd", 1, 1.5, "activation_bwd"),
                MemoryOp("activation.mul", n * 3 * ACT_BYTES, phase, "add", 1, 2.0, "add")]
    return [MemoryOp("activation", n * 3 * ACT_BYTES, phase, "swiglu_fwd", 2, 5 / 3, "swiglu_bwd")]


def attention_copy_ops(tokens: int, q_width: int, kv_width: int, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """Eager head-layout copies: the attention output's transpose(1, 2).contiguous() (read + write)
    and, in backward, the cat of dq, dk, dv into the fused qkv gradient."""
    if not recipe.qkv_split_copies:
        return []
    fwd = tokens * q_width * 2 * ACT_BYTES
    bwd = tokens * (q_width + 2 * kv_width) * 2 * ACT_BYTES + fwd
    return [MemoryOp("attn_out.contiguous", fwd, phase, "copy", 1, bwd / fwd, "copy")]


def repeat_kv_ops(tokens: int, q_width: int, kv_width: int, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """Grouped-query K and V repeated to every query head before the kernel (torchtitan 2024 / Hugging
    Face ``repeat_kv``: unsqueeze, expand, reshape = a copy each): read the grouped tensor, write the
    repeated one; backward sums each repeated gradient back over its group (read repeated, write grouped)."""
    if not recipe.gqa_repeat_kv or q_width == kv_width:
        return []
    return [MemoryOp("repeat_kv", 2 * tokens * (kv_width + q_width) * ACT_BYTES, phase, "copy", 2, 1.0, "reduce")]


def weight_cast_ops(linear_params: float, tensors: int, recipe: RecipeSpec, phase: str) -> list[MemoryOp]:
    """Autocast casts of the fp32 Linear weights and biases to bf16 at every forward and every
    recompute (read 4, write 2 per parameter, one kernel per tensor); backward casts each bf16 weight
    gradient to the fp32 .grad (read 2, write 4)."""
    if not recipe.autocast or linear_params <= 0:
        return []
    return [MemoryOp("weight_cast", linear_params * (FP32 + ACT_BYTES), phase, "cast", tensors, 1.0, "cast")]


def bias_grad_ops(tokens: int, out_widths: list[int], recipe: RecipeSpec) -> list[MemoryOp]:
    """Bias gradients as separate reductions over the tokens (read the output grad once each)."""
    if not recipe.bias_grad_separate or not out_widths:
        return []
    return [MemoryOp("bias_grad", tokens * sum(out_widths) * ACT_BYTES, "bwd_weight", "reduce", len(out_widths),
                     0.0)]


def loss_ops(tokens: int, vocab: int, recipe: RecipeSpec) -> list[MemoryOp]:
    """Cross-entropy over ``tokens`` x ``vocab`` logits. fp32 eager path (logits.float(),
    log_softmax, nll_loss): forward 6 + 8 B per logit; backward nll grad (write 4), log_softmax
    backward (read 8, write 4), cast to bf16 (read 4, write 2) = 22 B. Fused / Megatron
    vocab-parallel path: read the 16-bit logits, write and read the fp32 softmax (10 B), backward 2x."""
    n = tokens * vocab
    if recipe.cross_entropy_fused or not recipe.logits_fp32:
        return [MemoryOp("cross_entropy", n * 10, "fwd", "loss", 1, 2.0, "loss")]
    return [MemoryOp("cross_entropy", n * 14, "fwd", "loss", 3, 22 / 14, "loss")]


def loss_peak_bytes(tokens: int, vocab: int, recipe: RecipeSpec, vocab_parallel: bool = False) -> float:
    """Loss temporaries at their peak (the start of backward), bytes. fp32 eager path: the saved
    log_softmax output, the nll gradient and the log_softmax input gradient, 12 B per logit (the
    H200 microbenchmark's loss rows measure 12.0 x tokens x vocab above the inputs:
    hwprofiles/data/h200_microbench.json ``extra_peak_bytes_fp32``). DTensor loss_parallel over vocabulary
    shards (``vocab_parallel`` and ``recipe.loss_parallel_dtensor``): its backward
    (torch/distributed/tensor/parallel/loss.py ``_nll_loss_and_log_softmax_backward``) holds the saved
    log_softmax output, the scattered one-hot gradient, exp(output) and their sum, then the product with the
    incoming gradient: 16 B per local logit. Otherwise 16-bit logits and the fp32 softmax, 6 B per logit."""
    n = tokens * vocab
    if vocab_parallel and recipe.loss_parallel_dtensor:
        return 16.0 * n
    if recipe.logits_fp32 and not recipe.cross_entropy_fused:
        return 12.0 * n
    return n * (ACT_BYTES + FP32)


def loss_cache_bytes(tokens: int, vocab: int, recipe: RecipeSpec) -> float:
    """Bytes the CUDA caching allocator keeps reserved beyond the live tensors at the loss's backward peak
    (``loss_peak_bytes``), bytes: the 16-bit logits' freed block, 2 B per logit, when the step frees the
    logits before backward (``recipe.loss_frees_logits``, torchtitan ``del pred``) and the loss is the eager
    fp32 path (``logits.float()``, log_softmax and nll_loss, or DTensor loss_parallel); else 0.

    The forward allocates the logits (2 B per logit), their fp32 copy (4 B) and the log-softmax output (4 B;
    loss_parallel also the shifted logits, 4 B, exp's output being reused by the result). The fp32 copy (and
    the shifted logits) die when the loss returns and the logits at ``del pred``: one free range of 6 (10) B
    per logit beside the saved log-softmax output. Every backward tensor of the loss is 4 B per logit
    (nll_loss_backward's zeros_like and _log_softmax_backward_data's output; loss_parallel's zeros_like, exp,
    their sum and its product with the incoming gradient, ``_nll_loss_and_log_softmax_backward``), so the range
    holds one (two) of them, 2 B per logit stay free and the rest take new memory: the allocator serves a
    request from the smallest cached free block that fits, else maps new memory, and never moves a live block
    (c10/cuda/CUDACachingAllocator.cpp header comment; with expandable_segments, set by torchtitan's
    run_llama_train.sh, "the same best-fit heuristics" and only the free block before a segment's unmapped end
    grows: Note [Expandable Segments], find_expandable_block). Reserved peak 12 + 2 B per logit (16 + 2 with
    loss_parallel) where the live peak is 12 (16)."""
    if not recipe.loss_frees_logits or not recipe.logits_fp32 or recipe.cross_entropy_fused:
        return 0.0
    return float(ACT_BYTES) * tokens * vocab


def loss_forward_bytes(tokens: int, vocab: int, recipe: RecipeSpec, vocab_parallel: bool = False) -> float:
    """Loss temporaries at the end of the forward pass, bytes: fp32 eager path, the fp32 logits and the
    log_softmax output, 8 B per logit; DTensor loss_parallel (see ``loss_peak_bytes``), the 16-bit logits, their
    fp32 copy, the shifted logits and their exp at once (``_log_softmax``), 14 B per local logit; else the
    16-bit logits, 2 B."""
    n = tokens * vocab
    if vocab_parallel and recipe.loss_parallel_dtensor:
        return 14.0 * n
    return n * (2.0 * FP32 if recipe.logits_fp32 and not recipe.cross_entropy_fused else float(ACT_BYTES))


def fp8_quantize_ops(gemms, phase: str, recipe: RecipeSpec | None = None, weights_in_fp8: bool = False) -> list[MemoryOp]:
    """fp8 traffic around each Linear GEMM (m x n x k), as the recipe's fp8 path runs it.

    Transformer Engine: the fused cast-transpose of the 16-bit input into fp8 and its fp8 transpose for
    the weight gradient (read 2, write 1 + 1 per element, T x k), and in backward the same for the output
    gradient (T x n); the fp8 weight copies are cached across micro-batches (TE is_first_microbatch).
    (transformer_engine/pytorch/module/linear.py, cast_transpose.)

    torchao Float8Linear with dynamic tensorwise scales (torchao/float8: ``tensor_to_scale`` = an amax
    reduction, then ``hp_tensor_and_scale_to_float8``): per operand an amax pass (read 2) and a cast pass
    (read 2, write 1): the input forward (T x k), the weight forward (n x k; already fp8 when FSDP gathers
    it in fp8, ``weights_in_fp8``) and the output gradient backward (T x n); ``_scaled_mm`` wants its second
    operand column-major, so backward also writes the fp8 transposes of the output gradient and of the
    input for the weight gradient (read 1, write 1 each) and of the weight for the input gradient."""
    if recipe is None or recipe.fp8_scaling == "transformer-engine":
        return [MemoryOp(f"{g.name}.fp8_cast", g.m * g.k * 4.0, phase, "fused", 1, g.n / g.k, "fused") for g in gemms]
    ops = []
    for g in gemms:
        fwd = g.m * g.k * 5.0
        bwd = g.m * g.n * (5.0 + 2.0) + g.m * g.k * 2.0 + g.n * g.k * 2.0
        ops.append(MemoryOp(f"{g.name}.fp8_cast", fwd, phase, "cast", 2, bwd / fwd, "cast"))
        if not weights_in_fp8:
            ops.append(MemoryOp(f"{g.name}.fp8_weight_cast", g.n * g.k * 5.0, phase, "cast", 2, 0.0))
    return ops


def grad_accumulation_ops(grad_bytes_per_micro_batch: float, tensors: int) -> list[MemoryOp]:
    """Accumulation of one micro-batch's gradients into the held ones (read both, write one: 3x the
    gradient bytes), averaged over the step's micro-batches (the first one only assigns)."""
    if grad_bytes_per_micro_batch <= 0:
        return []
    return [MemoryOp("grad_accumulate", grad_bytes_per_micro_batch * 3, "bwd_weight", "add", tensors, 0.0)]
