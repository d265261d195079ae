"""Read PyTorch profiler traces (Kineto / Chrome JSON, one file per rank, gzipped or not) with
HolisticTraceAnalysis (``pip install holistictraceanalysis``; Meta, MIT licence), not a parser of our own.

HTA parses each file into a table of events (name, category, thread, start, duration, GPU stream, input
shapes, collective arguments) and numbers every event by the ``ProfilerStep#<k>`` iteration it belongs to
(CPU events by time, GPU kernels through their launch's correlation id). This module turns one folder (or
one file) into a ``RankTrace`` per rank. Needs pandas and HTA: the CLI imports it only for the trace
commands and says how to install them when they are missing.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from hta.common.trace import parse_trace_file
from hta.configs.parser_config import ParserBackend, ParserConfig

from ..errors import SpecError
from .classes import GPU_CATEGORIES, STEP_ANNOTATION

TRACE_SUFFIXES = (".json", ".json.gz")
#: Columns every event table has after reading (HTA's names).
COLUMNS = ("ev", "name", "cat", "pid", "tid", "ts", "dur", "stream", "iteration", "index_correlation", "input_dims",
           "input_type", "concrete_inputs", "in_msg_nelems", "out_msg_nelems", "msg_dtype", "group_size")


@dataclass
class RankTrace:
    """One rank's trace: its events (a pandas table, times in us) and what the file says about the run."""

    path: str
    rank: int
    world_size: int
    device: str
    backend: str
    events: pd.DataFrame
    groups: list[dict] = field(default_factory=list)

    @property
    def on_gpu(self) -> bool:
        """True when the trace holds GPU kernels (a CUDA / ROCm run with the device activity on)."""
        return bool(self.events["cat"].isin(GPU_CATEGORIES).any())


def trace_files(path: Path) -> list[Path]:
    """The trace files of ``path``: itself when it is a file, else its ``*.json`` / ``*.json.gz`` files."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise SpecError(f"{path}: no such file or folder", field="trace")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(TRACE_SUFFIXES)
                   and not p.name.startswith("paraplan"))
    if not files:
        raise SpecError(f"{path}: no trace files (*.json or *.json.gz, one per rank)", field="trace")
    return files


def _parser_config() -> ParserConfig:
    cfg = ParserConfig.get_default_cfg()
    ParserConfig.enable_communication_args(cfg)
    cfg.add_args([a for a in ParserConfig.get_all_available_args().values() if a.raw_name == "Concrete Inputs"])
    cfg.set_parser_backend(ParserBackend.JSON)
    return cfg


def read_rank(path: Path, fallback_rank: int) -> RankTrace:
    """Parse one trace file; SpecError (one line naming the file) when it is not a readable profiler
    trace or has no ``ProfilerStep#<k>`` iteration."""
    logger = logging.getLogger("hta")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # HTA's pandas deprecations are not the user's business
            warnings.simplefilter("ignore")
            meta, df, symbols = parse_trace_file(str(path), _parser_config())
    except Exception as exc:  # a truncated gzip, broken JSON or a foreign file: HTA raises many kinds
        why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise SpecError(f"{path}: not a readable PyTorch profiler trace ({type(exc).__name__}: {why})",
                        field="trace") from None
    finally:
        logger.setLevel(level)
    if df is None or df.empty or "name" not in df:
        raise SpecError(f"{path}: no trace events", field="trace")
    table = symbols.get_sym_table()
    df = df.rename(columns={"index": "ev"})
    df["name"] = [table[i] for i in df["name"]]
    df["cat"] = [table[i] for i in df["cat"]]
    for col in COLUMNS:
        if col not in df:
            df[col] = -1
    if not df["name"].map(lambda n: STEP_ANNOTATION.match(n) is not None).any():
        raise SpecError(f"{path}: no ProfilerStep#<k> annotation; profile with torch.profiler.profile(schedule=...) "
                        "and call prof.step() after every training step", field="trace")
    dist = meta.get("distributedInfo") or {}
    props = meta.get("deviceProperties") or []
    device = props[0].get("name", "gpu") if props and isinstance(props[0], dict) and props[0] else "cpu"
    return RankTrace(path=str(path), rank=int(dist.get("rank", fallback_rank)),
                     world_size=int(dist.get("world_size", 1)), device=device, backend=str(dist.get("backend", "")),
                     events=df[list(COLUMNS)].reset_index(drop=True), groups=list(dist.get("pg_config") or []))


def read_traces(path: str | Path) -> list[RankTrace]:
    """Every rank's trace under ``path`` (a folder of per-rank files, or one file), sorted by rank."""
    ranks = [read_rank(p, i) for i, p in enumerate(trace_files(Path(path)))]
    seen: dict[int, str] = {}
    for r in ranks:
        if r.rank in seen:
            raise SpecError(f"{path}: two traces of rank {r.rank} ({seen[r.rank]}, {r.path})", field="trace")
        seen[r.rank] = r.path
    return sorted(ranks, key=lambda r: r.rank)
