"""Profiler events to op classes (planner.trace.classes) and steps to per-class seconds
(planner.trace.measure): exact small cases built by hand."""

from __future__ import annotations

import pytest

from planner.trace.classes import comm_kind, cpu_op_class, gpu_kernel_class

pd = pytest.importorskip("pandas")

from planner.trace.measure import HOST, IDLE, gemm_shape, measure, tensor_bytes  # noqa: E402
from planner.trace.read import COLUMNS, RankTrace  # noqa: E402


@pytest.mark.parametrize(("name", "cls"), [
    ("aten::mm", "gemm"), ("aten::addmm", "gemm"), ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
    ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention"),
    ("aten::native_layer_norm", "norm_fwd"), ("aten::gelu_backward", "activation_bwd"), ("aten::add_", "add"),
    ("aten::view", None), ("aten::linear", None), ("c10d::allreduce_", "comm:all-reduce"),
    ("_c10d_functional::reduce_scatter_tensor", "comm:reduce-scatter"), ("c10d::send", "comm:send-recv"),
    ("aten::lerp_", "elementwise"), ("PythonSubclass", None),
])
def test_cpu_op_classes(name, cls):
    assert cpu_op_class(name) == cls


def test_copy_between_dtypes_is_a_cast():
    assert cpu_op_class("aten::copy_", ["c10::BFloat16", "float", "Scalar"]) == "cast"
    assert cpu_op_class("aten::copy_", ["float", "float", "Scalar"]) == "copy"


@pytest.mark.parametrize(("name", "cls"), [
    ("ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)", "comm:all-reduce"),
    ("ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", "comm:reduce-scatter"),
    ("ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)", "comm:send-recv"),
    ("void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_256x64_16x4_nn_align4>(cutlass_80_tensorop_s1688gemm)", "gemm"),
    ("Cijk_Alik_Bljk_SB_Bias_AS_SAV_UserArgs_MT64x16x32_MI16x16x1_SN_LDSB0", "gemm"),
    ("void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>, true>(Flash_fwd_params)", "attention"),
    ("void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>(int, float)", "norm_fwd"),
    ("void at::native::(anonymous namespace)::layer_norm_grad_input_kernel<float>(float const*)", "norm_bwd"),
    ("void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>", "optimizer"),
    ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw", "conv"),
    ("Memcpy HtoD (Pageable -> Device)", "copy"),
])
def test_gpu_kernel_classes(name, cls):
    assert gpu_kernel_class(name) == cls


def test_comm_kind_words():
    assert comm_kind("gloo:all_gather") == "all-gather" and comm_kind("nccl:_reduce_scatter_base") == "reduce-scatter"
    assert comm_kind("FSDP::all_gather (layers.0)") == "all-gather" and comm_kind("aten::mm") is None


def test_gemm_shapes_and_tensor_bytes():
    assert gemm_shape("aten::mm", [[128, 64], [64, 256]]) == (128, 256, 64, 1)
    assert gemm_shape("aten::addmm", [[256], [128, 64], [64, 256], [], []]) == (128, 256, 64, 1)
    assert gemm_shape("aten::bmm", [[8, 32, 16], [8, 16, 32]]) == (32, 32, 16, 8)
    assert gemm_shape("aten::mm", [[], []]) is None
    assert tensor_bytes([[2, 64], [64]], ["float", "c10::BFloat16"]) == 2 * 64 * 4 + 64 * 2
    assert tensor_bytes([[[2, 3], [4]], []], ["TensorList", ""]) == (6 + 4) * 4


def _trace(rows: list[dict]) -> RankTrace:
    full = []
    for i, r in enumerate(rows):
        row = {c: -1 for c in COLUMNS}
        row.update({"ev": i, "cat": "cpu_op", "pid": 1, "tid": 1, "stream": -1, "iteration": 0, "input_dims": [],
                    "input_type": [], "concrete_inputs": [], "msg_dtype": ""})
        row.update(r)
        full.append(row)
    return RankTrace(path="hand-made", rank=0, world_size=2, device="cpu", backend="gloo", events=pd.DataFrame(full))


def test_cpu_step_classes_add_up_and_waits_go_to_the_collective():
    """A 1000 us step: an addmm (100 us, its view inside), an all-reduce issued (20 us), a 300 us gap while
    the gloo thread runs it (the wait), a wrapper's own 50 us (host), an add (30 us), and 500 us of gap."""
    rows = [
        {"name": "ProfilerStep#0", "cat": "user_annotation", "ts": 0, "dur": 1000},
        {"name": "aten::linear", "ts": 0, "dur": 130},
        {"name": "aten::addmm", "ts": 10, "dur": 100, "input_dims": [[64], [32, 16], [16, 64], [], []]},
        {"name": "aten::view", "ts": 20, "dur": 5},
        {"name": "c10d::allreduce_", "ts": 130, "dur": 20, "input_dims": [[[32, 64]]], "input_type": ["TensorList"]},
        {"name": "gloo:all_reduce", "cat": "user_annotation", "tid": 2, "ts": 140, "dur": 310},
        {"name": "PythonSubclass", "ts": 450, "dur": 80},
        {"name": "aten::add", "ts": 480, "dur": 30, "input_dims": [[32, 64], [32, 64]], "input_type": ["float", "float"]},
    ]
    step = measure(_trace(rows)).steps[0]
    us = {k: round(v * 1e6, 6) for k, v in step.classes.items()}
    assert us == {"gemm": 100.0, "comm:all-reduce": 20.0 + 300.0, "add": 30.0, HOST: 30.0 + 50.0 + 470.0}
    assert sum(step.classes.values()) == pytest.approx(step.seconds) == pytest.approx(1e-3)
    assert step.counts == {"gemm": 1, "comm:all-reduce": 1, "add": 1}


def test_cpu_optimizer_step_takes_everything_but_communication():
    rows = [
        {"name": "ProfilerStep#3", "cat": "user_annotation", "ts": 0, "dur": 200},
        {"name": "Optimizer.step#Adam.step", "cat": "user_annotation", "ts": 0, "dur": 150},
        {"name": "aten::_foreach_add_", "ts": 10, "dur": 40},
        {"name": "c10d::allreduce_", "ts": 60, "dur": 50},
    ]
    step = measure(_trace(rows)).steps[0]
    assert step.step == 3
    assert {k: round(v * 1e6, 6) for k, v in step.classes.items()} == {"optimizer": 100.0, "comm:all-reduce": 50.0,
                                                                      HOST: 50.0}


def test_gpu_step_overlap_and_idle():
    """GPU kernels of iteration 0: a GEMM 0-100 us, an NCCL all-reduce 50-150 us on another stream (50 us
    under the GEMM), nothing 150-400 us of a 400 us step: idle 250 us."""
    rows = [
        {"name": "ProfilerStep#0", "cat": "user_annotation", "ts": 0, "dur": 400},
        {"name": "cudaLaunchKernel", "cat": "cuda_runtime", "ts": 1, "dur": 2, "index_correlation": 3},
        {"name": "cudaLaunchKernel", "cat": "cuda_runtime", "ts": 5, "dur": 2, "index_correlation": 4},
        {"name": "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_32x5_tn", "cat": "kernel", "stream": 7,
         "tid": 7, "ts": 0, "dur": 100, "index_correlation": 1},
        {"name": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", "cat": "kernel", "stream": 20, "tid": 20, "ts": 50,
         "dur": 100, "index_correlation": 2, "in_msg_nelems": 1000, "msg_dtype": "c10::BFloat16", "group_size": 8},
    ]
    trace = _trace(rows)  # events numbered 0..4 in this order; launches and kernels point at each other
    m = measure(trace)
    step = m.steps[0]
    assert trace.on_gpu
    assert {k: round(v * 1e6, 6) for k, v in step.classes.items()} == {"gemm": 100.0, "comm:all-reduce": 100.0,
                                                                      IDLE: 250.0}
    assert round(step.comm_overlapped_s * 1e6, 6) == 50.0 and round(step.comm_exposed_s * 1e6, 6) == 50.0
    assert m.samples.comm == [("all-reduce", 2000.0, 8, pytest.approx(100e-6))]


def test_cpu_gap_after_a_point_to_point_op_is_its_wait():
    """gloo's isend / irecv works block in Work.wait(), which records no event: the gap right after a send
    (400 us, a pipeline bubble) is send-recv time, the gap after the next op (100 us) is host."""
    rows = [
        {"name": "ProfilerStep#0", "cat": "user_annotation", "ts": 0, "dur": 1000},
        {"name": "aten::add", "ts": 0, "dur": 50, "input_dims": [[32, 64], [32, 64]], "input_type": ["float", "float"]},
        {"name": "c10d::send", "ts": 50, "dur": 30, "input_dims": [[[32, 64]]], "input_type": ["TensorList"]},
        {"name": "aten::add", "ts": 480, "dur": 50, "input_dims": [[32, 64], [32, 64]], "input_type": ["float", "float"]},
        {"name": "aten::add", "ts": 630, "dur": 370, "input_dims": [[32, 64], [32, 64]], "input_type": ["float", "float"]},
    ]
    step = measure(_trace(rows)).steps[0]
    us = {k: round(v * 1e6, 6) for k, v in step.classes.items()}
    assert us == {"add": 470.0, "comm:send-recv": 30.0 + 400.0, HOST: 100.0}
    assert sum(step.classes.values()) == pytest.approx(step.seconds)
