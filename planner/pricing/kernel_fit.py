"""Per-kernel-class HBM efficiency from the H200 microbenchmarks (hwprofiles/data/h200_microbench.json).

A class's efficiency is (bytes as ``planner.work`` counts them) / (measured seconds) / HBM peak, so the
bytes definition here and in planner/work agree by construction: every tensor read and written once,
16-bit elements of a (T, h) tensor. Forward of a one-input op: input + output (2 tensors); backward:
saved input + output gradient + input gradient (3 tensors); dropout adds a 1-byte mask; SwiGLU reads a
(T, 2h) input. ``add`` is not fitted: the residual_add row implies more than the HBM peak with three
tensors of traffic, so the class falls back to the copy bandwidth (said in the profile's notes).

The benchmark's inputs are leaf tensors that require grad, so each measured backward also hands the input
gradient to autograd's AccumulateGrad (a clone or an add into ``.grad``, a pass over the input), which the
backward of an activation inside a training step never pays: its gradient flows to the previous op. The
residual_add row measures that handling alone (the backward of x + y launches no kernel of its own: both inputs
receive the output gradient), so half of its backward time is subtracted per input of the op's size
(``_GRAD_INPUTS``) before the backward bytes are divided by the time. At both measured sizes this puts the GeLU
backward at 0.548 / 0.544 of HBM peak (its forward: 0.588), where the uncorrected reading gave 0.31.
"""

from __future__ import annotations

from statistics import median

# bytes per (T*h) element: (class, microbenchmark op, forward?) -> bytes
_FWD = {"norm_fwd": ("layernorm", 4.0), "activation_fwd": ("gelu", 4.0), "swiglu_fwd": ("swiglu", 6.0),
        "dropout_fwd": ("dropout", 5.0)}
_BWD = {"norm_bwd": ("layernorm", 6.0), "activation_bwd": ("gelu", 6.0), "swiglu_bwd": ("swiglu", 10.0),
        "dropout_bwd": ("dropout", 5.0)}
_BW_ROWS = {"norm_fwd": "layernorm", "activation_fwd": "gelu", "softmax": "softmax"}
#: (T, h)-sized leaf inputs whose gradient the benchmark's backward hands to AccumulateGrad, per op (SwiGLU's
#: input is (T, 2h)); the residual_add row's backward is that handling for its two inputs (module docstring)
_GRAD_INPUTS = {"layernorm": 1, "gelu": 1, "swiglu": 2, "dropout": 1}


def grad_handling_s(ops: dict) -> float:
    """Seconds one (T, h) leaf input's gradient handling adds to a measured backward: half the residual_add
    row's backward (its two inputs, no kernel of its own); 0 when the row has no residual_add."""
    add = ops.get("residual_add")
    return (add["s_fwdbwd"] - add["s_fwd"]) / 2 if add else 0.0


def fit_kernel_classes(bench: dict, hbm_gbps: float) -> dict[str, float]:
    """Median achieved fraction of ``hbm_gbps`` per kernel class over the microbenchmark's ``bw`` and
    ``elementwise`` rows (rounded to 3 digits); ``copy`` from the copy row."""
    samples: dict[str, list[float]] = {}
    peak = hbm_gbps * 1e9
    for row in bench.get("bw", []):
        if row["op"] == "copy":
            samples.setdefault("copy", []).append(row["bytes_moved"] / row["s"] / peak)
        for cls, op in _BW_ROWS.items():
            if row["op"] == op:
                samples.setdefault(cls, []).append(4.0 * row["T"] * row["h"] / row["s"] / peak)
    for row in bench.get("elementwise", []):
        n = row["T"] * row["h"]
        ops = row["ops"]
        handling = grad_handling_s(ops)
        for cls, (op, per) in _FWD.items():
            if op in ops:
                samples.setdefault(cls, []).append(per * n / ops[op]["s_fwd"] / peak)
        for cls, (op, per) in _BWD.items():
            if op in ops:
                bwd = ops[op]["s_fwdbwd"] - ops[op]["s_fwd"] - _GRAD_INPUTS[op] * handling
                samples.setdefault(cls, []).append(per * n / bwd / peak)
    return {cls: round(median(v), 3) for cls, v in sorted(samples.items())}


def fit_attention_table(bench: dict, peak_tflops: float) -> list[dict]:
    """Median causal-SDPA forward / backward efficiency per (head_dim, seq) over the microbenchmark's
    ``attn`` rows (batch and head counts pooled). FLOPs: forward 2*2*B*h*S^2*d/2 (causal half),
    backward 2.5x forward (planner.work.ops.Attention.executed_flops)."""
    groups: dict[tuple[int, int], tuple[list[float], list[float]]] = {}
    peak = peak_tflops * 1e12
    for a in bench.get("attn", []):
        f = 4.0 * a["B"] * a["heads"] * a["S"] ** 2 * a["hd"] / 2
        fw, bw = groups.setdefault((a["hd"], a["S"]), ([], []))
        fw.append(f / a["s_fwd"] / peak)
        bw.append(2.5 * f / (a["s_fwdbwd"] - a["s_fwd"]) / peak)
    return [{"head_dim": hd, "seq": s, "forward": round(median(fw), 3), "backward": round(median(bw), 3)}
            for (hd, s), (fw, bw) in sorted(groups.items())]


def fit_fp8_curve(bench: dict, fp8_peak_tflops: float) -> list[dict]:
    """fp8 GEMM efficiency (fraction of the fp8 peak) per measured ``gemm_fp8`` shape, sorted by size
    (GFLOP = 2*M*N*K / 1e9); equal sizes are pooled by median."""
    by: dict[float, list[float]] = {}
    for g in bench.get("gemm_fp8", []):
        gflop = round(2.0 * g["M"] * g["N"] * g["K"] / 1e9, 1)
        by.setdefault(gflop, []).append(g["tflops"] / fp8_peak_tflops)
    return [{"gflop": k, "efficiency": round(median(v), 3)} for k, v in sorted(by.items())]
