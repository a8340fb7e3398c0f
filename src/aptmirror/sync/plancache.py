"""A run whose indexes did not change skips reading them again.

Planning parses every ``Packages``/``Sources`` file (most of a no-op run's time after
start-up). When the verified Release files, the selected indexes, the configuration and
the program version are all the same as in the last run that planned without an error, the
plan is the same too: ``var/.aptmirror-plan`` keeps its pool paths and sizes, and the run
only checks each one with an ``lstat``. A file deleted or resized by hand sends the run back
to full planning, so it is fetched again as the Perl tool would. The var/ lists (``ALL``,
``MD5``, ``SHA1``, ``SHA256``) stay as they are — the same content — and ``NEW`` is emptied
(nothing new this run).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable

from aptmirror import __version__
from aptmirror.storage.atomic import AtomicFile, atomic_write_text
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import SuiteIndexes
from aptmirror.sync.pool import PoolPlan

CACHE_NAME = ".aptmirror-plan"
_MAGIC = "aptmirror-plan 1"
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
        with (ctx.var / CACHE_NAME).open(encoding="utf-8", errors="surrogateescape") as fh:
            if fh.readline() != f"{_MAGIC} {key}\n":
                return False
            if not all((ctx.var / name).is_file() for name in _KEPT_LISTS):
                return False
            keep, warnings = _read_and_check(fh, os.fspath(ctx.mirror))
    except (OSError, ValueError):
        return False
    if keep is None:
        return False
    plan.keep = keep
    for text in warnings:
        ctx.warn(text)
    atomic_write_text(ctx.var / "NEW", "")
    return True


def _read_and_check(lines: Iterable[str], mirror: str) -> tuple[dict[str, int] | None, list[str]]:
    keep: dict[str, int] = {}
    warnings: list[str] = []
    for raw in lines:
        line = raw.rstrip("\n")
        if line.startswith("W\t"):
            warnings.append(line[2:])
            continue
        size_text, _, rel = line.partition("\t")
        size = int(size_text)
        try:
            st = os.lstat(f"{mirror}/{rel}")
        except OSError:
            return None, warnings
        if st.st_size != size or not stat.S_ISREG(st.st_mode):
            return None, warnings
        keep[rel] = size
    return keep, warnings


def save(ctx: RunContext, key: str, plan: PoolPlan, warnings: list[str]) -> None:
    """Remember this plan (only when nothing failed so far; else forget the old one)."""
    path = ctx.var / CACHE_NAME
    if ctx.failures:
        path.unlink(missing_ok=True)
        return
    lines = [f"{_MAGIC} {key}"]
    lines += [f"W\t{' '.join(text.splitlines())}" for text in warnings]
    lines += [f"{size}\t{rel}" for rel, size in plan.keep.items()]
    with AtomicFile(path) as out:
        out.write_text("\n".join(lines) + "\n")
