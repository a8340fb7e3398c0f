"""Cleaning: which files under the ``clean`` roots are no longer needed, and removing them.

Follows the Perl tool (B.9): each ``clean`` root that is a real directory is walked without
following symlinks; symlinks are always kept; a file is kept when this run references it or
a ``skip-clean`` entry covers it; a directory goes when nothing under it is kept; freed size
counts allocated blocks. The result is a ``CleanPlan`` that is either written to
``clean.sh`` or, with ``_autoclean``, executed here.

Deliberate differences from Perl (documented in the README):

* Every path in ``clean.sh`` is quoted with ``shlex.quote`` (Perl wrapped paths in bare
  single quotes, so a ``'`` in a file name broke or escaped the script).
* Wipe protection (``check_wipe``, from apt-mirror2's ``wipe_size_ratio`` /
  ``wipe_count_ratio``) refuses a plan that would delete too much of a root.
* The clean root itself is never removed, even when empty (Perl listed it for ``rmdir``).
* Overlapping roots are walked once, so no path is listed twice.
* Other non-regular files (sockets, FIFOs, devices) are kept, like symlinks, rather than
  left behind in a directory that the script then fails to remove.
* Partial downloads (``.NAME.aptmirror-partial`` and their ``.meta`` sidecars) are kept
  while ``NAME`` is still referenced: a later run resumes them. Once no index refers to
  ``NAME`` any more (a newer version replaced it) they go like any other unneeded file.

Imports only ``aptmirror.errors``, ``aptmirror.units`` and ``storage.atomic``.
"""

from __future__ import annotations

import contextlib
import errno
import marshal
import os
import shlex
import stat
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from pathlib import Path

from aptmirror.errors import StorageError, WipeProtectionError
from aptmirror.frozen import frozen
from aptmirror.storage.atomic import PARTIAL_SUFFIX, AtomicFile, ensure_parent
from aptmirror.units import format_size

SCRIPT_MODE = 0o755
_PERCENT_EVERY_FILES = 500  # as Perl
_DOT_EVERY_FILES = 10
_PERCENT_EVERY_DIRS = 50
BLOCK = 4096  # allocation unit assumed for a kept file counted by its declared size


@frozen
class RootPlan:
    """What cleaning one ``clean`` root would remove; paths relative to mirror_path."""

    root: str
    files: tuple[str, ...]
    dirs: tuple[str, ...]  # children before their parents
    bytes: int  # allocated size of ``files`` (st_blocks * 512, as Perl)
    total_files: int  # regular files walked under the root, kept or not
    # their allocated size (for the wipe protection); a kept file with a declared size
    # counts as that size in whole 4 KiB blocks, without a stat
    total_bytes: int


@frozen
class CleanPlan:
    """The removal plan over all clean roots (roots never overlap)."""

    roots: tuple[RootPlan, ...] = ()

    @property
    def files(self) -> list[str]:
        return [f for r in self.roots for f in r.files]

    @property
    def dirs(self) -> list[str]:
        return [d for r in self.roots for d in r.dirs]

    @property
    def file_count(self) -> int:
        return sum(len(r.files) for r in self.roots)

    @property
    def dir_count(self) -> int:
        return sum(len(r.dirs) for r in self.roots)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.roots)

    @property
    def total_files(self) -> int:
        return sum(r.total_files for r in self.roots)

    @property
    def total_bytes(self) -> int:
        return sum(r.total_bytes for r in self.roots)

    def summary(self) -> str:
        """Perl's wording: "<size> in <n> files and <m> directories"."""
        return (
            f"{format_size(self.bytes)} in {self.file_count} files and {self.dir_count} directories"
        )


def normalise_relpath(path: str) -> str:
    """``a//b/./c/`` → ``a/b/c``; refuse absolute-looking escapes via ``..``."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise StorageError(f"path {path!r} would leave the mirror tree")
    return "/".join(parts)


def _ancestors_or_self(rel: str) -> Iterable[str]:
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def _disjoint_roots(clean_roots: Sequence[str]) -> list[str]:
    roots = sorted({normalise_relpath(r) for r in clean_roots} - {""})
    kept: list[str] = []
    for root in roots:  # sorted, so a parent comes before its children
        if not any(root == k or root.startswith(k + "/") for k in kept):
            kept.append(root)
    return kept


# A directory listing from an earlier walk: (inode, mtime in ns, regular files, subdirectories).
Listing = tuple[int, int, tuple[str, ...], tuple[str, ...]]
# Only listings of directories unchanged for this long are remembered: a change after the
# walk then gives the directory another mtime, even with a coarse timestamp clock (a tick
# is 1-10 ms).
LISTING_MIN_AGE_NS = 100_000_000


def load_listings(path: Path) -> dict[str, Listing]:
    """The listings saved by :func:`save_listings` (none when missing or unreadable)."""
    try:
        listings = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    return listings if isinstance(listings, dict) else {}


def save_listings(path: Path, listings: Mapping[str, Listing]) -> None:
    """Keep ``listings`` for the next walk; a cache: failing to write it is not an error."""
    with contextlib.suppress(OSError, StorageError), AtomicFile(path) as out:
        out.write(marshal.dumps(dict(listings)))


def plan_clean(
    mirror_path: Path,
    clean_roots: Sequence[str],
    keep_files: Container[str],
    keep_trees: Sequence[str] = (),
    skip_clean: Sequence[str] = (),
    sizes: Mapping[str, int] | None = None,
    listings: Mapping[str, Listing] | None = None,
    learned: dict[str, Listing] | None = None,
) -> CleanPlan:
    """Walk the clean roots and list what is not needed.

    ``keep_files`` holds normalised paths relative to ``mirror_path`` (``host/path/pool/…``,
    no leading or double slash); ``sizes`` the declared sizes of some of them (the pool
    files: a stat each would cost more than the rest of the walk). ``keep_trees`` and
    ``skip_clean`` are relative files or directories whose whole subtree is kept. A root
    that is missing, not a directory or a symlink is skipped (as Perl does); an empty root
    (the whole mirror) is ignored.

    With ``learned``, the listing of every directory holding only regular files and
    directories is put there (by path relative to mirror_path); given back as ``listings``
    in a later walk, a directory whose inode and mtime are unchanged is not read again
    (one ``lstat`` instead of open, read, close: a third of a pool walk's time). An entry
    added or removed since changes the directory's mtime; a file changed in place does not
    matter here.
    Raises ``StorageError`` if a directory cannot be read: a tree we cannot see must not
    be half-cleaned.
    """
    trees = {normalise_relpath(t) for t in (*keep_trees, *skip_clean)} - {""}
    walk = _Walk(listings, learned, time.time_ns() - LISTING_MIN_AGE_NS)
    plans: list[RootPlan] = []
    for root in _disjoint_roots(clean_roots):
        try:
            st = os.lstat(mirror_path / root)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot stat {mirror_path / root}: {exc.strerror}") from exc
        if not stat.S_ISDIR(st.st_mode):
            continue
        inherited = any(a in trees for a in _ancestors_or_self(root))
        plans.append(_plan_root(mirror_path, root, inherited, keep_files, trees, sizes or {}, walk))
    return CleanPlan(tuple(plans))


def _is_dropped_suite_link(entry: os.DirEntry[str], rel: str, trees: set[str], kept: bool) -> bool:
    """A ``dists/SUITE -> .SUITE.<stamp>`` symlink (made by publish) whose snapshot is not kept.

    Other symlinks always stay, as in the Perl tool; this one would dangle once its snapshot
    directory is removed, because the suite is no longer in the configuration.
    """
    if kept or not entry.is_symlink() or not _is_suite_link(Path(entry.path)):
        return False
    return f"{rel}/{os.readlink(entry.path)}" not in trees


def _is_suite_link(path: Path) -> bool:
    """True for a symlink ``NAME -> .NAME.<stamp>`` as :mod:`aptmirror.storage.publish` makes."""
    try:
        target = os.readlink(path)
    except OSError:
        return False
    return "/" not in target and target.startswith(f".{path.name}.")


_PARTIAL_NAMES = (PARTIAL_SUFFIX, PARTIAL_SUFFIX + ".meta")


def _resumable(
    base: str,
    child: str,
    name: str,
    keep_files: Container[str],
    sizes: Mapping[str, int],
    trees: set[str],
) -> bool:
    """Whether a partial download ``child`` (or its ``.meta``) may still be resumed: the
    file it would become, ``.NAME.aptmirror-partial`` -> ``NAME`` beside it, is referenced
    (and, for a ``.meta``, the partial file is there). A name of another shape, not one of
    ours, is kept as before."""
    suffix = next(s for s in reversed(_PARTIAL_NAMES) if name.endswith(s))
    if not name.startswith(".") or len(name) <= len(suffix) + 1:
        return True
    if suffix != PARTIAL_SUFFIX:  # a sidecar: without its partial file, nothing to resume
        partial = child[: len(child) - len(suffix)] + PARTIAL_SUFFIX
        if not os.path.lexists(os.path.join(base, partial)):
            return False
    target = child[: len(child) - len(name)] + name[1 : -len(suffix)]
    return target in sizes or target in keep_files or target in trees


class _Walk:
    """Directory listings remembered between walks (see :func:`plan_clean`)."""

    def __init__(
        self,
        known: Mapping[str, Listing] | None,
        learned: dict[str, Listing] | None,
        settled_before_ns: int,
    ) -> None:
        self.known = known
        self.learned = learned
        self.settled_before_ns = settled_before_ns

    def cached(self, rel: str, path: str) -> tuple[os.stat_result | None, Listing | None]:
        """(the directory's lstat when listings are kept, its listing if still valid)."""
        if self.known is None and self.learned is None:
            return None, None
        st = os.lstat(path)
        listing = self.known.get(rel) if self.known is not None else None
        if listing is not None and (listing[0], listing[1]) != (st.st_ino, st.st_mtime_ns):
            listing = None
        if listing is not None and self.learned is not None:
            self.learned[rel] = listing
        return st, listing

    def learn(
        self, rel: str, st: os.stat_result | None, names: list[str], subdirs: list[str]
    ) -> None:
        if self.learned is not None and st is not None and st.st_mtime_ns < self.settled_before_ns:
            self.learned[rel] = (st.st_ino, st.st_mtime_ns, tuple(names), tuple(subdirs))


def _plan_root(
    mirror_path: Path,
    root: str,
    root_kept: bool,
    keep_files: Container[str],
    trees: set[str],
    sizes: Mapping[str, int],
    walk: _Walk,
) -> RootPlan:
    # Breadth-first list of directories; walking it backwards visits children first.
    dir_rel: list[str] = [root]
    dir_parent: list[int] = [-1]
    dir_kept: list[bool] = [root_kept]  # kept as a whole (a keep tree)
    needed: list[bool] = [root_kept]  # something under it is kept
    files: list[str] = []
    removed_bytes = total_files = total_bytes = 0
    base = os.fspath(mirror_path)
    index = 0

    def subdir(child: str, kept_tree: bool) -> None:
        child_kept = kept_tree or child in trees
        dir_rel.append(child)
        dir_parent.append(index)
        dir_kept.append(child_kept)
        needed.append(child_kept)

    def regular(child: str, name: str, kept_tree: bool) -> None:
        nonlocal total_files, total_bytes, removed_bytes
        total_files += 1
        declared = sizes.get(child)
        if declared is not None:  # a planned pool file: kept
            needed[index] = True
            total_bytes += -(-declared // BLOCK) * BLOCK
        elif (
            kept_tree
            or child in keep_files
            or child in trees
            or (
                name.endswith(_PARTIAL_NAMES)
                and _resumable(base, child, name, keep_files, sizes, trees)
            )
        ):
            needed[index] = True
            total_bytes += os.lstat(os.path.join(base, child)).st_blocks * 512
        else:
            files.append(child)
            size = os.lstat(os.path.join(base, child)).st_blocks * 512
            removed_bytes += size
            total_bytes += size

    while index < len(dir_rel):
        rel, kept_tree = dir_rel[index], dir_kept[index]
        path = os.path.join(base, rel)
        try:
            st, listing = walk.cached(rel, path)
            if listing is not None:  # unchanged since it was listed: the same entries
                for name in listing[2]:
                    regular(f"{rel}/{name}", name, kept_tree)
                for name in listing[3]:
                    subdir(f"{rel}/{name}", kept_tree)
                index += 1
                continue
            names: list[str] = []
            subdirs: list[str] = []
            plain = True  # only regular files and directories: its listing can be kept
            with os.scandir(path) as entries:
                for entry in entries:
                    child = f"{rel}/{entry.name}"
                    # regular files first: nearly every entry of a pool is one
                    if entry.is_file(follow_symlinks=False):
                        names.append(entry.name)
                        regular(child, entry.name, kept_tree)
                    elif entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.name)
                        subdir(child, kept_tree)
                    elif _is_dropped_suite_link(entry, rel, trees, kept_tree):
                        plain = False
                        files.append(child)  # our suite symlink whose snapshot goes too
                    else:
                        plain = False
                        needed[index] = True  # symlinks and special files always stay
            if plain:
                walk.learn(rel, st, names, subdirs)
        except OSError as exc:
            where = os.path.join(base, rel)
            raise StorageError(f"cannot read {where} while planning clean-up: {exc}") from exc
        index += 1
    dirs: list[str] = []
    for i in range(len(dir_rel) - 1, 0, -1):  # never the root (index 0)
        if needed[i]:
            needed[dir_parent[i]] = True
        else:
            dirs.append(dir_rel[i])
    return RootPlan(root, tuple(files), tuple(dirs), removed_bytes, total_files, total_bytes)


def _ratio_disabled(ratio: float) -> bool:
    # >= 1 can never trigger; 0 (or less) means "off", as in apt-mirror2.
    return ratio >= 1 or ratio <= 0


def check_wipe(plan: CleanPlan, size_ratio: float = 0.4, count_ratio: float = 0.4) -> None:
    """Refuse a plan deleting more than the given share of any one clean root.

    A ratio of 1 or more (or 0, as in apt-mirror2) disables that check. Raises
    ``WipeProtectionError`` naming every offending root.
    """
    problems: list[str] = []
    for root in plan.roots:
        exceeded: list[str] = []
        count_share = len(root.files) / root.total_files if root.total_files else 0.0
        size_share = root.bytes / root.total_bytes if root.total_bytes else 0.0
        if not _ratio_disabled(count_ratio) and count_share > count_ratio:
            exceeded.append(f"wipe_count_ratio {count_ratio:g}")
        if not _ratio_disabled(size_ratio) and size_share > size_ratio:
            exceeded.append(f"wipe_size_ratio {size_ratio:g}")
        if exceeded:
            problems.append(
                f"cleaning {root.root} would delete {len(root.files)} of {root.total_files}"
                f" files ({100 * count_share:.1f}%) / {format_size(root.bytes)} of"
                f" {format_size(root.total_bytes)} ({100 * size_share:.1f}%),"
                f" more than {' and '.join(exceeded)}; refusing — check the mirror.list"
                f" or raise {' and '.join(e.split()[0] for e in exceeded)}"
            )
    if problems:
        raise WipeProtectionError("\n".join(problems))


def _script_lines(mirror_path: Path, plan: CleanPlan) -> Iterable[str]:
    q = shlex.quote
    files, dirs = plan.files, plan.dirs
    yield "#!/bin/sh\n"
    yield "# Generated by aptmirror: removes files no longer referenced by the mirror.\n"
    yield "set -e\n\n"
    yield f"cd {q(os.path.abspath(mirror_path))}\n\n"
    yield f"echo {q(f'Removing {len(files)} unnecessary files [{format_size(plan.bytes)}]...')}\n"
    total = len(files)
    for i, rel in enumerate(files):
        yield f"rm -f -- {q(rel)}\n"
        if i % _PERCENT_EVERY_FILES == 0:
            yield f"printf '%s' '[{100 * i // total}%]'\n"
        if i % _DOT_EVERY_FILES == 0:
            yield "printf '%s' .\n"
    yield "echo 'done.'\necho\n\n"
    total = len(dirs)
    yield f"echo 'Removing {total} unnecessary directories...'\n"
    for i, rel in enumerate(dirs):
        quoted = q(rel)
        yield f"if test -d {quoted}; then rmdir -- {quoted}; fi\n"
        if i % _PERCENT_EVERY_DIRS == 0:
            yield f"printf '%s' '[{100 * i // total}%]'\n"
        yield "printf '%s' .\n"
    yield "echo 'done.'\necho\n"


def write_clean_script(path: Path, mirror_path: Path, plan: CleanPlan) -> None:
    """Write ``clean.sh`` (atomically, mode 0755) in the layout of apt-mirror 0.5.4.

    Written even for an empty plan. Paths are relative to ``mirror_path`` (the script
    ``cd``s there first) and every one is quoted with ``shlex.quote``: names with spaces,
    quotes, ``$(…)``, backticks or newlines are removed, never interpreted. Progress uses
    ``printf`` rather than ``echo -n``, which POSIX leaves unspecified.
    """
    ensure_parent(path)
    with AtomicFile(path, mode=SCRIPT_MODE) as out:
        for line in _script_lines(mirror_path, plan):
            out.write_text(line)


def write_empty_clean_script(path: Path) -> None:
    """With ``_autoclean`` Perl leaves ``clean.sh`` empty (and executable): do the same."""
    ensure_parent(path)
    with AtomicFile(path, mode=SCRIPT_MODE):
        pass


class _Guard:
    """Checks that a planned path stays inside its clean root, symlinks resolved."""

    def __init__(self, mirror_path: Path, root: str) -> None:
        self.mirror_path = mirror_path
        self.root = normalise_relpath(root)
        # The root's own parents may be symlinks (a host directory on another disk):
        # they are taken as configured. Below the root nothing may resolve elsewhere.
        self.real_root = os.path.realpath(mirror_path / self.root)
        self._dir_ok: dict[str, bool] = {}

    def absolute(self, rel: str) -> Path:
        try:
            norm = normalise_relpath(rel)
        except StorageError:
            norm = ""
        if norm != rel or not norm.startswith(self.root + "/"):
            raise StorageError(f"refusing to remove {rel!r}: not inside clean root {self.root}")
        parent = norm.rpartition("/")[0]
        ok = self._dir_ok.get(parent)
        if ok is None:
            real = os.path.realpath(self.mirror_path / parent)
            ok = real == self.real_root or real.startswith(self.real_root + os.sep)
            self._dir_ok[parent] = ok
        if not ok:
            raise StorageError(f"refusing to remove {rel!r}: its directory leaves {self.root}")
        return self.mirror_path / norm


def execute_clean(mirror_path: Path, plan: CleanPlan) -> tuple[int, int]:
    """Delete the planned files, then directories (``_autoclean``).

    Never follows symlinks: an entry that is now a symlink (other than a dropped suite's
    ``NAME -> .NAME.<stamp>`` link, which is removed itself) or no longer a regular file /
    directory is left alone; a directory that is no longer empty stays. Raises
    ``StorageError`` for a path that would leave its clean root, and, after finishing,
    if some files could not be deleted. Returns (files removed, directories removed).
    """
    files_removed = dirs_removed = 0
    failures: list[str] = []
    for root in plan.roots:
        guard = _Guard(mirror_path, root.root)
        for rel in root.files:
            target = guard.absolute(rel)
            try:
                mode = os.lstat(target).st_mode
                if not (stat.S_ISREG(mode) or (stat.S_ISLNK(mode) and _is_suite_link(target))):
                    continue
                os.unlink(target)  # never follows: a suite symlink itself is removed
                files_removed += 1
            except FileNotFoundError:
                continue
            except OSError as exc:
                failures.append(f"{target}: {exc.strerror}")
        for rel in root.dirs:
            target = guard.absolute(rel)
            try:
                if not stat.S_ISDIR(os.lstat(target).st_mode):
                    continue
                os.rmdir(target)
                dirs_removed += 1
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                    failures.append(f"{target}: {exc.strerror}")
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise StorageError(f"clean-up could not remove {failures[0]}{more}")
    return files_removed, dirs_removed
