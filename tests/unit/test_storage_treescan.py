"""storage.treescan: find(1)'s listing answers as an lstat of each path would, and any
doubt (no find, a failing or slow one, too much output) means no listing at all."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import pytest

from aptmirror.storage import treescan
from aptmirror.storage.treescan import LocalTree, TreeScan, parse_listing


def _listing(*roots: Path) -> LocalTree | None:
    scan = TreeScan.start(os.fspath(r) for r in roots)
    return asyncio.run(scan.result())


def _local_state(dest: str, size: int) -> tuple[bool, bool]:
    """What planning asked of an lstat before the listing: (needs downloading, exists)."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return True, False
    return st.st_size != size or not stat.S_ISREG(st.st_mode), True


def _lstat_mode(path: str) -> int | None:
    try:
        return stat.S_IFMT(os.lstat(path).st_mode)
    except FileNotFoundError:
        return None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A repository root with every kind of entry planning may meet."""
    root = tmp_path / "host" / "debian"
    pool = root / "pool" / "main" / "h" / "hello"
    pool.mkdir(parents=True)
    (pool / "hello_1.0_amd64.deb").write_bytes(b"x" * 1234)
    (pool / "empty.deb").write_bytes(b"")
    (pool / "link.deb").symlink_to("hello_1.0_amd64.deb")
    elsewhere = root / "pool" / "elsewhere" / "lib"
    elsewhere.mkdir(parents=True)
    (elsewhere / "beside.deb").write_bytes(b"z" * 7)
    (root / "pool" / "main" / "l").symlink_to(elsewhere.parent)  # a directory symlink
    os.mkfifo(pool / "fifo")
    (root / "pool" / "contrib").mkdir()
    (pool / "odd\nname \udcff.deb").write_bytes(b"yy")  # a newline, a byte not UTF-8
    return root


def _paths(root: Path) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(root):
        found += [os.path.join(directory, n) for n in (*dirs, *files)]
    absent = [f"{root}/pool/main/h/hello/gone.deb", f"{root}/pool/none/x.deb", f"{root}/x"]
    # find does not follow pool/main/l; an lstat of what is below it does
    linked = [f"{root}/pool/main/l/lib", f"{root}/pool/main/l/lib/beside.deb"]
    linked += [f"{root}/pool/main/l/lib/gone.deb", f"{root}/pool/main/l/none/x.deb"]
    return found + absent + linked


def test_the_listing_answers_as_lstat_does(tree: Path) -> None:
    listing = _listing(tree)
    assert listing is not None
    paths = _paths(tree)
    assert len(paths) > 10
    for path in paths:
        assert listing.mode(path) == _lstat_mode(path), path
        for size in (0, 2, 1234, 1235):
            expected = _lstat_mode(path) == stat.S_IFREG and os.lstat(path).st_size == size
            assert listing.holds(path, size) is expected, (path, size)
    # take_file answers as planning's lstat, then forgets the path
    for path in paths:
        before = len(listing)
        assert listing.take_file(path, 1234) == _local_state(path, 1234), path
        taken = _lstat_mode(path) == stat.S_IFREG and "/l/" not in path
        assert len(listing) == before - taken


def test_entries_below_a_directory_symlink_get_an_lstat(tree: Path) -> None:
    listing = _listing(tree)
    assert listing is not None
    assert listing.mode(f"{tree}/pool/main/l") == stat.S_IFLNK
    beside = f"{tree}/pool/main/l/lib/beside.deb"
    assert listing.mode(beside) == stat.S_IFREG
    assert listing.holds(beside, 7)
    assert listing.take_file(beside, 7) == (False, True)


def test_a_root_that_is_a_symlink_is_followed(tree: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    moved.symlink_to(tree)  # a repository moved to another disk
    listing = _listing(moved)
    assert listing is not None
    deb = f"{moved}/pool/main/h/hello/hello_1.0_amd64.deb"
    assert listing.holds(deb, 1234)
    assert listing.mode(f"{moved}/pool") == stat.S_IFDIR
    assert listing.mode(os.fspath(moved)) == stat.S_IFLNK  # the root itself: an lstat


def test_a_missing_root_is_empty_and_needs_no_process(tmp_path: Path) -> None:
    scan = TreeScan.start([os.fspath(tmp_path / "not-yet")])
    assert scan._proc is None
    listing = asyncio.run(scan.result())
    assert listing is not None and len(listing) == 0
    assert listing.covers(f"{tmp_path}/not-yet/pool/a.deb")
    assert listing.take_file(f"{tmp_path}/not-yet/pool/a.deb", 1) == (True, False)


def test_paths_outside_the_roots_get_an_lstat(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.deb").write_bytes(b"abc")
    listing = _listing(tree)
    assert listing is not None
    assert not listing.covers(f"{other}/a.deb")
    assert listing.mode(f"{other}/a.deb") == stat.S_IFREG
    assert listing.holds(f"{other}/a.deb", 3)
    assert listing.take_file(f"{other}/a.deb", 3) == (False, True)
    assert listing.take_file(f"{other}/b.deb", 3) == (True, False)


def test_a_root_that_is_a_file_is_left_to_lstat(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    listing = _listing(tmp_path / "file")
    assert listing is not None
    assert not listing.covers(f"{tmp_path}/file/pool/a.deb")


def _fake_find(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "find").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "find").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_no_find_means_no_listing(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", os.fspath(tmp_path / "empty"))
    assert _listing(tree) is None


@pytest.mark.parametrize(
    "script",
    [
        "exit 1",  # an unreadable directory, an entry gone during the walk
        "printf 'a\\0'",  # cut short
        "printf 'a\\0f1'",  # no final NUL
        "printf 'a\\0f1\\0b\\0'",  # an odd number of fields
    ],
)
def test_a_failing_or_garbled_find_means_no_listing(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str
) -> None:
    _fake_find(tmp_path, monkeypatch, script)
    assert _listing(tree) is None


def test_too_large_a_listing_is_not_read(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(treescan, "MAX_OUTPUT", 100)
    assert _listing(tree) is None
    monkeypatch.setattr(treescan, "MAX_OUTPUT", 1 << 20)
    assert _listing(tree) is not None


def test_a_listing_that_cannot_be_read_back_is_no_listing(tree: Path) -> None:
    scan = TreeScan.start([os.fspath(tree)])
    assert scan._out is not None
    scan._out.close()
    scan._out = open("/proc/self/mem", "rb")  # noqa: SIM115 - EIO at offset 0; closed by result
    assert asyncio.run(scan.result()) is None
    assert scan._out is None  # closed


def test_a_find_whose_listing_grows_too_large_is_stopped_at_once(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(treescan, "MAX_OUTPUT", 100)
    _fake_find(tmp_path, monkeypatch, "head -c 2000 /dev/zero; exec sleep 60")
    scan = TreeScan.start([os.fspath(tree)])
    proc = scan._proc
    started = time.monotonic()
    assert asyncio.run(scan.result()) is None
    assert time.monotonic() - started < 10  # not the 60 s of the rest of its walk
    assert proc is not None and proc.returncode is not None  # killed


def test_a_slow_find_is_waited_for_without_blocking_the_loop(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = next(
        p for d in os.environ["PATH"].split(":") if os.access(p := os.path.join(d, "find"), os.X_OK)
    )
    _fake_find(tmp_path, monkeypatch, f'sleep 0.5; exec {real} "$@"')
    scan = TreeScan.start([os.fspath(tree)])
    ticks = 0

    async def both() -> LocalTree | None:
        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        try:
            return await scan.result()
        finally:
            ticker.cancel()

    listing = asyncio.run(both())
    assert listing is not None
    assert listing.holds(f"{tree}/pool/main/h/hello/hello_1.0_amd64.deb", 1234)
    assert ticks >= 10  # the loop ran while find walked


def test_close_stops_find_and_leaves_no_result(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_find(tmp_path, monkeypatch, "exec sleep 60")
    scan = TreeScan.start([os.fspath(tree)])
    proc = scan._proc
    assert proc is not None and proc.poll() is None
    started = time.monotonic()
    scan.close()
    assert time.monotonic() - started < 5
    assert proc.returncode is not None  # killed and reaped
    scan.close()  # twice is fine
    assert asyncio.run(scan.result()) is None


def test_parse_listing() -> None:
    listing = parse_listing(["/m/r"], b"/m/r/p\0d4096\0/m/r/a.deb\0f3\0/m/r/l\0l5\0")
    assert listing is not None
    assert listing.holds("/m/r/a.deb", 3)
    assert not listing.holds("/m/r/a.deb", 4)
    assert listing.mode("/m/r/p") == stat.S_IFDIR
    assert listing.mode("/m/r/l") == stat.S_IFLNK
    assert listing.mode("/m/r/b.deb") is None
    assert parse_listing(["/m/r"], b"") is not None
    assert parse_listing(["/m/r"], b"/m/r/a\0") is None
