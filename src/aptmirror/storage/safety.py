"""Refuse writes that would leave the repository's tree through a planted symlink.

Paths from indexes are already checked lexically (:mod:`aptmirror.debian.paths`: no ``..``,
no absolute path, no NUL). That is not enough when the mirror tree itself holds a symlink
pointing outside (``mirror/HOST/debian/pool/main -> /etc``): writing ``pool/main/x`` would
follow it. So before anything is written, the destination's directory is resolved with
``os.path.realpath`` and must stay inside the (resolved) repository root. A symlink *at* the
repository root is the administrator's choice (moving one repository to another disk) and is
allowed; one below it is refused. The final name itself is never followed (files are created
with ``O_NOFOLLOW`` and renamed over whatever is there).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aptmirror.errors import UnsafePathError
from aptmirror.storage.treescan import LocalTree

__all__ = ["DirGuard", "ensure_inside", "is_inside"]


def is_inside(path: Path | str, root: Path | str) -> bool:
    """Does ``path``, symlinks resolved, stay under ``root`` (symlinks resolved)?"""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def ensure_inside(path: Path | str, root: Path | str) -> None:
    """Raise UnsafePathError when ``path`` resolves outside ``root``."""
    if not is_inside(path, root):
        raise UnsafePathError(
            str(path),
            f"resolves to {os.path.realpath(path)}, outside {os.path.realpath(root)}: a symlink "
            "in the mirror tree points outside it; remove that symlink",
        )


class DirGuard:
    """:func:`ensure_inside` for many files of one root, one ``lstat`` per directory (or a
    look-up in ``tree``, find's listing of the mirror, when there is one).

    A directory is safe when its parent is safe and it is not a symlink (or is a symlink
    that resolves inside the root); only symlinks are resolved with ``realpath``. A missing
    directory is safe: we create it as a real directory.
    """

    def __init__(self, root: Path, tree: LocalTree | None = None) -> None:
        self.root = root
        # what find(1) listed before planning; none (an lstat each) when not given
        self.tree = LocalTree() if tree is None else tree
        self._root = os.fspath(root).rstrip(os.sep)
        self._ok: set[str] = {self._root}
        self._missing: set[str] = set()  # checked and absent (so is everything below them)

    def check(self, dest: Path | str) -> bool:
        """Raise UnsafePathError when the directory of ``dest`` resolves outside the root;
        else tell whether that directory existed when first checked (False: nothing can be
        in it yet, so the caller may skip looking for ``dest`` or its partial file)."""
        # rpartition, not os.path.dirname (5 times slower): asked once per pool file, for
        # paths under the root, which have no trailing or doubled slashes
        directory = os.fspath(dest).rpartition(os.sep)[0]
        if directory not in self._ok:  # most are known
            self._check_dir(directory)
        return directory not in self._missing

    def _check_dir(self, directory: str) -> None:
        if directory in self._ok:
            return
        if not directory.startswith(self._root + os.sep):
            ensure_inside(directory, self.root)
        else:
            parent = os.path.dirname(directory)
            self._check_dir(parent)
            if parent in self._missing:
                self._missing.add(directory)
            else:
                mode = self.tree.mode(directory)
                if mode is None:
                    self._missing.add(directory)
                elif stat.S_ISLNK(mode):
                    ensure_inside(directory, self.root)
        self._ok.add(directory)
