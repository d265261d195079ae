"""Which rank ended a job, when the exit watch saw nothing (a loaded machine): the rank that never
reported an error, not the peer that only lost its connection to it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

pytest.importorskip("torch")


@dataclass
class _Failure:
    exitcode: int
    timestamp: float
    name: str = "SIGKILL"

    def signal_name(self) -> str:
        return self.name


def test_the_killed_rank_is_named_not_the_peer_that_lost_it():
    from validate.results import RankResult
    from validate.supervisor import describe_failure

    ranks = [RankResult(rank=0, pid=10, status="failed", phase="sync", step=0,
                        error="RuntimeError: [pair.cc:534] Read error: Connection reset by peer"),
             RankResult(rank=1, pid=11, status="running", phase="step", step=0)]
    failures = {0: _Failure(1, 100.0), 1: _Failure(-9, 100.5)}
    rank, line = describe_failure(failures, ranks, exited={})
    assert rank == 1 and line.startswith("rank 1 died (killed by signal SIGKILL")
