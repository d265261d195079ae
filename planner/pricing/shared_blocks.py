"""Block times and group placements shared between the Pricers of one search (``shared_block_times``).

A block's seconds (``Pricer.block_time``) are a pure function of its op list and of the pricing
context that ``Pricer.block_time`` reads: the hardware profile, the precision (ComputePricer), the
recipe's host dispatch and recompute host calls, the shared-expert overlap flag, and the placement
of every axis group (CollectivePricer reads only the hardware and the group). Candidates of one
search that share a layer op set (planner.work.step caches them per layer layout and training)
and a context therefore share its times. The store lives only inside a ``with
shared_block_times():`` block (the search), so a lone ``estimate`` never reads times another call
computed; subclasses of Pricer (planner.cost.bottleneck) never use it.
"""

from __future__ import annotations

from contextlib import contextmanager

_STORE: list[dict | None] = [None]
#: entries kept before the store is emptied (each keeps its op tuple alive, so ids stay unique)
MAX_ENTRIES = 50_000


def current() -> dict | None:
    """The store of the search running now, or None outside one."""
    return _STORE[0]


def context_id(store: dict, hardware, context: tuple) -> int:
    """A small int naming (``hardware`` object, ``context``) within ``store`` (hashed once per Pricer,
    not at every block lookup)."""
    names = store["contexts"]
    key = (id(hardware), context)
    hit = names.get(key)
    if hit is None:
        hit = names[key] = len(names)
        store["hardware"].append(hardware)  # kept alive: its id stays its own
    return hit


def shared_part(store: dict, hardware, key: tuple, make):
    """The pricing part (ComputePricer, CollectivePricer: pure functions of ``hardware`` and ``key``
    whose only state is their own memo of prices) made once per search by ``make()``."""
    parts = store["parts"]
    full = (id(hardware), *key)
    hit = parts.get(full)
    if hit is None:
        hit = parts[full] = make()
        store["hardware"].append(hardware)  # kept alive: its id stays its own
    return hit


@contextmanager
def shared_block_times():
    """Share block times between every Pricer created inside the block (nested blocks share the outer one)."""
    if _STORE[0] is not None:
        yield _STORE[0]
        return
    _STORE[0] = {"contexts": {}, "hardware": [], "blocks": {}, "placements": {}, "parts": {}}
    try:
        yield _STORE[0]
    finally:
        _STORE[0] = None
