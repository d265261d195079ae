"""Rules that fire only at run time, checked against the framework's source text (pinned release).

Megatron's interleaved schedule checks the micro-batch count at the first step, in
megatron/core/pipeline_parallel/schedules.py:1133-1153 (forward_backward_pipelining_with_interleaving),
with microbatch_group_size_per_vp_stage defaulting to pp (megatron/core/model_parallel_config.py:567-568).
"""

from __future__ import annotations

import pytest
from fw_plans import _sc

from planner.frameworks import refusal
from planner.specs import Layout

pytestmark = pytest.mark.frameworks


def lines(site, path: str, first: int, last: int) -> str:
    return "".join((site / path).read_text().splitlines(keepends=True)[first - 1:last])


def megatron_interleaved_accepts(m: int, pp: int) -> bool:
    """The two conditions of schedules.py:1133-1153 with group = pp."""
    group = pp
    if group > m or group < pp:
        return False
    final = m % group
    return not (0 < final < pp)


def test_source_lines_are_the_rule(site):
    src = lines(site, "megatron/core/pipeline_parallel/schedules.py", 1133, 1153)
    assert "config.microbatch_group_size_per_vp_stage > num_microbatches" in src
    assert "config.microbatch_group_size_per_vp_stage < pipeline_parallel_size" in src
    assert "final_microbatch_group_size = num_microbatches % config.microbatch_group_size_per_vp_stage" in src
    assert "0 < final_microbatch_group_size < pipeline_parallel_size" in src
    default = lines(site, "megatron/core/model_parallel_config.py", 567, 568)
    assert "self.microbatch_group_size_per_vp_stage = self.pipeline_model_parallel_size" in default
    ds = lines(site, "deepspeed/runtime/pipe/engine.py", 76, 77)
    assert "ZeroStageEnum.gradients" in ds and "incompatible with pipeline parallelism" in ds


@pytest.mark.parametrize("pp,m", [(4, 4), (4, 6), (4, 8), (4, 2), (8, 20), (8, 16), (8, 24), (4, 12)])
def test_paraplan_rule_agrees_with_megatrons_schedule(pp, m):
    sc = _sc("llama3-8b", "h100-sxm-80gb", Layout(tp=1, pp=pp, vpp=2, dp=1, schedule="interleaved-1f1b"),
             global_batch_size=m)
    reason = refusal("megatron", sc.model, sc.training, sc.layout)
    assert (reason is None) == megatron_interleaved_accepts(m, pp)
    if reason:
        assert "schedules.py:1133-1153" in reason
