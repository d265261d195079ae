"""Pydantic v2 specs (frozen, extra forbidden): hardware, model, training, layout."""

from .base import Spec
from .hardware import (
    DTYPES,
    ClusterSpec,
    DeviceSpec,
    EfficiencyPoint,
    HardwareProfile,
    LinkSpec,
    NetworkSpec,
    NicSpec,
    NodeSpec,
    PeakTflops,
    StorageSpec,
)
from .layout import SCHEDULES, Layout, check_layout, micro_batches_per_step, stage_layer_counts
from .model import ModelSpec
from .training import TrainingSpec

__all__ = [
    "DTYPES", "SCHEDULES", "ClusterSpec", "DeviceSpec", "EfficiencyPoint", "HardwareProfile", "Layout",
    "LinkSpec", "ModelSpec", "NetworkSpec", "NicSpec", "NodeSpec", "PeakTflops", "Spec", "StorageSpec", "TrainingSpec",
    "check_layout", "micro_batches_per_step", "stage_layer_counts",
]
