"""Python's cyclic garbage collector paused while a search runs (``cyclic_gc_paused``).

A search allocates some 10^5 long-lived objects (op sets, stage templates, memory records, price
memos) and almost no reference cycles (DeepSeek-V3 on 2,048 H100: 63 objects collected in 529
collections). With the collector on, every few thousand allocations it traverses the young objects,
and as the caches grow it re-traverses all of them (4 full collections, ~0.5 s of a ~1.8 s search on
the 2-core CI VM). Pausing it changes no result: reference counting still frees every acyclic object
at once, and the few cycles are collected after the search, when the collector runs again.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused():
    """Disable the cyclic collector inside the block; re-enable it after if it was enabled before
    (nested blocks leave it to the outermost one)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
