"""Jobs that talk and stop (issue 24): ``validate run`` reports each finished job while it runs, and
SIGHUP / SIGTERM stop the whole job group like Ctrl-C: paraplan exits 128 + the signal, the supervisor,
its forkserver and every rank are gone, and nothing is written. Every wait here is bounded by an event
(a progress line, the process exit) with a generous limit, never by a wall-clock assertion."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.validate

#: Generous limits for waits on a loaded 2-core machine (a job here takes seconds when idle).
FIRST_JOB_LIMIT_S = 600
EXIT_LIMIT_S = 60


def _group_members(pgid: int) -> list[str]:
    """Live (not zombie) processes of process group ``pgid``."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(entry.name)
    return alive


def _supervisor_pid(workdir: Path) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "validate.supervisor" in cmd and str(workdir) in cmd:
                return int(entry.name)
    return None


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_signal_stops_the_job_group_and_writes_nothing(tmp_path, sig):
    out, workdir = tmp_path / "results.json", tmp_path / "work"
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner", "validate", "run", "--layout", "tp=2", "--layout", "pp=2", "--steps", "1",
         "--warmup", "1", "--out", str(out), "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PARAPLAN_DEBUG": ""})
    try:
        ready, _, _ = select.select([proc.stderr], [], [], FIRST_JOB_LIMIT_S)
        assert ready, "no progress line"
        first = proc.stderr.readline()  # piped progress: one line per finished job
        assert "validate run: 1/2 done" in first, first
        sup = _supervisor_pid(workdir)
        assert sup is not None and _group_members(sup), "the second job should be running"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=EXIT_LIMIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err
    assert f"error: interrupted ({signal.Signals(sig).name})" in err and "Traceback" not in err
    assert not out.exists()
    for _ in range(EXIT_LIMIT_S * 10):  # the group was SIGKILLed; wait for the kernel to tear it down
        if not _group_members(sup):
            break
        time.sleep(0.1)
    assert _group_members(sup) == []
