"""Small scenarios for the simulator tests."""

from __future__ import annotations

from hwprofiles import load_hardware
from planner.scenario import Scenario
from planner.specs import Layout, ModelSpec, TrainingSpec

SMALL = ModelSpec(name="sim-small", num_layers=32, hidden_size=2048, num_heads=16, ffn_hidden_size=8192,
                  vocab_size=32000, source="test model")
TINY_VOCAB = SMALL.model_copy(update={"name": "sim-equal", "vocab_size": 128})


def scenario(model=SMALL, hw="h100-sxm-80gb", gb=64, mb=1, recompute="none", overlap_dp=True, **layout) -> Scenario:
    """A scenario of ``model`` with ``layout`` keywords; gpus = tp * pp * dp."""
    lay = Layout(**layout)
    return Scenario(model=model, hardware=load_hardware(hw), gpus=lay.gpus,
                    training=TrainingSpec(global_batch_size=gb, micro_batch_size=mb, seq_length=1024,
                                          recompute=recompute, overlap_dp_comm=overlap_dp),
                    layout=lay)
