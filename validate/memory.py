"""Peak memory per rank.

GPU: the CUDA caching allocator's ``max_memory_allocated`` (bytes of live tensors, not reserved cache).
CPU: a ``TorchDispatchMode`` that sees every aten op's outputs and counts the bytes of live tensor
*storages* (views share a storage and count once; tensor subclasses such as DTensor are unwrapped to
their local shards). A storage leaves the count when its weak reference expires, checked after every
op. Allocator overheads, Python objects and temporaries freed inside one op are not counted.
"""

from __future__ import annotations

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CPU_METHOD = "tracked tensor storages (TorchDispatchMode, weak refs)"
CUDA_METHOD = "torch.cuda.max_memory_allocated"


def _local_tensors(t: torch.Tensor):
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None and type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
        names, _ = t.__tensor_flatten__()
        for name in names:
            inner = getattr(t, name)
            if isinstance(inner, torch.Tensor):
                yield from _local_tensors(inner)
    else:
        yield t


class TensorMemoryTracker(TorchDispatchMode):
    """Counts live tensor-storage bytes; ``peak_bytes`` is the largest count seen (bytes)."""

    def __init__(self):
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current_bytes = 0
        self.peak_bytes = 0

    def track(self, tensor: torch.Tensor) -> None:
        """Count ``tensor``'s storage (once) from now until it is freed."""
        for t in _local_tensors(tensor):
            if t.device.type == "meta":
                continue
            storage = t.untyped_storage()
            key = storage._cdata
            if key in self._live:
                continue
            nbytes = storage.nbytes()
            self._live[key] = (StorageWeakRef(storage), nbytes)
            self.current_bytes += nbytes
        self.peak_bytes = max(self.peak_bytes, self.current_bytes)

    def sweep(self) -> None:
        """Drop storages that have been freed."""
        for key, (ref, nbytes) in list(self._live.items()):
            if ref.expired():
                del self._live[key]
                self.current_bytes -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.sweep()
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        return out
