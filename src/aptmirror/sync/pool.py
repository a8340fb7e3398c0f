"""Stages 3 and 4: plan the pool files from the parsed indexes, then download what is missing.

Planning streams every ``Packages``/``Sources`` once: each referenced file is written to the
var/ lists (ALL, MD5, SHA1, SHA256), remembered for cleaning, and queued for download only
when the local file is missing or has the wrong size — a local ``stat``, no request, as the
Perl tool does. Downloads run in ``nthreads`` workers; each file is hashed while streaming
and renamed into place only when its SHA256 matches.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aptmirror.debian.compression import iter_decompressed
from aptmirror.debian.packages import PoolFile, iter_binary_files, iter_source_files
from aptmirror.debian.paths import split_compression
from aptmirror.errors import FetchError, FormatError
from aptmirror.fetch.fetcher import FetchRequest
from aptmirror.storage.varfiles import VarFiles
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import READ_CHUNK, SuiteIndexes
from aptmirror.sync.jobs import RepoJob


@dataclass(slots=True)
class Download:
    url: str
    dest: Path
    file: PoolFile
    jobs: list[RepoJob]


@dataclass(slots=True)
class PoolPlan:
    keep: set[str] = field(default_factory=set)  # every referenced path, relative to mirror
    todo: dict[str, Download] = field(default_factory=dict)  # relpath -> download
    parsed: int = 0

    @property
    def todo_bytes(self) -> int:
        return sum(d.file.checksums.size for d in self.todo.values())


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            yield chunk


def _records(kind: str, path: Path) -> Iterator[PoolFile]:
    lines = iter_decompressed(_chunks(path), split_compression(path.name)[1])
    return iter_binary_files(lines) if kind == "packages" else iter_source_files(lines)


def _needs_download(dest: Path, size: int) -> bool:
    try:
        st = os.stat(dest, follow_symlinks=False)
    except FileNotFoundError:
        return True
    return st.st_size != size or not os.path.isfile(dest) or os.path.islink(dest)


def plan_suite(ctx: RunContext, idx: SuiteIndexes, plan: PoolPlan, var: VarFiles) -> None:
    """Add the suite's pool files to ``plan`` and ``var``; errors are recorded in ``ctx``."""
    job = idx.verified.job
    root = ctx.local_root(job)
    for kind, path in idx.parseable:
        try:
            for pf in _records(kind, path):
                rel = f"{root}/{pf.path}"
                plan.parsed += 1
                var.add_pool_file(
                    rel,
                    pf.checksums.get("MD5Sum"),
                    pf.checksums.get("SHA1"),
                    pf.checksums.get("SHA256"),
                )
                if rel in plan.keep:
                    if rel in plan.todo and job not in plan.todo[rel].jobs:
                        plan.todo[rel].jobs.append(job)
                    continue
                plan.keep.add(rel)
                dest = ctx.mirror / rel
                if _needs_download(dest, pf.checksums.size):
                    url = job.pool_url(pf.path)
                    plan.todo[rel] = Download(url, dest, pf, [job])
                    var.add_new(url)
        except FormatError as exc:
            ctx.fail(job, str(path), str(exc))


async def download_pool(ctx: RunContext, plan: PoolPlan) -> None:
    """Download every planned file with ``nthreads`` workers; failures go to ``ctx``."""
    queue: asyncio.Queue[Download] = asyncio.Queue()
    # Small files first would starve nothing here: order by path like the Perl tool.
    for rel in sorted(plan.todo):
        queue.put_nowait(plan.todo[rel])

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            req = FetchRequest(item.url, item.dest, item.file.checksums)
            try:
                await ctx.fetcher.fetch(req)
            except FetchError as exc:
                for job in item.jobs:
                    ctx.fail(job, exc.url, exc.reason)

    workers = min(ctx.settings.nthreads, max(1, queue.qsize()))
    await asyncio.gather(*(worker() for _ in range(workers)))
