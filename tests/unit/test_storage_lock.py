"""RunLock: exclusive flock on var/apt-mirror.lock."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aptmirror.errors import LockError, StorageError
from aptmirror.storage.lock import RunLock

HOLDER = """
import sys
from aptmirror.storage.lock import RunLock
lock = RunLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_acquire_writes_pid_and_release_deletes(tmp_path: Path) -> None:
    lock = RunLock(tmp_path)
    lock.acquire()
    assert lock.held
    assert (tmp_path / "apt-mirror.lock").read_text() == f"{os.getpid()}\n"
    lock.release()
    assert not lock.held
    assert not (tmp_path / "apt-mirror.lock").exists()
    lock.release()  # idempotent


def test_second_acquire_in_other_process_fails(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LockError) as info:
            RunLock(tmp_path).acquire()
        message = str(info.value)
        assert message.startswith("apt-mirror is already running, exiting")
        assert str(tmp_path / "apt-mirror.lock") in message
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    # The holder died without releasing: the stale file must not block us.
    assert (tmp_path / "apt-mirror.lock").exists()
    with RunLock(tmp_path):
        pass


def test_second_lock_in_same_process_fails(tmp_path: Path) -> None:
    with RunLock(tmp_path), pytest.raises(LockError):
        RunLock(tmp_path).acquire()


def test_stale_file_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "apt-mirror.lock").write_text("999999\n")
    with RunLock(tmp_path) as lock:
        assert lock.held
        assert (tmp_path / "apt-mirror.lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / "apt-mirror.lock").exists()


def test_reacquire_same_object_is_an_error(tmp_path: Path) -> None:
    with RunLock(tmp_path) as lock, pytest.raises(StorageError):
        lock.acquire()


def test_missing_var_directory(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        RunLock(tmp_path / "missing").acquire()


def test_lock_not_inherited_by_children(tmp_path: Path) -> None:
    with RunLock(tmp_path):
        # A child started while we hold the lock (the postmirror script) must not keep
        # the descriptor: after we release, it must be free even while the child lives.
        child = subprocess.Popen(["sleep", "30"])
    try:
        with RunLock(tmp_path):
            pass
    finally:
        child.kill()
        child.wait()
