"""How a MoE layer's tokens move (issue 23, part 5): the alltoall dispatcher's second permutation, the flex
dispatcher's (DeepEP / HybridEP) permutation after the dispatch and its one copy per destination rank, the dispatch
libraries' measured throughput across nodes, Qwen3's query / key norms. One behaviour per test, small exact values."""

from __future__ import annotations

import math

import pytest

from hwprofiles import load_hardware, load_model
from planner.bench.moe_rows import row_moe_training
from planner.exports.megatron_model import moe_dispatch_args
from planner.pricing import Pricer
from planner.pricing.collectives import CollectivePricer
from planner.pricing.placement import GroupPlacement
from planner.specs import Layout, TrainingSpec
from planner.work.layer import backward_of, layer_forward
from planner.work.moe import expected_distinct
from planner.work.ops import TokenAllToAll

Q30 = load_model("qwen3-30b-a3b")  # 128 experts, top-8, hidden 2048
H100 = load_hardware("h100-sxm-80gb")


def _names(training: TrainingSpec, layout: Layout) -> list[str]:
    return [op.name for op in layer_forward(Q30, training, layout)]


def test_alltoall_sorts_the_received_copies_by_local_expert_and_back():
    names = _names(TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))  # 16 local experts
    assert names.index("moe.dispatch") < names.index("moe.sort_chunks") < names.index("experts.fc1")
    assert names.index("experts.fc2") < names.index("moe.unsort_chunks") < names.index("moe.combine")


def test_the_second_permutation_moves_every_copy_and_its_probability():
    ops = layer_forward(Q30, TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    sort = next(op for op in ops if op.name == "moe.sort_chunks")
    rows = 1024 * 8  # T_in x k copies on the rank (balanced)
    assert sort.bytes_moved == 2 * rows * (2048 * 2 + 4)  # read + write: 16-bit token and fp32 prob


def test_one_local_expert_needs_no_second_permutation():
    model = Q30.model_copy(update={"num_experts": 8})
    ops = layer_forward(model, TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    assert not any(op.name in ("moe.sort_chunks", "moe.unsort_chunks") for op in ops)


def test_the_inverse_permutation_moves_the_same_bytes():
    ops = layer_forward(Q30, TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    sort = next(op for op in ops if op.name == "moe.sort_chunks")
    back = next(op for op in backward_of(ops) if op.name == "moe.sort_chunks.bwd")
    assert back.bytes_moved == sort.bytes_moved


@pytest.mark.parametrize("dispatcher", ["deepep", "hybridep"])
def test_flex_dispatcher_permutes_after_the_dispatch(dispatcher):
    names = _names(TrainingSpec(global_batch_size=8, seq_length=1024, moe_token_dispatcher=dispatcher),
                   Layout(dp=8, ep=8))
    assert names.index("moe.dispatch") < names.index("moe.permute") < names.index("experts.fc1")
    assert names.index("experts.fc2") < names.index("moe.unpermute") < names.index("moe.combine")
    assert "moe.sort_chunks" not in names


def test_expected_distinct_is_the_hypergeometric_miss():
    # 8 ranks of 16 experts each, 8 of 128 experts picked: 8 (1 - C(112, 8) / C(128, 8))
    assert expected_distinct(8, 128, 8) == pytest.approx(8 * (1 - math.comb(112, 8) / math.comb(128, 8)))
    assert expected_distinct(1, 128, 8) == 1.0
    assert expected_distinct(4, 0, 2) == pytest.approx(4 * (1 - 0.75 ** 2))  # experts unknown: with replacement


def test_flex_dispatch_sends_a_token_once_per_destination_rank():
    group = GroupPlacement(size=8, stride=1, ranks_per_node=8, nodes=1, node_devices=tuple(range(8)), span_nodes=1)
    pricer = CollectivePricer(H100, 1)
    token = 1024 * 2048 * 2.0  # one copy of every token
    intra, off = pricer.all_to_all_parts(token * 8, group, copies=8, node_dedup=True, experts=128)
    ranks = expected_distinct(8, 128, 8)
    expect = pricer.alpha_intra + token * ranks * 7 / 8 / pricer.domain_bandwidth_bps(group)
    assert intra == pytest.approx(expect) and off == 0.0


def test_measured_dispatch_throughput_prices_the_off_node_level():
    group = GroupPlacement(size=16, stride=1, ranks_per_node=8, nodes=2, node_devices=tuple(range(8)), span_nodes=2)
    pricer = CollectivePricer(H100, 2)
    token = 4096 * 2048 * 2.0
    nodes = expected_distinct(2, 128, 8)  # the benchmark counts the own node too
    _, off = pricer.all_to_all_parts(token * 8, group, 8, True, None, 128, "hybridep", False)
    assert off == pytest.approx(token * nodes / 54.47e9)  # HybridEP README, H100, 16 ranks, BF16 dispatch
    _, back = pricer.all_to_all_parts(token * 8, group, 8, True, None, 128, "hybridep", True)
    assert back == pytest.approx(token * nodes / 53.35e9)  # its combine


def test_without_a_measurement_the_nic_model_prices_the_off_node_level():
    group = GroupPlacement(size=16, stride=1, ranks_per_node=8, nodes=2, node_devices=tuple(range(8)), span_nodes=2)
    pricer = CollectivePricer(load_hardware("h200-sxm-141gb"), 2)
    assert pricer.ep_dispatch_bps("deepep", 16, False) is None
    token = 4096 * 2048 * 2.0
    _, off = pricer.all_to_all_parts(token * 8, group, 8, True, None, 128, "deepep", False)
    remote = token * expected_distinct(2, 128, 8) / 2
    assert off == pytest.approx(pricer.alpha_net + remote / pricer.net_bandwidth_bps(group))


def test_the_backward_of_a_dispatch_is_a_combine():
    ops = layer_forward(Q30, TrainingSpec(global_batch_size=8, seq_length=1024, moe_token_dispatcher="deepep"),
                        Layout(dp=8, ep=8))
    bwd = {op.name: op for op in backward_of(ops) if isinstance(op, TokenAllToAll)}
    assert bwd["moe.dispatch.bwd"].combine and not bwd["moe.combine.bwd"].combine


def test_hybridep_runs_the_measured_throughput_on_two_nodes():
    lay = Layout(dp=16, ep=16)
    trn = TrainingSpec(global_batch_size=16, seq_length=4096, moe_token_dispatcher="hybridep")
    op = next(o for o in layer_forward(Q30, trn, lay) if o.name == "moe.dispatch")
    pricer = Pricer(H100, trn, lay, 16)
    assert pricer.a2a_parts(op)[1] == pytest.approx(4096 * 2048 * 2 * expected_distinct(2, 128, 8) / 54.47e9)


def test_qk_norm_adds_query_and_key_norms():
    names = _names(TrainingSpec(global_batch_size=8, seq_length=1024), Layout(dp=8, ep=8))
    assert names.index("qkv") < names.index("q_norm") < names.index("k_norm") < names.index("attention")
    plain = layer_forward(Q30.model_copy(update={"qk_norm": False}), TrainingSpec(global_batch_size=8,
                          seq_length=1024), Layout(dp=8, ep=8))
    assert "q_norm" not in [op.name for op in plain]


def test_hybridep_is_read_from_a_row_and_exported_to_megatron():
    assert row_moe_training({"moe": "zoo: qwen3-30b-a3b; dropless; hybridep"})["moe_token_dispatcher"] == "hybridep"
    args = moe_dispatch_args(TrainingSpec(global_batch_size=8, moe_token_dispatcher="hybridep"))
    assert args[:4] == ["--moe-token-dispatcher-type", "flex", "--moe-flex-dispatcher-backend", "hybridep"]
