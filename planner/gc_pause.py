"""Python's cyclic garbage collector paused while a search or a replay runs (``cyclic_gc_paused``).

A search allocates some 10^5 long-lived objects (op sets, stage templates, memory records, price
memos) and almost no reference cycles (DeepSeek-V3 on 2,048 H100: 63 objects collected in 529
collections). With the collector on, every few thousand allocations it traverses the young objects,
and as the caches grow it re-traverses all of them (4 full collections, ~0.5 s of a ~1.8 s search on
the 2-core CI VM). Pausing it changes no result: reference counting still frees every acyclic object
at once, and the few cycles are collected after the search, when the collector runs again (at the
next full collection: the search's objects are moved to the oldest generation when it ends).
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
            _promote_young_objects()
            gc.enable()


def _promote_young_objects() -> None:
    """Move every tracked object to the oldest generation without traversing it (``gc.freeze()``
    then ``gc.unfreeze()``, two list splices), unless something else keeps objects frozen. The
    search leaves its ~10^5 objects in the youngest generation, whose first collection after the
    search would traverse them all (~0.06 s); in the oldest they are examined at the next full
    collection, as survivors of young collections are, and any cycle among them is collected there."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
