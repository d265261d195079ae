"""Checkpoint bytes (planner.work.checkpoint) and seconds (planner.pricing.checkpoint)."""

from __future__ import annotations

import pytest

from hwprofiles import load_hardware, load_model
from planner.errors import SpecError
from planner.pricing.checkpoint import checkpoint_times
from planner.specs import Layout, StorageSpec, TrainingSpec
from planner.work.checkpoint import CheckpointBytes, checkpoint_bytes
from planner.work.params import parameter_counts


def test_checkpoint_holds_weights_master_and_moments_once():
    model = load_model("gpt3-1.3b")
    trn = TrainingSpec(global_batch_size=64, recipe="megatron-lm")
    ck = checkpoint_bytes(model, trn, Layout(tp=2, dp=4), 8, 8)
    n = parameter_counts(model).total
    assert ck.bytes_per_param == 2 + 4 + 8  # bf16 weights, fp32 master, Adam m and v
    assert ck.total_bytes == n * 14
    assert ck.nodes == 1 and ck.written_bytes_per_node == ck.total_bytes


def test_held_bytes_shrink_with_zero():
    model = load_model("gpt3-1.3b")
    trn = TrainingSpec(global_batch_size=64, recipe="megatron-lm")
    z0 = checkpoint_bytes(model, trn, Layout(dp=8), 8, 8).held_bytes_per_rank
    z1 = checkpoint_bytes(model, trn, Layout(dp=8, zero_stage=1), 8, 8).held_bytes_per_rank
    n = parameter_counts(model).total
    assert z0 == pytest.approx(n * 14)
    assert z1 == pytest.approx(n * (2 + 12 / 8))


def _hw(**storage):
    hw = load_hardware("h100-sxm-80gb")
    return hw.model_copy(update={"storage": StorageSpec(kind="test", **storage)})


CK = CheckpointBytes(parameters=0, bytes_per_param=14, total_bytes=1e12, held_bytes_per_rank=2e9,
                     written_bytes_per_node=1e12 / 100, nodes=100)


def test_write_is_bound_by_the_nodes_or_the_tier():
    # 100 nodes x 10 GB each: 10 GB / 20 GB/s = 0.5 s per node; 1 TB / 1,000 GB/s = 1 s aggregate
    t = checkpoint_times(CK, _hw(node_write_gbps=20, node_read_gbps=40, aggregate_write_gbps=1000,
                                 aggregate_read_gbps=4000), "sync")
    assert t.write_s == pytest.approx(1.0) and t.write_bound == "aggregate"
    assert t.load_s == pytest.approx(0.25)  # 10 GB / 40 GB/s per node beats 1 TB / 4 TB/s
    t = checkpoint_times(CK, _hw(node_write_gbps=20, node_read_gbps=40), "sync")
    assert t.write_s == pytest.approx(0.5) and t.write_bound == "per-node"


def test_sync_blocks_the_write_async_only_the_copy_to_host():
    hw = _hw(node_write_gbps=20, node_read_gbps=40)
    link = hw.device.host_link_gbps * hw.device.host_link_efficiency * 1e9
    sync, async_ = checkpoint_times(CK, hw, "sync"), checkpoint_times(CK, hw, "async")
    assert sync.stage_s == async_.stage_s == pytest.approx(2e9 / link)
    assert sync.blocked_s == pytest.approx(sync.stage_s + 0.5)
    assert async_.blocked_s == pytest.approx(async_.stage_s)
    assert async_.durable_after_s == pytest.approx(async_.stage_s + 0.5)


def test_profile_without_storage_cannot_price_a_checkpoint():
    with pytest.raises(SpecError, match="no storage tier"):
        checkpoint_times(CK, load_hardware("mi300x"), "async")


@pytest.mark.parametrize("name", ["h100-sxm-80gb", "h200-sxm-141gb", "a100-sxm-80gb", "a100-sxm-40gb",
                                  "mi250x-frontier"])
def test_builtin_profiles_have_a_sourced_storage_tier(name):
    hw = load_hardware(name)
    assert hw.storage is not None
    for field in ("node_write_gbps", "node_read_gbps"):
        assert len(hw.source_for(f"storage.{field}")) > 20
