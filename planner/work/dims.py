"""Per-rank dimensions of one micro-batch of one transformer layer (tokens, widths and head counts after
tensor and context parallel splits), which the layer's ops (planner.work.layer) and the selective-checkpoint
split (planner.work.sac) are built from. Counts, no units."""

from __future__ import annotations

from dataclasses import dataclass

from ..specs import Layout, ModelSpec, TrainingSpec


@dataclass(frozen=True, slots=True)
class Dims:
    """Per-rank dimensions of one micro-batch."""

    tokens: int  # T = b * s
    batch: int
    seq: int
    hidden: int
    heads_local: int
    kv_heads_local: int
    head_dim: int
    ffn_local: int
    ffn_gate_factor: int  # 2 for swiglu (gate + up), 1 otherwise
    vocab_local: int
    tp: int
    sequence_parallel: bool

    @property
    def norm_tokens(self) -> int:
        """Tokens each rank normalises: T/t with sequence parallelism, else T (redundant)."""
        return self.tokens // self.tp if self.sequence_parallel else self.tokens


def dims(model: ModelSpec, training: TrainingSpec, layout: Layout) -> Dims:
    """Per-rank dimensions for ``model`` under ``layout`` (context parallel splits the sequence)."""
    t = layout.tp
    seq = training.seq_length // layout.cp
    b = training.micro_batch_size
    return Dims(
        tokens=b * seq,
        batch=b,
        seq=seq,
        hidden=model.hidden_size,
        heads_local=model.num_heads // t,
        kv_heads_local=max(1, model.kv_heads // t),
        head_dim=model.head_size,
        ffn_local=model.ffn_hidden_size // t,
        ffn_gate_factor=2 if model.gated_ffn else 1,
        vocab_local=-(-model.vocab_size // t),
        tp=t,
        sequence_parallel=layout.sequence_parallel,
    )
