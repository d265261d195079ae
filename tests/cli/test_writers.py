"""Writers never replace a non-regular file (issue 24): a symbolic link's target is written atomically
and the link stays; a FIFO or a character device is written through (a FIFO nobody reads is refused);
a folder, a socket, a read-only file and a new file under /dev are refused before any work."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest

from planner.errors import SpecError
from planner.io import output_target, write_atomic

PLAN = ["plan", "-m", "gpt3-125m", "-H", "a100-sxm-80gb", "-g", "8", "--global-batch", "16", "--export", "json"]


def test_plan_out_through_a_symlink_writes_its_target_and_keeps_the_link(run_cli, tmp_path):
    target, link = tmp_path / "t.json", tmp_path / "l.json"
    target.write_text("old")
    link.symlink_to("t.json")  # relative, as `ln -s t.json l.json`
    res = run_cli(*PLAN, "--out", link)
    assert res.exit_code == 0, res.stderr
    assert link.is_symlink() and os.readlink(link) == "t.json"
    assert json.loads(target.read_text())["kind"] == "paraplan-scenario"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.json", "t.json"]  # no temporary file left


def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "l.json"
    link.symlink_to(tmp_path / "new.json")
    write_atomic(link, "x")
    assert link.is_symlink() and (tmp_path / "new.json").read_text() == "x"


def test_plan_out_to_a_fifo_is_written_through(run_cli, tmp_path):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo) as fh:
            got["text"] = fh.read()

    thread = threading.Thread(target=reader)
    thread.start()
    res = run_cli(*PLAN, "--out", fifo)
    thread.join(timeout=60)
    assert res.exit_code == 0, res.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a FIFO, not replaced by a file
    assert json.loads(got["text"])["kind"] == "paraplan-scenario"


def test_a_fifo_nobody_reads_is_refused_in_one_line(run_cli, tmp_path, monkeypatch):
    import planner.io

    monkeypatch.setattr(planner.io, "FIFO_WAIT_S", 0.1)
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    res = run_cli(*PLAN, "--out", fifo)
    assert res.exit_code == 2 and "no process read" in res.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_dev_null_is_written_through_and_nothing_under_dev_is_replaced(run_cli):
    before = os.stat("/dev/null")
    res = run_cli(*PLAN, "--out", "/dev/null")
    assert res.exit_code == 0, res.stderr
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    res = run_cli(*PLAN, "--out", "/dev/paraplan-test-new.json")
    assert res.exit_code == 2 and "under /dev" in res.stderr
    assert not os.path.exists("/dev/paraplan-test-new.json")


@pytest.mark.parametrize("kind", ["folder", "socket", "readonly"])
def test_refused_outputs(tmp_path, kind):
    path = tmp_path / "x"
    if kind == "folder":
        path.mkdir()
    elif kind == "socket":
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    else:
        path.write_text("keep")
        path.chmod(0o444)
    with pytest.raises(SpecError):
        output_target(path)
    with pytest.raises(SpecError):
        write_atomic(path, "new")
    if kind == "readonly":
        assert path.read_text() == "keep"


def test_an_existing_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "launch.sh"
    path.write_text("old")
    path.chmod(0o750)
    write_atomic(path, "new")
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o750
