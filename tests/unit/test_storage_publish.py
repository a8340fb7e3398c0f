"""link_or_copy: the hard link that by-hash paths and snapshots are made of."""

from __future__ import annotations

from pathlib import Path

from aptmirror.storage.publish import link_or_copy


def _same(a: Path, b: Path) -> bool:
    return a.stat().st_ino == b.stat().st_ino


def test_links_replaces_and_leaves_no_temporary_link(tmp_path: Path) -> None:
    src, other = tmp_path / "Packages", tmp_path / "Other"
    src.write_bytes(b"new")
    other.write_bytes(b"old")
    dest = tmp_path / "by-hash" / "SHA256" / "abc"
    link_or_copy(src, dest)  # creates the directory
    assert _same(src, dest)
    link_or_copy(src, dest)  # already that file: nothing to do
    assert _same(src, dest) and src.stat().st_nlink == 2
    link_or_copy(other, dest)  # another file: replaced
    assert _same(other, dest) and dest.read_bytes() == b"old"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["abc"]


def test_a_temporary_link_left_by_an_earlier_version_goes(tmp_path: Path) -> None:
    src = tmp_path / "Packages"
    src.write_bytes(b"x")
    dest = tmp_path / "abc"
    link_or_copy(src, dest)
    leftover = tmp_path / ".abc.aptmirror-link"
    leftover.hardlink_to(src)  # what rename(2) onto the same file used to leave
    link_or_copy(src, dest)
    assert not leftover.exists() and _same(src, dest)
