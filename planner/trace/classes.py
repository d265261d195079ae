"""Which of paraplan's op classes a profiler event belongs to, from its name (and, for a CPU operator, its
input types). Pure functions over strings; no trace library.

Classes are the cost model's own (planner.work.ops.kernel_class): ``gemm``, ``attention``, the memory-bound
kernel classes (``add``, ``norm_fwd``, ``norm_bwd``, ``activation_fwd``, ``activation_bwd``, ``softmax``,
``dropout_fwd``, ``dropout_bwd``, ``reduce``, ``embedding``, ``loss``, ``copy``, ``cast``), ``optimizer`` and
``comm:<kind>``; plus two the model has no op for: ``elementwise`` (other element-wise kernels: scaling,
masking, fills) and ``conv`` (convolutions). Names follow ATen's operator names (``aten::mm``) on the CPU
side and the kernel names of cuBLAS/CUTLASS, rocBLAS/hipBLASLt (``Cijk_``), FlashAttention, NCCL/RCCL and
PyTorch's own element-wise kernels on the GPU side.
"""

from __future__ import annotations

import re

GEMM = "gemm"
ATTENTION = "attention"
OPTIMIZER = "optimizer"
ELEMENTWISE = "elementwise"
CONV = "conv"
COMM_PREFIX = "comm:"
#: Profiler event categories of work on the device (kernels, copies, fills).
GPU_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")

#: ATen operators that run a matrix multiply (their inputs give m, n, k).
GEMM_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation",
                      "aten::_scaled_mm", "aten::_grouped_mm"})
#: ATen operators of fused attention (forward and backward), any backend.
ATTENTION_OPS = re.compile(r"^aten::_(scaled_dot_product_\w*attention\w*|flash_attention_\w+|efficient_attention_\w+|"
                           r"fused_attention\w*)$")
#: Memory-bound ATen operators by class. An operator not listed that touches data is ``elementwise``;
#: one that only makes a view or allocates (``METADATA_OPS``) has no class (its time is host time).
MEMORY_OPS = {
    "add": ("aten::add", "aten::add_", "aten::sub", "aten::sub_"),
    "norm_fwd": ("aten::native_layer_norm", "aten::_fused_rms_norm", "aten::rms_norm"),
    "norm_bwd": ("aten::native_layer_norm_backward", "aten::_fused_rms_norm_backward"),
    "activation_fwd": ("aten::gelu", "aten::silu", "aten::relu", "aten::relu_", "aten::silu_", "aten::sigmoid",
                       "aten::tanh", "aten::threshold"),
    "activation_bwd": ("aten::gelu_backward", "aten::silu_backward", "aten::threshold_backward",
                       "aten::sigmoid_backward", "aten::tanh_backward"),
    "softmax": ("aten::_softmax", "aten::_softmax_backward_data"),
    "dropout_fwd": ("aten::native_dropout",),
    "dropout_bwd": ("aten::native_dropout_backward",),
    "reduce": ("aten::sum", "aten::mean", "aten::_foreach_norm", "aten::linalg_vector_norm", "aten::norm"),
    "embedding": ("aten::embedding", "aten::index_select", "aten::embedding_dense_backward",
                  "aten::index_add_", "aten::index_put_", "aten::_index_put_impl_"),
    "loss": ("aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
             "aten::nll_loss_backward", "aten::nll_loss2d_forward", "aten::nll_loss2d_backward"),
    "copy": ("aten::copy_", "aten::cat", "aten::_chunk_cat", "aten::split_with_sizes_copy", "aten::_foreach_copy_",
             "aten::fill_", "aten::zero_", "aten::zeros", "aten::ones_like", "aten::clone"),
}
_MEMORY_BY_OP = {op: kind for kind, ops in MEMORY_OPS.items() for op in ops}
#: ATen operators that move no tensor data (views, allocation, metadata, scalar reads).
METADATA_OPS = frozenset({
    "aten::view", "aten::_unsafe_view", "aten::reshape", "aten::as_strided", "aten::as_strided_", "aten::t",
    "aten::transpose", "aten::permute", "aten::expand", "aten::slice", "aten::select", "aten::narrow",
    "aten::unsqueeze", "aten::squeeze", "aten::flatten", "aten::split", "aten::split_with_sizes", "aten::chunk",
    "aten::tensor_split", "aten::unbind", "aten::detach", "aten::detach_", "aten::alias", "aten::lift_fresh",
    "aten::resolve_conj", "aten::resolve_neg", "aten::empty", "aten::empty_like", "aten::empty_strided",
    "aten::resize_", "aten::item", "aten::_local_scalar_dense", "aten::view_as", "aten::expand_as",
    "aten::contiguous", "aten::to", "aten::set_", "aten::is_nonzero", "aten::result_type", "aten::linear",
    "aten::matmul", "aten::scaled_dot_product_attention", "aten::layer_norm", "aten::dropout",
    "aten::cross_entropy_loss", "aten::nll_loss", "aten::nll_loss_nd", "aten::log_softmax", "aten::softmax",
    "aten::embedding_backward", "aten::numpy_T", "aten::new_empty", "aten::new_empty_strided",
})

#: Communication kinds by a word of the operator / kernel / annotation name (case-insensitive).
_COMM_WORDS = (
    (re.compile(r"all_?reduce|allreduce", re.I), "all-reduce"),
    (re.compile(r"all_?gather|allgather", re.I), "all-gather"),
    (re.compile(r"reduce_?scatter|reducescatter", re.I), "reduce-scatter"),
    (re.compile(r"all_?to_?all|alltoall", re.I), "all-to-all"),
    (re.compile(r"sendrecv|send|recv", re.I), "send-recv"),
    (re.compile(r"broadcast", re.I), "broadcast"),
    (re.compile(r"barrier", re.I), "barrier"),
)
#: CPU operators of torch.distributed: the issue of a collective (``c10d::``) and the wait for one.
COMM_OP_PREFIXES = ("c10d::", "_c10d_functional::", "c10d_functional::")
WAIT_OPS = frozenset({"_c10d_functional::wait_tensor", "c10d_functional::wait_tensor"})
#: Communication annotations recorded on a backend's own thread (gloo) or around NCCL calls.
COMM_ANNOTATION = re.compile(r"^(gloo|nccl|rccl|mpi|ucc):", re.I)
#: The optimizer step's annotation (``Optimizer.step#Adam.step``).
OPTIMIZER_ANNOTATION = re.compile(r"^Optimizer\.step#")
#: Annotations marking one training iteration (torch.profiler.profile.step).
STEP_ANNOTATION = re.compile(r"^ProfilerStep\s*#\s*(\d+)$")


def comm_kind(name: str) -> str | None:
    """Collective kind named in ``name`` (all-reduce, all-gather, reduce-scatter, all-to-all, send-recv,
    broadcast, barrier), None when it names none."""
    for pattern, kind in _COMM_WORDS:
        if pattern.search(name):
            return kind
    return None


def is_comm_op(name: str) -> bool:
    """True for a CPU operator that issues or waits for communication."""
    return name.startswith(COMM_OP_PREFIXES)


def cpu_op_class(name: str, input_types=None) -> str | None:
    """Class of an ATen CPU operator, or None when it moves no data (a view, an allocation, a composite
    that only dispatches to others: its own time is host time). A ``copy_`` between dtypes is ``cast``."""
    if name in GEMM_OPS:
        return GEMM
    if ATTENTION_OPS.match(name):
        return ATTENTION
    if is_comm_op(name):
        kind = comm_kind(name.split("::", 1)[1])
        return COMM_PREFIX + kind if kind else None
    kind = _MEMORY_BY_OP.get(name)
    if kind == "copy" and name in ("aten::copy_", "aten::_to_copy") and _mixed_dtypes(input_types):
        return "cast"
    if kind is not None:
        return kind
    if name == "aten::_to_copy":
        return "cast"
    if name in METADATA_OPS or not name.startswith("aten::"):
        return None
    if name.startswith(("aten::convolution", "aten::_convolution", "aten::cudnn_convolution",
                        "aten::mkldnn_convolution", "aten::convolution_backward")):
        return CONV
    return ELEMENTWISE


def _mixed_dtypes(input_types) -> bool:
    if not isinstance(input_types, (list, tuple)):
        return False
    types = {t for t in input_types[:2] if isinstance(t, str) and t and t not in ("Scalar", "ScalarList")}
    return len(types) > 1


_GPU_RULES = (
    (re.compile(r"nccl|rccl|msccl", re.I), None),  # communication: kind from the name
    (re.compile(r"flash|fmha|attention|_attn_|sdpa|mha_", re.I), ATTENTION),
    (re.compile(r"conv|winograd|implicit_gemm|fprop|dgrad|wgrad|fft2d", re.I), CONV),
    (re.compile(r"gemm|Cijk_|nvjet|cublas|cutlass|_mm_|matmul|\bsm\d+_xmma|hipblaslt", re.I), GEMM),
    (re.compile(r"adam|multi_tensor_apply|fused_sgd|_foreach_", re.I), OPTIMIZER),
    (re.compile(r"layer_?norm|rms_?norm|RowwiseMoments", re.I), "norm"),
    (re.compile(r"softmax", re.I), "softmax"),
    (re.compile(r"dropout", re.I), "dropout"),
    (re.compile(r"cross_entropy|nll_loss|log_softmax", re.I), "loss"),
    (re.compile(r"embedding|indexSelect|index_select|indexing_backward", re.I), "embedding"),
    (re.compile(r"gelu|silu|swiglu|relu|sigmoid|tanh|threshold", re.I), "activation"),
    (re.compile(r"reduce_kernel|splitKreduce|reduction", re.I), "reduce"),
    (re.compile(r"CatArrayBatchedCopy|copy_kernel|direct_copy|memcpy|Memcpy|Memset|memset|fill", re.I), "copy"),
)


def gpu_kernel_class(name: str) -> str:
    """Class of a GPU kernel (or memcpy / memset) from its name. Norm, activation and dropout kernels take
    ``_fwd`` / ``_bwd`` from the word ``backward`` / ``bwd`` / ``grad`` in the name."""
    backward = re.search(r"backward|bwd|grad", name, re.I) is not None
    for pattern, cls in _GPU_RULES:
        if pattern.search(name):
            if cls is None:
                return COMM_PREFIX + (comm_kind(name) or "all-reduce")
            if cls in ("norm", "activation", "dropout"):
                return f"{cls}_{'bwd' if backward else 'fwd'}"
            return cls
    if re.search(r"CUDAFunctor_add|AddFunctor", name):
        return "add"
    return ELEMENTWISE


def is_memory_class(cls: str) -> bool:
    """True for a memory-bound class (priced by bytes over a bandwidth)."""
    return cls not in (GEMM, ATTENTION, OPTIMIZER, CONV, "host", "idle") and not cls.startswith(COMM_PREFIX)
