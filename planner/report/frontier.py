"""Data of the Frontier case-study report (Dash et al. 2023, arXiv 2312.12705) — issue 8.

Every number is computed by paraplan (planner.cost.estimate, planner.whatif.sweep,
planner.search.search, simulate.run); the only typed-in numbers are the study's published facts
in ``STUDY`` (each cited to docs/frontier_paper.md / shared/data/frontier_paper.md). Seconds,
bytes and fractions inside; the Markdown (planner.report.frontier_md) formats them.
"""

from __future__ import annotations

import simulate
from hwprofiles import load_hardware, load_model
from planner.bench.fit_mi250x_frontier import GCD_PEAK, POINTS, predicted_percent, study_training
from planner.cost import estimate
from planner.pricing.collectives import CollectivePricer
from planner.pricing.placement import place
from planner.scenario import Scenario
from planner.search import SearchConstraints, search
from planner.specs import Layout, TrainingSpec
from planner.topology import offnode_bandwidth_per_device_gbps, ring_bandwidth_gbps
from planner.whatif import sweep
from planner.work.conventions import megatron_eq3_flops
from planner.work.memory import state_bytes_per_param

HARDWARE = "mi250x-frontier"
GB = 1e9
#: The study's published facts used below (source labels as in frontier_paper.md).
STUDY = {
    "peak_tflops": GCD_PEAK / 1e12,  # 383 TFLOP/s per MI250X / 2 GCDs; 73.5 / 0.3838 [inference, Sec. 1]
    "weak_scaling": {"frontier-175b": 1.00, "frontier-1t": 1.00},  # [paper] abstract
    "strong_scaling": {"frontier-175b": 0.89, "frontier-1t": 0.87},  # [paper] abstract
    "hbm_gb": 64,  # OLCF Frontier user guide: 64 GB HBM2e per GCD
    "bytes_per_param_stated": 24,  # [paper] via Klockwood's notes: "24 bytes/param"
    "bytes_per_param_listed": (("fp16 weight", 2), ("grad", 4), ("fp32 weight copy", 4), ("momentum", 4)),
    "memory_1t_tb": 24,  # [paper] "training a trillion parameter model requires 24 Terabytes"
}
#: Weak-scaling ladders (tp, pp held from the authors' launch scripts; dp grows) [inference, Sec. 4]
LADDERS = {"frontier-175b": (4, 16, (128, 256, 512, 1024), 640),
           "frontier-1t": (4, 128, (512, 1024, 2048, 3072), 512)}
#: Strong-scaling global batches tried (the study's are NOT FOUND): sensitivity to that unknown.
STRONG_BATCHES = {"frontier-175b": (640, 1280, 2560, 5120), "frontier-1t": (768, 1536, 3072, 6144)}
SWEEP_GPUS = 128  # the 175B launch script's 16 nodes
HEADROOM = 0.05  # HBM kept free by the search (fragmentation, allocator slack): an assumption


def _est(model, hw, training: TrainingSpec, layout: Layout, gpus: int):
    return estimate(model, hw, training, layout, gpus)


def _time_row(est) -> dict:
    t = est.time.model_dump()
    return {**t, "step": est.step_time_s}


def _mem_row(est) -> dict:
    worst = est.worst_stage
    return {**worst.breakdown.model_dump(), "peak": est.peak_memory_bytes, "stage": worst.stage,
            "capacity": worst.capacity_bytes, "fits": est.fits}


def eq3_percent(model, est, gpus: int) -> float:
    """% of the 191.5 TFLOP/s peak on the study's Megatron Eq. 3 (hardware-FLOPs) convention."""
    trn = est.training
    flops = megatron_eq3_flops(trn.global_batch_size, trn.seq_length, model.num_layers, model.hidden_size,
                               model.vocab_size)
    return 100.0 * flops / est.step_time_s / gpus / GCD_PEAK


def headline(hw) -> list[dict]:
    """Section 1: the study's three points against paraplan at the authors' launch configurations."""
    rows = []
    for point in POINTS:
        name, gpus, tp, pp, gbs, study = point
        model = load_model(name)
        layout = Layout(tp=tp, pp=pp, dp=gpus // (tp * pp), zero_stage=1)
        est = _est(model, hw, study_training(gbs), layout, gpus)
        pred = predicted_percent(hw, point)
        rows.append({"model": name, "gpus": gpus, "layout": layout.describe(), "global_batch": gbs,
                     "micro_batches": est.micro_batches, "study_percent": study, "predicted_percent": pred,
                     "predicted_tflops": pred / 100 * GCD_PEAK / 1e12, "error_percent": 100 * (pred / study - 1),
                     "mfu": est.mfu, "bubble_fraction": est.bubble_fraction, "time": _time_row(est),
                     "memory": _mem_row(est)})
    return rows


def _variant(model, hw, gpus, training, layout, **extra) -> dict:
    est = _est(model, hw, training, layout, gpus)
    return {**extra, "layout": layout.describe(), "micro_batches": est.micro_batches,
            "percent": eq3_percent(model, est, gpus), "bubble_fraction": est.bubble_fraction,
            "time": _time_row(est), "memory": _mem_row(est)}


def tp_sweep(hw) -> list[dict]:
    """tp 1, 2, 4, 8 inside a node and 16 across two nodes; 175B, pp 8, 128 GCDs, global batch 640."""
    model, trn = load_model("frontier-175b"), study_training(640)
    node = hw.node
    pricer = CollectivePricer(hw, SWEEP_GPUS // node.devices_per_node)
    payload = 1 * GB  # one all-reduce of 1 GB priced by planner.pricing, to compare cost per byte
    rows = []
    for tp in (1, 2, 4, 8, 16):
        group = place(tp, 1, node.devices_per_node)
        if tp == 1:
            ring = None
        elif tp <= node.devices_per_node:
            ring = ring_bandwidth_gbps(node, tuple(range(tp)))
        else:  # the cross-node share: every GCD of the node sends through the node's NICs
            ring = offnode_bandwidth_per_device_gbps(node, tuple(range(node.devices_per_node)))
        pp = 8
        layout = Layout(tp=tp, pp=pp, dp=SWEEP_GPUS // (tp * pp), zero_stage=1, sequence_parallel=False)
        rows.append(_variant(model, hw, SWEEP_GPUS, trn, layout, tp=tp, ring_gbps=ring,
                             allreduce_s_per_gb=pricer.time("all-reduce", payload, group) if tp > 1 else 0.0,
                             cross_node=tp > node.devices_per_node))
    return rows


def pp_sweep(hw) -> list[dict]:
    """Pipeline depth and micro-batch count (the bubble): 175B, tp 4, 128 GCDs."""
    model = load_model("frontier-175b")
    rows = []
    for pp, gbs in ((8, 640), (16, 640), (32, 640), (16, 64), (16, 160), (16, 1280)):
        layout = Layout(tp=4, pp=pp, dp=SWEEP_GPUS // (4 * pp), zero_stage=1)
        rows.append(_variant(model, hw, SWEEP_GPUS, study_training(gbs), layout, pp=pp, global_batch=gbs))
    return rows


def zero_sweep(hw) -> list[dict]:
    """ZeRO 0 / 1 / 2 (memory vs communication): 175B, tp 4, pp 16, 1024 GCDs (dp 16), weak batch 5120."""
    model, gpus = load_model("frontier-175b"), 1024
    return [_variant(model, hw, gpus, study_training(5120), Layout(tp=4, pp=16, dp=16, zero_stage=z), zero=z)
            for z in (0, 1, 2)]


def flash_sweep(hw) -> list[dict]:
    """Flash attention on/off at the 175B launch configuration, at seq 2048 and 4096."""
    model = load_model("frontier-175b")
    layout = Layout(tp=4, pp=16, dp=2, zero_stage=1)
    rows = []
    for seq in (2048, 4096):
        for flash in (True, False):
            trn = study_training(640).model_copy(update={"seq_length": seq, "flash_attention": flash})
            rows.append(_variant(model, hw, SWEEP_GPUS, trn, layout, seq=seq, flash=flash))
    return rows


def scaling(hw) -> dict:
    """Section 3: weak scaling over the ladders (planner.whatif.sweep) and strong scaling, first to
    last rung, at several global batches (the study's are unknown)."""
    out = {}
    for name, (tp, pp, ladder, gbs0) in LADDERS.items():
        model = load_model(name)
        base = Scenario(model=model, hardware=hw, gpus=ladder[0], training=study_training(gbs0),
                        layout=Layout(tp=tp, pp=pp, dp=ladder[0] // (tp * pp), zero_stage=1))
        vary = [("gpus", [str(g) for g in ladder])]
        weak = sweep(base, vary, mode="weak")
        strong = {}
        for gbs in STRONG_BATCHES[name]:
            sb = base.model_copy(update={"training": study_training(gbs)})
            strong[gbs] = [p.efficiency for p in sweep(sb, vary, mode="strong").points]
        out[name] = {"layout": f"tp{tp} pp{pp}", "gpus": list(ladder),
                     "weak": [{"gpus": p.gpus, "global_batch": p.global_batch, "step": p.step_time_s,
                               "tokens_per_gpu": p.tokens_per_s_per_gpu, "efficiency": p.efficiency,
                               "peak": p.peak_memory_bytes} for p in weak.points],
                     "strong": {str(k): v for k, v in strong.items()},
                     "study_weak": STUDY["weak_scaling"][name], "study_strong": STUDY["strong_scaling"][name]}
    return out


def bytes_per_param() -> list[dict]:
    """Section 4: paraplan's model-state bytes per parameter by recipe (planner/work/memory.py)."""
    rows = []
    for recipe in ("megatron-lm", "deepspeed", "torch-amp", "torchtitan"):
        per = state_bytes_per_param(study_training(640).model_copy(update={"recipe": recipe}))
        rows.append({"recipe": recipe, "weights": per.weights, "grads": per.grads, "optimizer": per.optimizer,
                     "total": per.weights + per.grads + per.optimizer})
    return rows


def sensitivity(hw) -> dict:
    """Assumption checks: 1T headline at global batch 640 / 1024 / 2048; 175B at seq 2048 vs 4096."""
    one_t = [{"global_batch": g, "percent": predicted_percent(hw, (*POINTS[2][:4], g, POINTS[2][5]))}
             for g in (640, 1024, 2048)]
    model = load_model("frontier-175b")
    layout = Layout(tp=4, pp=16, dp=2, zero_stage=1)
    seqs = []
    for seq in (2048, 4096):
        est = _est(model, hw, study_training(640).model_copy(update={"seq_length": seq}), layout, SWEEP_GPUS)
        seqs.append({"seq": seq, "percent": eq3_percent(model, est, SWEEP_GPUS), "step": est.step_time_s,
                     "peak": est.peak_memory_bytes})
    return {"one_t_batch": one_t, "seq_175b": seqs}


def best_plans(hw, head: list[dict]) -> list[dict]:
    """Section 5: planner.search at each headline GPU count and global batch (tp inside a node,
    5 % of HBM kept free, study precision/recipe), against the study's layout priced the same way."""
    rows = []
    for point, h in zip(POINTS, head, strict=True):
        name, gpus, tp, pp, gbs, _ = point
        model = load_model(name)
        trn = study_training(gbs)
        ref = Layout(tp=tp, pp=pp, dp=gpus // (tp * pp), zero_stage=1)
        res = search(model, hw, gpus, trn, SearchConstraints(max_tp=8, memory_headroom=HEADROOM), top=3, reference=ref)
        best = res.best
        pct = eq3_percent(model, best.estimate, gpus)
        rows.append({"model": name, "gpus": gpus, "global_batch": gbs, "plan": best.label,
                     "layout": best.layout, "training": best.training, "percent": pct,
                     "study_layout_percent": h["predicted_percent"], "mfu": best.estimate.mfu,
                     "speedup": res.reference.estimate.step_time_s / best.estimate.step_time_s,
                     "step": best.estimate.step_time_s, "peak": best.estimate.peak_memory_bytes,
                     "time": _time_row(best.estimate), "memory": _mem_row(best.estimate),
                     "explanation": list(res.explanation), "priced": res.stats.priced})
    return rows


def timeline(hw, plan: dict):
    """Simulate one step of ``plan`` (the best 175B plan); returns (SimulationResult, stages)."""
    model = load_model(plan["model"])
    scenario = Scenario(model=model, hardware=hw, gpus=plan["gpus"], training=plan["training"],
                        layout=plan["layout"])
    return simulate.run(scenario, trace=True), plan["layout"].pp


def build_report(hardware: str = HARDWARE) -> dict:
    """All sections' data (JSON-able except the best plans' layout/training models)."""
    hw = load_hardware(hardware)
    head = headline(hw)
    return {"hardware": hw.name, "hbm_bytes": hw.device.hbm_capacity_gib * 2**30, "study": STUDY,
            "headline": head, "tp": tp_sweep(hw), "pp": pp_sweep(hw), "zero": zero_sweep(hw),
            "flash": flash_sweep(hw),
            "attention_share": 2048 / (6 * load_model("frontier-175b").hidden_size), "scaling": scaling(hw),
            "bytes_per_param": bytes_per_param(),
            "sensitivity": sensitivity(hw), "best": best_plans(hw, head), "_hw": hw}
