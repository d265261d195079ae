"""The model half of a torchtitan export (torchtitan 0.3.0), generated from the ModelSpec: Python
source that builds the planned model with torchtitan's own llama3 config builders, not a flavour name.

torchtitan's llama3 flavours (torchtitan/models/llama3/__init__.py:113-356) are each a
``Llama3Model.Config`` assembled from the same pieces: ``_build_llama3_layers`` (the per-layer
attention / SwiGLU FFN / RMSNorm configs, lines 70-110), an ``Embedding``, the final ``RMSNorm`` and the
``lm_head`` ``Linear``, with ``enable_weight_tying`` for tied embeddings. The export writes those
pieces with the plan's numbers (width, layers, heads, KV heads, FFN width, vocabulary, RoPE base, tied
embeddings), so any model of the llama3 architecture exports, at any size (the CPU launch test runs the
same architecture with its widths divided). RoPE keeps torchtitan's llama3 table (131072 positions,
Llama 3.1 frequency scaling), which holds no parameters.
"""

from __future__ import annotations

from ..specs import ModelSpec

MODEL_FN = "paraplan_model"


def model_source(model: ModelSpec) -> str:
    """Python source of ``paraplan_model()``, returning the plan's ``Llama3Model.Config``."""
    rope = int(model.rope_theta or 10000)
    return f'''

def {MODEL_FN}():
    """{model.name} as torchtitan's llama3 module builds it (llama3/__init__.py:70-110)."""
    dim, vocab = {model.hidden_size}, {model.vocab_size}
    return Llama3Model.Config(
        dim=dim,
        vocab_size=vocab,
        enable_weight_tying={model.tied_embeddings},
        tok_embeddings=Embedding.Config(num_embeddings=vocab, embedding_dim=dim, param_init=_EMBEDDING_INIT),
        norm=RMSNorm.Config(normalized_shape=dim, param_init=_NORM_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab, param_init=_output_linear_init(dim)),
        layers=_build_llama3_layers(
            fuse_qkv=True,
            n_layers={model.num_layers},
            dim=dim,
            n_heads={model.num_heads},
            n_kv_heads={model.kv_heads},
            hidden_dim={model.ffn_hidden_size},
            rope=ComplexRoPE.Config(dim=dim // {model.num_heads}, max_seq_len=131072, theta={rope}, scaling="llama"),
            attn_backend="flex",
        ),
    )
'''


MODEL_IMPORTS = """from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm
from torchtitan.models.llama3 import (
    _EMBEDDING_INIT,
    _NORM_INIT,
    Llama3Model,
    _build_llama3_layers,
    _output_linear_init,
)"""
