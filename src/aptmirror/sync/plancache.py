"""A run whose indexes did not change skips reading them again.

Planning parses every ``Packages``/``Sources`` file (most of a no-op run's time after
start-up). When the verified Release files, the selected indexes, the configuration and
the program version are all the same as in the last run that planned without an error, the
plan is the same too: ``var/.aptmirror-plan`` keeps its pool paths and sizes (a text line
with the key, then the lists in :mod:`marshal` form: read in 3 ms where 15,000 text lines
took 10), and the run only checks each one (in find's listing of the mirror, see
:mod:`aptmirror.storage.treescan`, else with an ``lstat``). A file deleted or resized
by hand sends the run back to full planning, so it is fetched again as the Perl tool
would. The var/ lists (``ALL``, ``MD5``, ``SHA1``, ``SHA256``) stay as they are — the same
content — and ``NEW`` is emptied (nothing new this run).
"""

from __future__ import annotations

import hashlib
import marshal
import os

from aptmirror import __version__
from aptmirror.storage.atomic import atomic_write_bytes, atomic_write_text
from aptmirror.storage.treescan import LocalTree
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import SuiteIndexes
from aptmirror.sync.pool import PoolPlan

CACHE_NAME = ".aptmirror-plan"
_MAGIC = "aptmirror-plan 2"
_KEPT_LISTS = ("ALL", "MD5", "SHA1", "SHA256")


def plan_key(ctx: RunContext, indexes: list[SuiteIndexes]) -> str:
    """What the plan depends on: settings, jobs, verified Release files, chosen indexes."""
    h = hashlib.sha256(f"{_MAGIC} {__version__}\n{ctx.settings!r}\n".encode())
    for idx in indexes:
        h.update(f"{idx.verified.job!r}\n".encode())
        for name, path in sorted(idx.verified.files.items()):
            h.update(f"{name}\n".encode())
            h.update(path.read_bytes())
        for kind, path in idx.parseable:
            h.update(f"{kind} {path}\n".encode(errors="surrogateescape"))
    return h.hexdigest()


def reuse(ctx: RunContext, key: str, plan: PoolPlan) -> bool:
    """Fill ``plan`` from the cache when it was saved under ``key`` (:func:`plan_key`) and
    every file is in place."""
    if ctx.failures:
        return False
    try:
        header, _, body = (ctx.var / CACHE_NAME).read_bytes().partition(b"\n")
        if header != f"{_MAGIC} {key}".encode():
            return False
        if not all((ctx.var / name).is_file() for name in _KEPT_LISTS):
            return False
        # marshal.loads: marshal.load on a file object reads it piecemeal, 8 times slower
        warnings, paths, sizes = marshal.loads(body)
        keep = _check(paths, sizes, os.fspath(ctx.mirror), ctx.tree)
    except (OSError, ValueError, EOFError, TypeError):
        return False
    if keep is None:
        return False
    plan.keep = keep
    for text in warnings:
        ctx.warn(text)
    atomic_write_text(ctx.var / "NEW", "")
    return True


def _check(
    paths: list[str], sizes: list[int], mirror: str, tree: LocalTree
) -> dict[str, int] | None:
    """``{path: size}`` when every path is a regular file of its size (looked up in
    ``tree``: find's listing, else an ``lstat`` each), else None."""
    holds = tree.holds  # the loop runs once per pool file
    for rel, size in zip(paths, sizes, strict=True):
        if not holds(f"{mirror}/{rel}", size):
            return None
    return dict(zip(paths, sizes, strict=True))


def save(ctx: RunContext, key: str, plan: PoolPlan, warnings: list[str]) -> None:
    """Remember this plan (only when nothing failed so far; else forget the old one)."""
    path = ctx.var / CACHE_NAME
    if ctx.failures:
        path.unlink(missing_ok=True)
        return
    body = marshal.dumps((warnings, list(plan.keep), list(plan.keep.values())))
    atomic_write_bytes(path, f"{_MAGIC} {key}\n".encode() + body)
