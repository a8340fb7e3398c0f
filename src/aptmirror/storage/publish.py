"""Publish a suite's index files atomically (the "never a broken mirror" step).

``dists/<suite>`` in the mirror becomes a symlink to a complete, immutable snapshot
directory beside it (``dists/.<suite>.<stamp>``). A new run builds a new snapshot out of
hard links to the verified files in skel/, then swaps the symlink with one ``rename(2)``:
an HTTP client sees either the old InRelease with the old indexes or the new InRelease
with the new indexes, never a mix. The first time, when ``dists/<suite>`` is still a real
directory (a tree made by the Perl tool), the directory and the new symlink are exchanged
with ``renameat2(RENAME_EXCHANGE)``, which is atomic too.

By-hash objects of the previous generation are carried into the new snapshot, so a client
that read the old InRelease a moment before the swap still finds what it asks for by hash.
Old snapshots are returned to the caller, which deletes them after every suite is
published ("deletions last").

Flat repositories keep their indexes beside their packages, so no directory can be swapped:
indexes are replaced one by one, each atomically, with Release/InRelease/Release.gpg last.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
from collections.abc import Collection, Mapping, Sequence
from dataclasses import field
from pathlib import Path

from aptmirror.errors import StorageError
from aptmirror.frozen import frozen

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
RELEASE_NAMES = ("Release.gpg", "Release", "InRelease")  # published last, in this order


@frozen
class Published:
    changed: bool
    live_dir: Path  # the directory the suite symlink now points to
    obsolete: tuple[Path, ...] = field(default=())  # delete after every suite is published


def _exchange(a: Path, b: Path) -> None:
    """Atomically swap two paths (Linux renameat2). Falls back to two renames."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        fn = None
    if fn is not None:
        res = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if res == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL):
            raise StorageError(f"cannot exchange {a} and {b}: {os.strerror(err)}")
    # Non-atomic fallback (old kernels/filesystems): a window of microseconds.
    parked = b.with_name(b.name + ".parked")
    os.rename(b, parked)
    os.rename(a, b)
    os.rename(parked, a)


def link_or_copy(src: Path, dest: Path) -> None:
    """Hard-link ``src`` to ``dest`` (replacing dest); copy when links are impossible.

    Nothing to do when ``dest`` already is ``src`` (a by-hash link of an unchanged index):
    renaming a second link of the same file onto it would do nothing at all and leave the
    temporary link behind (rename(2)), as versions before this check did.
    """
    tmp = dest.with_name(f".{dest.name}.aptmirror-link")
    try:
        same = os.path.samestat(os.stat(src), os.lstat(dest))
    except OSError:
        same = False
    if same:
        tmp.unlink(missing_ok=True)  # one left behind by an earlier version
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dest)


def _same(a: Path | str, b: Path | str) -> bool:
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    if sa.st_dev == sb.st_dev:  # same filesystem: we hard-link, so same file = same inode
        return sa.st_ino == sb.st_ino
    return sa.st_size == sb.st_size and sa.st_mtime_ns == sb.st_mtime_ns


def _tree_files(root: Path) -> dict[str, str]:
    """relpath -> path of every file under ``root`` (plain strings: a few hundred files,
    walked at each publication; pathlib took two thirds of the time)."""
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    base = os.fspath(root)
    skip = len(base) + 1
    for dirpath, _dirs, names in os.walk(base):
        reldir = dirpath[skip:]
        for name in names:
            out[f"{reldir}/{name}" if reldir else name] = f"{dirpath}/{name}"
    return out


def _is_unchanged(current: Mapping[str, str], files: Mapping[str, Path]) -> bool:
    """Whether the live snapshot (``current``: :func:`_tree_files`) has exactly ``files``."""
    if not current:
        return False
    wanted = set(files)
    if not wanted <= current.keys():
        return False
    extra = current.keys() - wanted
    if any("/by-hash/" not in f"/{rel}" for rel in extra):
        return False
    return all(_same(current[rel], src) for rel, src in files.items())


def _previous_by_hash(current: Mapping[str, str], wanted: Mapping[str, Path]) -> dict[str, str]:
    """By-hash objects of the live snapshot (``current``) that held its canonical indexes'
    content."""
    # Same file: the same inode (hard links), or — when skel and mirror are on different
    # filesystems and everything was copied with its mtime — the same size and mtime.
    canonical: set[tuple[int, int]] = set()
    for rel, p in current.items():
        if "/by-hash/" not in f"/{rel}":
            st = os.stat(p)
            canonical.update(((st.st_dev, st.st_ino), (st.st_size, st.st_mtime_ns)))
    carried: dict[str, str] = {}
    for rel, p in current.items():
        if "/by-hash/" in f"/{rel}" and rel not in wanted:
            st = os.stat(p)
            if (st.st_dev, st.st_ino) in canonical or (st.st_size, st.st_mtime_ns) in canonical:
                carried[rel] = p
    return carried


def _ours(name: str, suite: str) -> bool:
    """Is ``name`` something publish makes for ``suite``: ``.SUITE.<stamp>[-N]`` (+ ``.old``
    or ``.link``)? Strict, so a user's file or another suite's snapshot never matches."""
    return (
        re.fullmatch(rf"\.{re.escape(suite)}\.\d{{8}}T\d{{6}}(-\d+)?(\.old|\.link)?", name)
        is not None
    )


def _is_our_snapshot(target: Path, suite_dir: Path, new: Path) -> bool:
    """Only delete what we made: a user's own symlink target is never removed."""
    return (
        target.parent == suite_dir.parent and _ours(target.name, suite_dir.name) and target != new
    )


def _leftovers(suite_dir: Path, keep: set[Path]) -> list[Path]:
    """Snapshots and temporary links of ``suite_dir`` left by an interrupted (killed) run."""
    found: list[Path] = []
    for sibling in suite_dir.parent.iterdir():
        if sibling in keep or not _ours(sibling.name, suite_dir.name):
            continue
        if sibling.is_symlink():
            sibling.unlink(missing_ok=True)
        elif sibling.is_dir():
            found.append(sibling)
    return found


def _fresh_snapshot(parent: Path, name: str, stamp: str, live: Path) -> Path:
    """``.<suite>.<stamp>`` — or with a ``-N`` suffix when that name is the live snapshot.

    Two runs within one second share a stamp; the live snapshot must never be rebuilt in
    place (clients read it). A leftover of an interrupted run is not live and is removed.
    """
    snapshot = parent / f".{name}.{stamp}"
    n = 0
    while snapshot.exists() and snapshot.resolve() == live.resolve():
        n += 1
        snapshot = parent / f".{name}.{stamp}-{n}"
    if snapshot.exists():
        shutil.rmtree(snapshot)
    return snapshot


@frozen
class Prepared:
    """A complete snapshot built beside the live one, not visible yet (see :func:`swap`)."""

    suite_dir: Path
    snapshot: Path


def prepare_suite(suite_dir: Path, files: Mapping[str, Path], stamp: str) -> Prepared | Published:
    """Build the new snapshot of ``suite_dir`` (relpath -> verified source); nothing becomes
    visible. Returns ``Published(False, …)`` when the live snapshot already has exactly
    these files. On an error the half-built snapshot is removed and the error raised."""
    parent = suite_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    live = suite_dir.resolve() if suite_dir.is_symlink() else suite_dir
    current = _tree_files(live)
    if _is_unchanged(current, files):
        return Published(False, live)
    snapshot = _fresh_snapshot(parent, suite_dir.name, stamp, live)
    try:
        _link_into(snapshot, sorted(_previous_by_hash(current, files).items()))
        _link_into(snapshot, sorted(files.items()))
    except BaseException:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise
    return Prepared(suite_dir, snapshot)


def _link_into(snapshot: Path, files: Sequence[tuple[str, Path | str]]) -> None:
    """Hard-link (else copy) each file into the new snapshot, which nothing else sees yet:
    no temporary name, one ``link`` a file (``link_or_copy`` makes five system calls)."""
    base = os.fspath(snapshot)
    made: set[str] = set()
    for rel, src in files:
        dest = f"{base}/{rel}"
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy2(src, dest)


def discard(prepared: Prepared) -> None:
    """Drop a snapshot that will not be published."""
    shutil.rmtree(prepared.snapshot, ignore_errors=True)


def prune_by_hash(staging: Path, keep: Collection[str]) -> int:
    """Remove from a suite's staging directory (in skel) the by-hash objects not in
    ``keep`` (relpaths): those of earlier index generations, which nothing reads any more —
    the published snapshot carries the previous generation's own links. Without this, skel
    kept a copy of every changed index of every update. The number removed."""
    removed = 0
    for rel, path in _tree_files(staging).items():
        if "/by-hash/" in f"/{rel}" and rel not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
    return removed


def publish_suite(suite_dir: Path, files: Mapping[str, Path], stamp: str) -> Published:
    """Make ``suite_dir`` show exactly ``files`` (relpath -> verified source) atomically."""
    prepared = prepare_suite(suite_dir, files, stamp)
    return prepared if isinstance(prepared, Published) else swap(prepared)


def swap(prepared: Prepared) -> Published:
    """Make a prepared snapshot the live one with one atomic rename."""
    suite_dir, snapshot = prepared.suite_dir, prepared.snapshot
    parent = suite_dir.parent
    tmp_link = parent / f"{snapshot.name}.link"
    tmp_link.unlink(missing_ok=True)
    os.symlink(snapshot.name, tmp_link)
    obsolete: list[Path] = []
    if suite_dir.is_symlink() or not suite_dir.exists():
        old_target = suite_dir.resolve() if suite_dir.is_symlink() else None
        os.replace(tmp_link, suite_dir)
        if old_target is not None and _is_our_snapshot(old_target, suite_dir, snapshot):
            obsolete.append(old_target)
    else:
        _exchange(tmp_link, suite_dir)  # tmp_link now names the old real directory
        old_dir = parent / f"{snapshot.name}.old"
        os.rename(tmp_link, old_dir)
        obsolete.append(old_dir)
    obsolete.extend(_leftovers(suite_dir, {snapshot, *obsolete}))
    return Published(True, snapshot, tuple(obsolete))


def publish_flat(flat_dir: Path, files: Mapping[str, Path]) -> bool:
    """Replace a flat repository's indexes one by one, Release files last."""
    changed = False
    ordered = sorted(files.items(), key=lambda kv: (Path(kv[0]).name in RELEASE_NAMES, kv[0]))
    for rel, src in ordered:
        dest = flat_dir / rel
        if not _same(dest, src):
            link_or_copy(src, dest)
            changed = True
    return changed


def remove_obsolete(paths: tuple[Path, ...] | list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
