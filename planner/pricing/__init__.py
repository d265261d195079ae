"""Prices: seconds per op and per collective on a hardware profile. The only place time is known.

- ``pricer.py``: :class:`Pricer`, the seconds of one layout's ops on one hardware profile and GPU count
  (:class:`BlockTime` per op list), with the group placements it prices collectives over;
- ``compute_part.py``: what an op list costs on the compute stream whatever its placement;
- ``compute.py`` (GEMM / attention / memory-bound kernels), ``collectives.py`` (alpha-beta collectives over
  the topology), ``placement.py`` (where each parallel group's ranks sit), ``tp_overlap.py``,
  ``moe_overlap.py``, ``hostlink.py``, ``checkpoint.py``, ``reliability.py``, ``kernel_fit.py``;
- ``shared_blocks.py``: what the Pricers of one search share.
"""

from . import shared_blocks
from .compute_part import ComputePart, compute_part, compute_seconds, ring_compute_parts
from .pricer import AXES, BlockTime, Pricer, placements, shared_compute

__all__ = ["AXES", "BlockTime", "ComputePart", "Pricer", "compute_part", "compute_seconds", "placements",
           "ring_compute_parts", "shared_blocks", "shared_compute"]
