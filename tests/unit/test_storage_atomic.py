"""Atomic writes and temporary names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aptmirror.errors import StorageError
from aptmirror.storage.atomic import (
    AtomicFile,
    atomic_write_bytes,
    atomic_write_text,
    ensure_parent,
    temp_path_for,
)


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_write_bytes_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "Release"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Release"]


def test_mode_is_a_normal_file(tmp_path: Path) -> None:
    target = tmp_path / "f"
    atomic_write_text(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_explicit_mode_and_fsync(tmp_path: Path) -> None:
    target = tmp_path / "script.sh"
    atomic_write_text(target, "#!/bin/sh\n", mode=0o755, fsync=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert target.read_text() == "#!/bin/sh\n"


def test_text_round_trips_surrogates(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9")  # not UTF-8: a surrogate escape
    atomic_write_text(tmp_path / "t", name + "\n")
    assert (tmp_path / "t").read_bytes() == b"caf\xe9\n"


def test_exception_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("old")
    with pytest.raises(RuntimeError), AtomicFile(target) as out:
        out.write(b"half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_temp_name_is_hidden_in_same_dir(tmp_path: Path) -> None:
    out = AtomicFile(tmp_path / "Packages").open()
    try:
        assert out.temp_path is not None
        assert out.temp_path.parent == tmp_path
        assert out.temp_path.name.startswith(".Packages.tmp-")
    finally:
        out.abort()
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_is_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        atomic_write_bytes(tmp_path / "no" / "file", b"")


def test_temp_path_for_and_ensure_parent(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "hello_1.0_all.deb"
    assert temp_path_for(target) == target.parent / ".hello_1.0_all.deb.aptmirror-partial"
    ensure_parent(target)
    assert target.parent.is_dir()
    ensure_parent(target)  # idempotent


def test_ensure_parent_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError):
        ensure_parent(tmp_path / "file" / "x" / "y")
