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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aptmirror.debian.compression import iter_decompressed
from aptmirror.debian.packages import PoolFile, iter_binary_files, iter_source_files
from aptmirror.debian.paths import split_compression
from aptmirror.debian.selection import group_variants
from aptmirror.errors import FetchError, FormatError
from aptmirror.fetch.batch import SizeQueue, fetch_all, fetch_share
from aptmirror.fetch.body import read_chunks
from aptmirror.fetch.fetcher import FetchRequest
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.model import Checksums
from aptmirror.observe.events import Event
from aptmirror.storage.varfiles import VarFiles
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import PARSEABLE_KINDS, SuiteIndexes
from aptmirror.sync.jobs import RepoJob, job_indexes
from aptmirror.sync.release import published_release

if TYPE_CHECKING:
    from aptmirror.sync.pool_procs import WorkerCrew

REPLACEMENT_SUFFIX = ".aptmirror-new"
PLAN_STEP = 512  # records planned between two turns of the event loop (see plan_suite)


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
    # the strongest hash: all the fetcher checks ("" and "" when none is listed); two slots
    # rather than the index's (name, digest) pair, which would stay alive for it
    hash_name: str
    digest: str
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
        return _compact(self.size, (self.hash_name, self.digest) if self.hash_name else None)


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


def url_of(ctx: RunContext, rel: str, item: Download) -> str:
    """The upstream URL of the planned file ``rel`` (its key in ``PoolPlan.todo``)."""
    return item.job.pool_url(rel[len(ctx.local_root(item.job)) + 1 :])


def pool_records(kind: str, path: Path) -> Iterator[PoolFile]:
    """The pool files named by a local ``Packages``/``Sources`` file (any compression)."""
    lines = iter_decompressed(read_chunks(path), split_compression(path.name)[1])
    return iter_binary_files(lines) if kind == "packages" else iter_source_files(lines)


def _compact(size: int, strongest: tuple[str, str] | None) -> Checksums:
    """Size and the strongest hash: all the fetcher checks (see fetch.body.Hasher)."""
    return Checksums(size, (strongest,) if strongest is not None else ())


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


def plan_suite(
    ctx: RunContext,
    idx: SuiteIndexes,
    plan: PoolPlan,
    var: VarFiles,
    on_todo: Callable[[str, Download], None] | None = None,
) -> Iterator[None]:
    """Add the suite's pool files to ``plan`` and ``var``, and each one to download to
    ``on_todo`` too (as it is found); errors are recorded in ``ctx``.

    A generator: it yields every ``PLAN_STEP`` records, for the caller to let the event loop
    run meanwhile (downloads started with the planning, see :class:`PoolDownloads`).
    """
    job = idx.verified.job
    root = ctx.local_root(job)
    mirror = os.fspath(ctx.mirror)
    guard = ctx.guard(job)
    local_state = ctx.tree.take_file  # find's listing, else an lstat
    count = 0
    for kind, path in idx.parseable:
        try:
            for pf in pool_records(kind, path):
                count += 1
                if count % PLAN_STEP == 0:
                    yield
                rel = f"{root}/{pf.path}"
                checksums = pf.checksums
                hashes = dict(checksums.hashes)  # the parsers list each hash name once
                var.add_pool_file(
                    rel, hashes.get("MD5Sum"), hashes.get("SHA1"), hashes.get("SHA256")
                )
                if rel in plan.keep:
                    other = _conflict(plan, rel, job, checksums) if job.local_path else None
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
                size = plan.keep[rel] = checksums.size
                strongest = checksums.strongest()
                if job.local_path is not None:
                    plan.owners[rel] = (job.uri, _compact(size, strongest))
                dest = f"{mirror}/{rel}"
                # no planted symlink leads the write outside; a new directory holds nothing
                dir_exists = guard.check(dest)
                ctx.note_hash_strength(job, pf.path, strongest)
                needed, exists = local_state(dest, size) if dir_exists else (True, False)
                if needed:
                    name, digest = strongest or ("", "")
                    todo = Download(job, size, name, digest, exists, not dir_exists)
                    plan.todo[rel] = todo
                    var.add_new(job.pool_url(pf.path))
                    if on_todo is not None:
                        on_todo(rel, todo)
        except FormatError as exc:
            index_url = job.url(path.relative_to(ctx.skel / ctx.suite_rel(job)).as_posix())
            ctx.fail(job, index_url, str(exc))


def list_published(ctx: RunContext, job: RepoJob, var: VarFiles) -> None:
    """Add the pool files of ``job``'s published suite to the ``var/`` lists (not to NEW):
    a suite that failed before planning stays published as it was, so ``ALL`` and the
    checksum lists still name its files (the Perl tool re-read its old indexes in skel);
    without it a ``sha256sum -c ../var/SHA256`` or an rsync of ``ALL`` would leave out a
    repository that is still served. Nothing when nothing is published or it is unreadable
    (said as a warning)."""
    suite = ctx.mirror / ctx.suite_rel(job)
    release = published_release(suite)
    if release is None:
        return
    root = ctx.local_root(job)
    try:
        chosen = job_indexes(job, release.files, contents=ctx.settings.contents)
        for variants in group_variants(chosen).values():
            kind = variants[0].kind
            present = [v.path for v in variants if (suite / v.path).is_file()]
            if kind not in PARSEABLE_KINDS or not present:
                continue
            best = min(present, key=lambda path: split_compression(path)[1] != "")
            for pf in pool_records(kind, suite / best):
                hashes = dict(pf.checksums.hashes)
                md5, sha1, sha256 = (hashes.get(n) for n in ("MD5Sum", "SHA1", "SHA256"))
                var.add_pool_file(f"{root}/{pf.path}", md5, sha1, sha256)
    except (OSError, FormatError) as exc:
        ctx.warn(f"{job.name}: its published files are not in the var/ lists: {exc}")


class PoolDownloads:
    """The pool downloads of one run, which may start while the plan is being made.

    :meth:`add` each file to download as planning finds it. With ``processes`` > 1 the
    worker processes (:mod:`aptmirror.sync.pool_procs`) start at once and take files while
    this process goes on planning (call :meth:`feed` now and then, and let the event loop
    run); else :meth:`finish` decides whether to start some. :meth:`finish` fetches the
    rest here too, with ``nthreads`` transfers in all, and waits for every file. Order: see
    :mod:`aptmirror.fetch.batch`. The workers' events are held until :meth:`finish` (the
    archive stage), so that every observer sees them in their stage. Failures go to
    ``ctx``.
    """

    def __init__(self, ctx: RunContext, processes: int) -> None:
        self.ctx = ctx
        # position -> path relative to mirror_path, and its download (two lists: a pair per
        # file would cost 64 bytes more each)
        self.rels: list[str] = []
        self.items: list[Download] = []
        self.queue = SizeQueue()
        self._mirror = os.fspath(ctx.mirror)
        self._share = ctx.settings
        self._held: list[Event] | None = []
        self._crew: WorkerCrew | None = None
        self._limiter: RateLimiter | None = None
        if processes > 1:
            self._start_crew(processes)

    def _start_crew(self, processes: int) -> None:
        # imported here: a run with nothing to plan (a no-op) does without it, its worker
        # module and pickle (5 ms of start-up)
        from aptmirror.sync.pool_procs import WorkerCrew, share_of

        self._share = share_of(self.ctx.settings, processes)
        # one limit_rate budget for the run's own transfers and every worker's
        self._limiter = self.ctx.fetcher.limiter or RateLimiter(self.ctx.settings.limit_rate)
        limit_fd = self._limiter.shared_fd() if self._limiter.rate is not None else None
        self._crew = WorkerCrew(
            self._share,
            processes - 1,
            self.queue,
            self._request,
            self._hold,
            self._failed,
            self.ctx.fetcher.stats,
            limit_fd,
        )
        self._crew.start()

    def add(self, rel: str, item: Download) -> None:
        self.rels.append(rel)
        self.items.append(item)
        self.queue.put(((len(self.items) - 1, item.size),))

    def feed(self) -> None:
        """Hand the files added so far to the workers that are ready for more."""
        if self._crew is not None:
            self._crew.feed()

    async def finish(self) -> None:
        """Nothing more will be added: download everything, here and in the workers (if
        none were started, ``pool_processes`` and the number of files decide now)."""
        self.queue.close()
        held, self._held = self._held or [], None
        for event in held:
            self.ctx.emit(event)
        if self._crew is None and self.items:
            from aptmirror.sync.pool_procs import process_count

            processes = process_count(self.ctx.settings.pool_processes, len(self.items))
            if processes > 1:
                self._start_crew(processes)
        crew = self._crew
        if crew is None:
            await fetch_all(
                self.ctx.fetcher,
                self.queue,
                self._request,
                self.ctx.settings.nthreads,
                self._failed,
            )
            return

        async def fetch_here(queue: SizeQueue, request: Callable[[int], FetchRequest]) -> None:
            # the run's own transfers, with the same limits as one worker
            stats = await fetch_share(
                self._share, queue, request, self.ctx.emit, self._failed, limiter=self._limiter
            )
            self.ctx.fetcher.stats.add(stats)

        async def here() -> None:
            await fetch_here(self.queue, self._request)
            crew.dismiss_idle()  # still starting up with nothing left to give it

        async def in_workers() -> None:
            left = await crew.finish(self.ctx.warn)
            if left:  # a dead worker may have left partial files: resume them
                again = SizeQueue()
                again.put((i, self.items[i].size) for i in left)
                again.close()
                await fetch_here(again, self._resumed)

        await asyncio.gather(in_workers(), here())

    def close(self) -> None:
        """Forget the files (after :meth:`finish`): their records are no longer needed."""
        self.rels, self.items, self._crew = [], [], None

    async def abort(self) -> None:
        """Stop the workers (planning failed)."""
        if self._crew is not None:
            await self._crew.kill()

    def _hold(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
        else:
            self.ctx.emit(event)

    def _request(self, i: int) -> FetchRequest:
        rel, item = self.rels[i], self.items[i]
        url = url_of(self.ctx, rel, item)
        dest = f"{self._mirror}/{rel}"
        return FetchRequest(
            url,
            staged_name(dest) if item.replaces else dest,
            self.ctx.pool_checksums(item.checksums),
            mirrors=item.job.alt_urls(url),
            fresh=item.fresh,
            in_place=not item.replaces,
        )

    def _resumed(self, i: int) -> FetchRequest:
        return dataclasses.replace(self._request(i), fresh=False)

    def _failed(self, i: int, exc: FetchError) -> None:
        for job in self.items[i].jobs:
            self.ctx.fail(job, exc.url, exc.reason)


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
                        ctx.fail(job, url_of(ctx, rel, item), reason)
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
