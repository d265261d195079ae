"""Sanity bounds on sizes: far above anything built or published, low enough that every estimate
stays finite and fast (some prices walk a group's ranks). A value past a bound is bad input (exit 2)
wherever it comes from: a flag, a model / hardware / scenario file, or ``--set``.

Each bound is a power of two (or ten) at least 8x the largest published figure of its kind:
- ranks 2^21 (2,097,152): the largest announced training clusters hold 1e5-2e5 GPUs (xAI Colossus, 2024-25);
- layers 2^14: published dense LLMs have at most a few hundred (Megatron-LM 1T: 128, Narayanan et al. 2021 Table 1);
- widths (hidden, FFN, head dim, LoRA ranks) 2^20: Megatron-LM 1T has hidden 25,600;
- heads and experts 2^16: DeepSeek-V3 has 128 heads and 256 routed experts (arXiv 2412.19437);
- vocabulary 2^24: Gemma 2 has 256,000 entries, the largest published;
- sequence 2^27 tokens: the longest published training context is 10M tokens (Llama 4 Scout, 2025);
- sequences per step 2^32 and per micro-batch 2^24;
- peaks 1e6 TFLOP/s per device (a B200 is about 4.5e3 dense fp8), bandwidths 1e7 GB/s, HBM 1e6 GiB.
"""

from __future__ import annotations

MAX_RANKS = 2**21
MAX_LAYERS = 2**14
MAX_WIDTH = 2**20
MAX_HEADS = 2**16
MAX_EXPERTS = 2**16
MAX_VOCAB = 2**24
MAX_SEQ = 2**27
MAX_GLOBAL_BATCH = 2**32
MAX_MICRO_BATCH = 2**24
MAX_TFLOPS = 1e6
MAX_BANDWIDTH_GBPS = 1e7
MAX_CAPACITY_GIB = 1e6
