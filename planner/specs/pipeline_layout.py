"""Megatron's pipeline layout string (``--pipeline-model-parallel-layout``), read into layers per stage.

Syntax of megatron/core/transformer/pipeline_parallel_layer_layout.py (Megatron-Core 0.19.2,
``PipelineParallelLayerLayout.parse_str_to_list`` and ``validate_layer_layout``): virtual stages separated by
``|``, ``E`` the embedding, ``t`` a transformer layer, ``m`` a multi-token-prediction module, ``L`` the loss
(with the output head); ``(...)*n`` and ``x*n`` repeat; ``,`` only separates. The ``pp * vpp`` virtual stages
are listed in order, virtual stage ``i`` on pipeline rank ``i % pp`` (``layout[vpp_rank * pp + pp_rank]``).
Megatron requires the embedding first, the loss last, every decoder layer and MTP module once, the MTP
modules after the last decoder layer and on the last stage. DeepSeek-V3 on pp8 x vpp4 with MTP:
``Et|(tt|)*30mL`` (Megatron-Bridge v0.1.0rc4 scripts/performance/run_script.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SpecError

SYMBOLS = {"E": "embedding", "t": "decoder", "m": "mtp", "L": "loss"}


@dataclass(frozen=True)
class PipelineLayout:
    """A parsed layout: the symbols of each virtual stage, in virtual-stage order."""

    text: str
    stages: tuple[tuple[str, ...], ...]
    pp: int

    @property
    def virtual_layers(self) -> list[int]:
        """Transformer layers of each virtual stage."""
        return [s.count("t") for s in self.stages]

    @property
    def stage_layers(self) -> list[int]:
        """Transformer layers of each pipeline rank (its virtual stages summed)."""
        out = [0] * self.pp
        for i, n in enumerate(self.virtual_layers):
            out[i % self.pp] += n
        return out

    @property
    def mtp_layers(self) -> int:
        """MTP modules the layout places."""
        return sum(s.count("m") for s in self.stages)


def _expand(text: str) -> str:
    """The string with ``(...)*n`` and ``x*n`` unrolled and ``,`` dropped (Megatron's regexes, in order)."""
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"\(([^()]+)\)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"(.)\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    return text.replace(",", "")


def symbol_count(text: str, symbol: str) -> int:
    """How many times ``symbol`` occurs in the unrolled layout string."""
    return _expand(text.replace(" ", "")).count(symbol)


def parse_pipeline_layout(text: str, pp: int, vpp: int, num_layers: int, mtp_layers: int = 0) -> PipelineLayout:
    """Parse and check ``text`` for ``pp * vpp`` virtual stages of a ``num_layers``-layer model with
    ``mtp_layers`` MTP modules; SpecError (field ``layout.pipeline_layout``) naming what is wrong."""
    field = "layout.pipeline_layout"
    flat = _expand(text.replace(" ", ""))
    bad = sorted(set(flat) - set(SYMBOLS) - {"|"})
    if bad:
        raise SpecError(f"'{text}' has symbols {', '.join(bad)} (allowed: E t m L | , ( ) *n)", field=field)
    stages = tuple(tuple(s) for s in flat.split("|"))
    want = pp * vpp
    if len(stages) != want:
        raise SpecError(f"'{text}' has {len(stages)} virtual stages != pp({pp}) * vpp({vpp}) = {want}", field=field)
    symbols = [c for s in stages for c in s]
    if not symbols or symbols[0] != "E" or symbols.count("E") != 1:
        raise SpecError(f"'{text}': the embedding E must come first, once", field=field)
    if symbols[-1] != "L" or symbols.count("L") != 1:
        raise SpecError(f"'{text}': the loss L must come last, once", field=field)
    if symbols.count("t") != num_layers:
        raise SpecError(f"'{text}' places {symbols.count('t')} transformer layers != num_layers({num_layers})",
                        field=field)
    if symbols.count("m") != mtp_layers:
        raise SpecError(f"'{text}' places {symbols.count('m')} MTP modules != mtp_layers({mtp_layers})", field=field)
    if "m" in symbols and "t" in symbols[symbols.index("m"):]:
        raise SpecError(f"'{text}': MTP modules must follow the last transformer layer", field=field)
    layout = PipelineLayout(text, stages, pp)
    if any(n == 0 for n in layout.stage_layers):
        raise SpecError(f"'{text}' leaves pipeline rank {layout.stage_layers.index(0)} without a transformer layer",
                        field=field)
    return layout


def layout_string(virtual_layers: list[int], mtp_layers: int = 0) -> str:
    """The layout string of ``virtual_layers`` transformer layers per virtual stage, the embedding on the first
    and the MTP modules and loss on the last (the form Megatron's exports write)."""
    parts = [f"t*{n}" if n else "" for n in virtual_layers]
    parts[0] = "E" + ("," if parts[0] else "") + parts[0]
    tail = ",".join(["m"] * mtp_layers + ["L"])
    parts[-1] = parts[-1] + ("," if parts[-1] else "") + tail
    return "|".join(parts)


__all__ = ["PipelineLayout", "layout_string", "parse_pipeline_layout", "symbol_count"]
