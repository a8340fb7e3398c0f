"""What is under the repository roots, listed by find(1) in a process of its own.

Planning compares every pool file the indexes list with what is on disk, and checks each
pool directory for a planted symlink: one ``lstat`` each (≈ 3 µs; 15,000 files and 3,200
directories are most of planning an update after the parsing). ``find`` does the same
walk on the other core while this process fetches the Release files and the indexes, and
planning then looks each path up in a dict (:class:`LocalTree`).

The listing is what was there when ``find`` walked the tree, as an ``lstat`` at planning is
what was there then: a file that appears later is met by the writer's ``O_EXCL`` and a
changed one by the download's own checks. Whenever ``find`` is missing, fails (an
unreadable directory, an entry that vanished during the walk) or lists more than
``MAX_OUTPUT`` bytes (it is stopped as soon as its listing passes that size: a root that
holds far more than is mirrored costs no long wait), there is no listing and planning
takes an ``lstat`` per path as before: the listing only saves time, it never decides
anything an ``lstat`` would not.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from collections.abc import Iterable
from typing import IO

# GNU find: the path, then the type letter and size in bytes, each ended by NUL
_FORMAT = "%p\\0%y%s\\0"
# Larger listings (≈ 100 bytes a path: 160,000 entries, a whole Debian's pool of one
# architecture) are not read: held in a dict they would cost more memory than the lstats
# they save are worth.
MAX_OUTPUT = 16 << 20
POLL_INTERVAL = 0.01  # seconds between two looks at a find that is still walking

# find's %y letters
_KINDS = {
    "f": stat.S_IFREG,
    "d": stat.S_IFDIR,
    "l": stat.S_IFLNK,
    "p": stat.S_IFIFO,
    "s": stat.S_IFSOCK,
    "b": stat.S_IFBLK,
    "c": stat.S_IFCHR,
}
_LETTERS = {kind: letter for letter, kind in _KINDS.items()}


def _lstat_entry(path: str) -> str | None:
    """What find would have listed for ``path``, from an ``lstat``; None if it is not there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return f"{_LETTERS.get(stat.S_IFMT(st.st_mode), '?')}{st.st_size}"


class LocalTree:
    """The entries under some directories at one moment: path -> type letter and size
    (``"f1234"``: a regular file of 1234 bytes; ``"d4096"`` a directory, ``"l7"`` a
    symlink). A path under a listed root that is not here did not exist — unless a
    directory above it is a symlink, which find does not follow and an ``lstat`` does:
    such a path, and any path outside the roots, is answered with an ``lstat``. So
    ``LocalTree()``, listing no root, answers every question with an ``lstat``: what
    planning uses when there is no listing."""

    __slots__ = ("_entries", "_roots")

    def __init__(self, roots: Iterable[str] = (), entries: dict[str, str] | None = None) -> None:
        self._roots = tuple(r.rstrip(os.sep) + os.sep for r in roots)
        self._entries = {} if entries is None else entries

    def covers(self, path: str) -> bool:
        """Is ``path`` below one of the listed roots (so the listing may answer for it)?
        Not a root itself: find follows a root that is a symlink, an lstat does not."""
        return path.startswith(self._roots)

    def _below_link(self, path: str) -> bool:
        """Is a directory between ``path`` (not listed) and its root a symlink?"""
        directory = path
        while True:
            directory = directory.rpartition(os.sep)[0]
            if not directory.startswith(self._roots):
                return False
            entry = self._entries.get(directory)
            if entry is not None:
                return entry[0] == "l"

    def _unlisted(self, path: str) -> str | None:
        """The entry of ``path``, which the listing does not hold: none if the listing can
        tell it did not exist, else from an ``lstat``."""
        if self.covers(path) and not self._below_link(path):
            return None
        return _lstat_entry(path)

    def mode(self, path: str) -> int | None:
        """The file type bits (``stat.S_IFMT``) of ``path``; None if it did not exist."""
        entry = self._entries.get(path)
        if entry is None and (entry := self._unlisted(path)) is None:
            return None
        return _KINDS.get(entry[0], stat.S_IFSOCK)  # any other: neither a file nor a directory

    def take_file(self, path: str, size: int) -> tuple[bool, bool]:
        """(needs downloading: not a regular file of ``size`` bytes, something exists
        there); and forget ``path`` if it is a file (each is asked about once: the
        listing shrinks as the plan grows)."""
        entry = self._entries.pop(path, None)
        if entry is None:
            entry = self._unlisted(path)
        elif entry[0] != "f":  # kept: a directory's entry answers for what is below it
            self._entries[path] = entry
        return entry != f"f{size}", entry is not None

    def holds(self, path: str, size: int) -> bool:
        """Is ``path`` a regular file of ``size`` bytes? (Not forgotten.)"""
        entry = self._entries.get(path)
        if entry is None:
            entry = self._unlisted(path)
        return entry == f"f{size}"

    def __len__(self) -> int:
        return len(self._entries)


def parse_listing(roots: Iterable[str], output: bytes) -> LocalTree | None:
    """The :class:`LocalTree` of ``find``'s output in :data:`_FORMAT`; None if malformed."""
    if output and not output.endswith(b"\0"):
        return None
    fields = output.decode("utf-8", "surrogateescape").split("\0")
    fields.pop()  # after the last NUL
    if len(fields) % 2:
        return None
    it = iter(fields)
    entries = dict(zip(it, it, strict=True))
    roots = list(roots)
    for root in roots:  # find -H describes a root that is a symlink as its target
        entries.pop(root.rstrip(os.sep), None)  # an lstat answers for the root itself
    return LocalTree(roots, entries)


class TreeScan:
    """``find`` listing the repository roots in the background: :meth:`start`, then
    :meth:`result` once the listing is needed, or :meth:`close` to give it up."""

    def __init__(
        self,
        covered: list[str],
        proc: subprocess.Popen[bytes] | None = None,
        out: IO[bytes] | None = None,
        failed: bool = False,
    ) -> None:
        self._covered = covered
        self._proc = proc
        self._out = out
        self._failed = failed

    @classmethod
    def start(cls, roots: Iterable[str]) -> TreeScan:
        """Start listing the roots (absolute paths) that are directories; needs no event
        loop, so a run starts it before importing the rest (its first 0.1 s leave the other
        core idle). A root that does not exist is listed as empty; one that is something
        else (a file, a dangling symlink) is left to an ``lstat`` of each path."""
        wanted = sorted(set(roots))
        present = [r for r in wanted if os.path.isdir(r)]
        covered = present + [r for r in wanted if not os.path.lexists(r)]
        if not present:
            return cls(covered)
        out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            proc = subprocess.Popen(
                # -H: a root may be a symlink (a repository moved to another disk)
                ["find", "-H", *present, "-printf", _FORMAT],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        except OSError:  # no find(1): plan with an lstat per path
            out.close()
            return cls(covered, failed=True)
        return cls(covered, proc, out)

    async def result(self) -> LocalTree | None:
        """The listing once ``find`` has finished; None when it could not list everything
        (every path is then looked at with an ``lstat``)."""
        import asyncio  # loaded by then; not before find starts (see start)

        proc, out = self._proc, self._out
        if self._failed:
            return None
        if proc is None or out is None:
            return LocalTree(self._covered, {})  # nothing was there
        try:
            while (status := proc.poll()) is None:  # still walking (a large tree, a cold disk)
                if os.fstat(out.fileno()).st_size > MAX_OUTPUT:
                    return None  # it would not be read: no use waiting for the rest
                await asyncio.sleep(POLL_INTERVAL)
            if status != 0 or os.fstat(out.fileno()).st_size > MAX_OUTPUT:
                return None
            out.seek(0)
            return parse_listing(self._covered, out.read())
        except OSError:  # the listing's own file could not be read back
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Stop ``find`` if it still runs and drop its output; no result after this."""
        proc, out = self._proc, self._out
        self._proc = self._out = None
        self._failed = True
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if out is not None:
            out.close()
