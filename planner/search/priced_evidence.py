"""The evidence of a priced step: its layout class (planner.evidence.classify) with the attention kernel
generation the pricing picks for it (planner.pricing.compute.attention_generation), which the evidence layer,
below pricing, cannot resolve itself. Every caller above pricing classifies through here."""

from __future__ import annotations

from ..evidence import Evidence, LayoutClass, classify, evidence_for
from ..pricing.compute import attention_generation
from ..specs import HardwareProfile, Layout, TrainingSpec


def priced_class(hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int) -> LayoutClass:
    """The LayoutClass of a step priced on ``hardware``."""
    return classify(hardware, training, layout, gpus, attention=attention_generation(hardware.device, training))


def priced_evidence(hardware: HardwareProfile, training: TrainingSpec, layout: Layout, gpus: int,
                    predicted_mfu: float) -> Evidence:
    """The Evidence of a step priced on ``hardware`` at ``predicted_mfu``."""
    return evidence_for(hardware, training, layout, gpus, predicted_mfu,
                        attention=attention_generation(hardware.device, training))
