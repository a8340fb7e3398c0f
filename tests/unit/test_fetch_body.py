"""aptmirror.fetch.body: a small body written in place, verified before any byte lands."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aptmirror.errors import VerificationError
from aptmirror.fetch import body
from aptmirror.fetch.body import FLUSH_SIZE, BodyWriter, Hasher, partial_name
from aptmirror.model import Checksums

LAST_MODIFIED = "Tue, 03 Mar 2026 10:00:00 GMT"


def checksums(data: bytes) -> Checksums:
    return Checksums(len(data), (("SHA256", hashlib.sha256(data).hexdigest()),))


def receive(dest: Path, data: bytes, *, in_place: bool, expected: Checksums | None = None) -> None:
    """``data`` in 16 KiB pieces through a BodyWriter, as the fetcher drives it."""
    expected = expected or checksums(data)
    writer = BodyWriter(partial_name(str(dest)), Hasher(expected), append=False, in_place=in_place)
    try:
        for start in range(0, len(data), 16384):
            if writer.add(data[start : start + 16384]):
                writer.flush()
        writer.finish("http://up/f.deb", expected, str(dest), LAST_MODIFIED, False)
    finally:
        writer.close()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of every os.open the writer makes."""
    paths: list[str] = []
    real = os.open

    def spy(path: str, flags: int, mode: int = 0o777) -> int:
        paths.append(os.fspath(path))
        return real(path, flags, mode)

    monkeypatch.setattr(body.os, "open", spy)
    return paths


def test_in_place_writes_the_destination_only(tmp_path: Path, opened: list[str]) -> None:
    dest = tmp_path / "pool" / "f.deb"
    data = os.urandom(50_000)
    receive(dest, data, in_place=True)
    assert dest.read_bytes() == data
    assert opened == [str(dest)]  # no partial file, no rename
    assert dest.stat().st_mtime == 1772532000  # upstream's Last-Modified
    assert os.listdir(dest.parent) == ["f.deb"]


def test_without_in_place_a_partial_file_is_renamed(tmp_path: Path, opened: list[str]) -> None:
    dest = tmp_path / "pool" / "f.deb"
    data = os.urandom(50_000)
    receive(dest, data, in_place=False)
    assert dest.read_bytes() == data
    assert opened == [partial_name(str(dest))]


def test_a_bad_body_never_reaches_the_destination(tmp_path: Path, opened: list[str]) -> None:
    dest = tmp_path / "pool" / "f.deb"
    data = os.urandom(50_000)
    wrong = checksums(os.urandom(50_000))
    with pytest.raises(VerificationError, match="SHA256 mismatch"):
        receive(dest, data, in_place=True, expected=wrong)
    assert opened == []  # verified before anything was opened
    assert not dest.exists()


def test_a_destination_that_appeared_meanwhile_is_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "f.deb"
    dest.write_bytes(b"put there after planning")
    data = os.urandom(50_000)
    receive(dest, data, in_place=True)
    assert dest.read_bytes() == data
    assert os.listdir(tmp_path) == ["f.deb"]
    assert dest.stat().st_mtime == 1772532000


def test_a_dangling_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    dest = tmp_path / "f.deb"
    dest.symlink_to(tmp_path / "elsewhere")
    receive(dest, b"x" * 1000, in_place=True)
    assert not dest.is_symlink() and dest.read_bytes() == b"x" * 1000
    assert not (tmp_path / "elsewhere").exists()


def test_a_failed_write_leaves_no_short_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "f.deb"
    real = os.write

    def disk_full(fd: int, data: bytes) -> int:
        real(fd, bytes(data)[:1000])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(body.os, "write", disk_full)
    with pytest.raises(OSError, match="No space left"):
        receive(dest, os.urandom(50_000), in_place=True)
    assert not dest.exists()


def test_a_body_flushed_before_the_end_goes_through_a_partial_file(
    tmp_path: Path, opened: list[str]
) -> None:
    """Bytes written before they were verified never go to the destination itself."""
    dest = tmp_path / "f.deb"
    data = os.urandom(FLUSH_SIZE + 50_000)
    receive(dest, data, in_place=True)
    assert dest.read_bytes() == data
    assert opened == [partial_name(str(dest))]
