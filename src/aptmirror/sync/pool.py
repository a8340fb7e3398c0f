"""Stages 3 and 4: plan the pool files from the parsed indexes, then download what is missing.

Planning streams every ``Packages``/``Sources`` once: each referenced file is written to the
var/ lists (ALL, MD5, SHA1, SHA256), remembered for cleaning, and queued for download only
when the local file is missing or has the wrong size — a local ``stat``, no request, as the
Perl tool does. Downloads run in ``nthreads`` workers (smallest-first and largest-first, see
:mod:`aptmirror.fetch.batch`), in worker processes for a large batch; each file is hashed
while streaming and renamed into place only when its hashes match.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aptmirror.debian.compression import iter_decompressed
from aptmirror.debian.packages import PoolFile, iter_binary_files, iter_source_files
from aptmirror.debian.paths import split_compression
from aptmirror.errors import FetchError, FormatError
from aptmirror.fetch.batch import SizeQueue, fetch_all
from aptmirror.fetch.body import read_chunks
from aptmirror.fetch.fetcher import FetchRequest
from aptmirror.model import Checksums
from aptmirror.storage.varfiles import VarFiles
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import SuiteIndexes
from aptmirror.sync.jobs import RepoJob

REPLACEMENT_SUFFIX = ".aptmirror-new"


def staged_name(dest: str) -> str:
    """Where a new version of an existing pool file waits until its suites are published."""
    directory, slash, name = dest.rpartition("/")
    return f"{directory}{slash}.{name}{REPLACEMENT_SUFFIX}"


@dataclass(slots=True)
class Download:
    """One pool file to fetch; its path relative to mirror_path is its key in
    ``PoolPlan.todo``. Kept small (no URL, no path, the strongest hash only): a first mirror
    of a big archive holds one per file until the archive stage is done."""

    job: RepoJob  # the first suite listing it: the URL is the job's
    size: int
    strongest: tuple[str, str] | None  # (hash name, hex digest): all the fetcher checks
    # dest exists with other bytes, which the published indexes may still reference:
    # download beside it and swap it in only at publication (commit_replacements).
    replaces: bool = False
    # its directory did not exist at planning: no partial file to resume can be there
    fresh: bool = False
    others: list[RepoJob] | None = None  # further suites listing the same file

    @property
    def jobs(self) -> list[RepoJob]:
        return [self.job] if self.others is None else [self.job, *self.others]

    @property
    def checksums(self) -> Checksums:
        return Checksums(self.size, (self.strongest,) if self.strongest is not None else ())


@dataclass(slots=True)
class PoolPlan:
    # every referenced path, relative to mirror -> its size (the first listing's)
    keep: dict[str, int] = field(default_factory=dict)
    todo: dict[str, Download] = field(default_factory=dict)  # relpath -> download
    # relpath -> (repository URI, size and strongest hash) for repositories stored under a
    # mirror_path, which another repository may share: see _conflict
    owners: dict[str, tuple[str, Checksums]] = field(default_factory=dict)

    @property
    def todo_bytes(self) -> int:
        return sum(d.size for d in self.todo.values())

    def url_of(self, ctx: RunContext, rel: str, item: Download) -> str:
        """The upstream URL of the planned file ``rel`` (its key in ``todo``)."""
        return item.job.pool_url(rel[len(ctx.local_root(item.job)) + 1 :])


def pool_records(kind: str, path: Path) -> Iterator[PoolFile]:
    """The pool files named by a local ``Packages``/``Sources`` file (any compression)."""
    lines = iter_decompressed(read_chunks(path), split_compression(path.name)[1])
    return iter_binary_files(lines) if kind == "packages" else iter_source_files(lines)


def _compact(checksums: Checksums) -> Checksums:
    """Size and the strongest hash: all the fetcher checks (see fetch.body.Hasher)."""
    strongest = checksums.strongest()
    return Checksums(checksums.size, (strongest,) if strongest is not None else ())


def _local_state(dest: str, size: int) -> tuple[bool, bool]:
    """(needs downloading, something exists there) with one ``lstat``."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return True, False
    return st.st_size != size or not stat.S_ISREG(st.st_mode), True


def _conflict(plan: PoolPlan, rel: str, job: RepoJob, checksums: Checksums) -> str | None:
    """The other repository's URI when it stored ``rel`` in a shared tree with other
    contents than ``job`` lists (same size and hash, else they would overwrite each other)."""
    owner = plan.owners.get(rel)
    if owner is None or owner[0] == job.uri:
        return None
    uri, theirs = owner
    same = theirs.size == checksums.size
    strongest = theirs.strongest()
    if same and strongest is not None:
        ours = checksums.get(strongest[0])
        same = ours is None or ours == strongest[1]
    return None if same else uri


def plan_suite(ctx: RunContext, idx: SuiteIndexes, plan: PoolPlan, var: VarFiles) -> None:
    """Add the suite's pool files to ``plan`` and ``var``; errors are recorded in ``ctx``."""
    job = idx.verified.job
    root = ctx.local_root(job)
    mirror = os.fspath(ctx.mirror)
    guard = ctx.guard(job)
    for kind, path in idx.parseable:
        try:
            for pf in pool_records(kind, path):
                rel = f"{root}/{pf.path}"
                var.add_pool_file(
                    rel,
                    pf.checksums.get("MD5Sum"),
                    pf.checksums.get("SHA1"),
                    pf.checksums.get("SHA256"),
                )
                if rel in plan.keep:
                    other = _conflict(plan, rel, job, pf.checksums) if job.local_path else None
                    if other is not None:
                        reason = f"{other} stores other contents at {rel} (shared mirror_path)"
                        ctx.fail(job, job.pool_url(pf.path), reason)
                        continue
                    pending = plan.todo.get(rel)
                    if pending is not None and job not in pending.jobs:
                        if pending.others is None:
                            pending.others = []
                        pending.others.append(job)
                    continue
                plan.keep[rel] = pf.checksums.size
                if job.local_path is not None:
                    plan.owners[rel] = (job.uri, _compact(pf.checksums))
                dest = f"{mirror}/{rel}"
                # no planted symlink leads the write outside; a new directory holds nothing
                dir_exists = guard.check(dest)
                ctx.note_hash_strength(job, pf.path, pf.checksums)
                needed, exists = (
                    _local_state(dest, pf.checksums.size) if dir_exists else (True, False)
                )
                if needed:
                    size, strongest = pf.checksums.size, pf.checksums.strongest()
                    plan.todo[rel] = Download(job, size, strongest, exists, not dir_exists)
                    var.add_new(job.pool_url(pf.path))
        except FormatError as exc:
            index_url = job.url(path.relative_to(ctx.skel / ctx.suite_rel(job)).as_posix())
            ctx.fail(job, index_url, str(exc))


async def download_pool(ctx: RunContext, plan: PoolPlan) -> None:
    """Download every planned file with ``nthreads`` transfers; failures go to ``ctx``.

    Order: see :mod:`aptmirror.fetch.batch`. A large batch is spread over this process and
    worker processes (``pool_processes``, see :mod:`aptmirror.sync.pool_procs`); a small
    one, or ``pool_processes 1``, runs in this process alone.
    """
    items = list(plan.todo.items())
    if not items:
        return
    # imported here: a run with nothing to download (a no-op) does without it, its worker
    # module and pickle (5 ms of start-up)
    from aptmirror.sync.pool_procs import fetch_here, fetch_in_processes, process_count, share_of

    sizes = [item.size for _, item in items]
    mirror = os.fspath(ctx.mirror)

    def request(i: int) -> FetchRequest:
        rel, item = items[i]
        url = plan.url_of(ctx, rel, item)
        dest = f"{mirror}/{rel}"
        return FetchRequest(
            url,
            staged_name(dest) if item.replaces else dest,
            ctx.pool_checksums(item.checksums),
            mirrors=item.job.alt_urls(url),
            fresh=item.fresh,
        )

    def failed(i: int, exc: FetchError) -> None:
        for job in items[i][1].jobs:
            ctx.fail(job, exc.url, exc.reason)

    queue = SizeQueue(sizes)
    processes = process_count(ctx.settings.pool_processes, len(items))
    if processes == 1:
        await fetch_all(ctx.fetcher, queue, request, ctx.settings.nthreads, failed)
        return
    share = share_of(ctx.settings, processes)
    stats = ctx.fetcher.stats

    def resumed(i: int) -> FetchRequest:  # a dead worker may have left a partial file
        return dataclasses.replace(request(i), fresh=False)

    async def in_workers() -> None:
        left = await fetch_in_processes(
            share, processes - 1, queue, request, ctx.emit, failed, stats, ctx.warn
        )
        if left:
            again = SizeQueue()
            again.put((i, sizes[i]) for i in left)
            again.close()
            await fetch_here(share, again, resumed, ctx.emit, failed, stats)

    await asyncio.gather(in_workers(), fetch_here(share, queue, request, ctx.emit, failed, stats))


def commit_replacements(ctx: RunContext, plan: PoolPlan) -> None:
    """Swap downloaded replacements of existing pool files into place, just before publishing.

    A file that a failed suite also uses keeps its old bytes (that suite's old indexes stay
    published), so every other suite using it is failed too rather than published with
    indexes that do not match it.
    """
    pending = [(rel, d) for rel, d in plan.todo.items() if d.replaces]
    spread = True
    while spread:
        spread = False
        for rel, item in pending:
            if any(ctx.failed(j) for j in item.jobs) and not all(ctx.failed(j) for j in item.jobs):
                for job in item.jobs:
                    if not ctx.failed(job):
                        reason = "not replaced: a failed suite still publishes the old file"
                        ctx.fail(job, plan.url_of(ctx, rel, item), reason)
                spread = True
    for rel, item in pending:
        dest = ctx.mirror / rel
        staged = Path(staged_name(os.fspath(dest)))
        if any(ctx.failed(j) for j in item.jobs):
            staged.unlink(missing_ok=True)
            continue
        try:
            os.replace(staged, dest)
        except OSError as exc:
            staged.unlink(missing_ok=True)
            for job in item.jobs:
                ctx.fail(job, str(dest), f"cannot replace: {exc}")
