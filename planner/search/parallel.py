"""Contiguous slices of a list and an order-keeping process map: how ``search(workers=N)`` spreads
its memory scan (planner.search.scan) so the merged result is the serial one."""

from __future__ import annotations


def slices(items: list, n: int) -> list[list]:
    """``items`` cut into at most ``n`` contiguous slices of near-equal length, in order."""
    n = max(1, min(n, len(items)))
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def parallel_map(fn, args: list[tuple], workers: int) -> list:
    """``[fn(*a) for a in args]`` over ``workers`` processes, results in the order of ``args``."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(workers, len(args))) as pool:
        return list(pool.map(_star, [(fn, a) for a in args]))


def _star(fn_args):
    fn, a = fn_args
    return fn(*a)
