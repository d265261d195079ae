"""Microbenchmarks on every rank at once (so each rank sees the contention it sees in training):
GEMMs and causal attention of the model's shapes, element-wise copy bandwidth, per-op dispatch overhead,
an Adam step, and all-reduce / all-gather / reduce-scatter / send-recv over each mesh axis.

Each rank writes ``bench_rank_<r>.json``; times are medians over repeats, seconds.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .benchspec import BenchSpec
from .results import write_atomic
from .worker import PG_TIMEOUT_MARGIN_S, Status


def _timer(spec: BenchSpec, device: torch.device, fn: Callable[[], object], repeats: int | None = None) -> float:
    """Median seconds of ``fn`` over repeats: exactly ``repeats`` (collectives: every rank must make the
    same calls), else until ``min_time_s`` has passed (at least 3, at most ``max_repeats``)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *a: None)
    fn()
    sync(device)
    times: list[float] = []
    total = 0.0
    while (len(times) < repeats) if repeats else (
            len(times) < 3 or (total < spec.min_time_s and len(times) < spec.max_repeats)):
        t0 = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t0
        times.append(dt)
        total += dt
    return statistics.median(times)


def _dtype(spec: BenchSpec) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(spec.compute_dtype, torch.float32)


def bench_compute(spec: BenchSpec, device: torch.device) -> dict:
    """GEMM, attention, copy, overhead and optimizer timings on this rank."""
    dt = _dtype(spec)
    out: dict = {"gemm": [], "attention": [], "copy": []}
    for m, n, k in spec.gemms:
        a, b = torch.randn(m, k, dtype=dt, device=device), torch.randn(k, n, dtype=dt, device=device)
        out["gemm"].append({"m": m, "n": n, "k": k, "seconds": _timer(spec, device, lambda: a @ b)})
    for bh, s, d in spec.attention:
        q, k_, v = (torch.randn(1, bh, s, d, dtype=dt, device=device, requires_grad=True) for _ in range(3))
        fwd = _timer(spec, device, lambda: F.scaled_dot_product_attention(q, k_, v, is_causal=True))

        def fwd_bwd():
            F.scaled_dot_product_attention(q, k_, v, is_causal=True).sum().backward()

        both = _timer(spec, device, fwd_bwd)
        out["attention"].append({"batch_heads": bh, "seq": s, "head_dim": d, "fwd_s": fwd,
                                 "bwd_s": max(both - fwd, 1e-9)})
    for nbytes in spec.copy_bytes:
        src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).uniform_()
        dst = torch.empty_like(src)
        out["copy"].append({"bytes": nbytes, "seconds": _timer(spec, device, lambda: dst.copy_(src))})
    one = torch.ones(1, device=device)
    out["overhead_s"] = _timer(spec, device, lambda: one.add(one))
    params = [torch.nn.Parameter(torch.randn(spec.optimizer_params, device=device))]
    params[0].grad = torch.randn_like(params[0])
    opt = torch.optim.Adam(params, lr=1e-3)
    out["optimizer"] = {"params": spec.optimizer_params, "seconds": _timer(spec, device, opt.step)}
    return out


def _groups(world: int) -> list[tuple[str, list[list[int]]]]:
    """Mesh axes to time: the whole world, plus (when world >= 4 and even) a (world/2, 2) mesh's axes."""
    axes = [("world", [list(range(world))])]
    if world >= 4 and world % 2 == 0:
        axes.append(("inner", [[2 * i, 2 * i + 1] for i in range(world // 2)]))
        axes.append(("outer", [list(range(j, world, 2)) for j in range(2)]))
    return axes


def _collective_repeats(nbytes: int) -> int:
    """Fixed repeat count by size (the same on every rank): 10 up to 1 MiB, 5 up to 8 MiB, else 3."""
    return 10 if nbytes <= 1 << 20 else (5 if nbytes <= 8 << 20 else 3)


def bench_collectives(spec: BenchSpec, device: torch.device, rank: int, world: int, local_world: int) -> list[dict]:
    """all-reduce / all-gather / reduce-scatter on every axis, and send-recv between rank pairs."""
    out: list[dict] = []
    for axis, groups in _groups(world):
        handles = [dist.new_group(g) if axis != "world" else None for g in groups]
        mine = next(i for i, g in enumerate(groups) if rank in g)
        group, members = handles[mine], groups[mine]
        n = len(members)
        nodes = len({m // local_world for m in members})
        for nbytes in spec.collective_bytes:
            numel = max(n, nbytes // 4 // n * n)
            buf = torch.ones(numel, device=device)
            shard = torch.empty(numel // n, device=device)
            kinds = {
                "all-reduce": lambda: dist.all_reduce(buf, group=group),
                "all-gather": lambda: dist.all_gather_into_tensor(buf, shard, group=group),
                "reduce-scatter": lambda: dist.reduce_scatter_tensor(shard, buf, group=group),
            }
            for kind, fn in kinds.items():
                dist.barrier()
                secs = _timer(spec, device, fn, _collective_repeats(nbytes))
                out.append({"kind": kind, "axis": axis, "group_size": n, "nodes": nodes,
                            "ranks_per_node": n // nodes, "bytes": numel * 4, "seconds": secs})
        if n >= 2:
            peer_pos = members.index(rank) ^ 1
            for nbytes in spec.collective_bytes:
                buf = torch.ones(max(1, nbytes // 4), device=device)
                if peer_pos >= n:
                    dist.barrier()
                    continue
                peer = members[peer_pos]

                def pingpong():
                    if rank < peer:
                        dist.send(buf, peer)
                        dist.recv(buf, peer)
                    else:
                        dist.recv(buf, peer)
                        dist.send(buf, peer)

                dist.barrier()
                secs = _timer(spec, device, pingpong, _collective_repeats(nbytes)) / 2
                out.append({"kind": "send-recv", "axis": axis, "group_size": 2, "nodes": len(
                    {rank // local_world, peer // local_world}), "ranks_per_node": 1, "bytes": buf.numel() * 4,
                    "seconds": secs})
            break  # one axis of send-recv pairs is enough: p2p has no group-size term
    return out


def run_bench(spec: BenchSpec, out_dir: Path, timeout_s: float) -> None:
    """One rank of the microbenchmark job."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    status = Status(out_dir, rank)
    status.update(phase="init")
    try:
        cuda = spec.backend == "nccl"
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
        dist.init_process_group(spec.backend, timeout=timedelta(seconds=timeout_s + PG_TIMEOUT_MARGIN_S))
        status.update(phase="step", step=0)
        dist.barrier()
        result = bench_compute(spec, device)
        status.update(phase="step", step=1)
        result["collectives"] = bench_collectives(spec, device, rank, world, local_world) if world > 1 else []
        result.update(rank=rank, world=world, local_world=local_world,
                      device=torch.cuda.get_device_name(device) if cuda else "cpu", backend=spec.backend,
                      compute_dtype=spec.compute_dtype, torch_version=torch.__version__)
        write_atomic(out_dir / f"bench_rank_{rank}.json", json.dumps(result))
        dist.barrier()
        status.update(phase="done", status="done")
    except BaseException as exc:
        status.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def bench_main(spec_json: str, out_dir: str, timeout_s: float) -> None:
    """Elastic-launcher entry point."""
    run_bench(BenchSpec.model_validate_json(spec_json), Path(out_dir), timeout_s)


if __name__ == "__main__":  # torchrun entry: python -m validate.microbench SPEC.json OUT_DIR [TIMEOUT_S]
    import sys

    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 600.0
    from .worker import read_task

    run_bench(BenchSpec.model_validate(read_task(sys.argv[1])), Path(sys.argv[2]), limit)
