"""How a CPU launch runner leaves once its rank's state is written (tests/frameworks/test_launch.py).

With torch 2.13's gloo backend a rank can abort at interpreter teardown, after its state is written ("terminate
called without an active exception", SIGABRT from a native thread destroyed while joinable). CI has seen it in the
DeepSpeed and the torchtitan runners, on a quiet and on a loaded machine. The ranks therefore wait for each
other, then exit without the teardown; the test checks only the state each rank wrote.
"""

from __future__ import annotations

import os
import sys

import torch


def leave_together() -> None:
    """Barrier over the default group, flush, and exit 0 without interpreter or process-group teardown."""
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
