"""The only code that orders the phases of a run.

release ─► indexes ─► plan ─► archive ─► publish (per suite, only if complete) ─► clean
─► var/ file lists ─► post-mirror hook. Console output follows the Perl tool's stages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TextIO, TypeVar

from aptmirror.debian.paths import split_compression
from aptmirror.errors import AptMirrorError, local_error_text
from aptmirror.fetch.setup import make_fetcher, read_auth_conf, transport_options
from aptmirror.fetch.transport import HttpTransport
from aptmirror.frozen import frozen
from aptmirror.model import Config
from aptmirror.observe.events import (
    Emit,
    RunFailure,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    SuitePublished,
    SuiteResult,
)
from aptmirror.observe.redact import redact
from aptmirror.storage.publish import (
    Prepared,
    Published,
    discard,
    prepare_suite,
    prune_by_hash,
    publish_flat,
    remove_obsolete,
    swap,
)
from aptmirror.storage.treescan import LocalTree, TreeScan
from aptmirror.storage.varfiles import VarFiles
from aptmirror.sync import plancache
from aptmirror.sync.cleaning import run_clean
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import (
    PACKED_RATIO,
    SuiteIndexes,
    bytes_to_plan,
    fetch_indexes,
    select_for,
)
from aptmirror.sync.jobs import RepoJob, group_jobs, repo_roots
from aptmirror.sync.loop import interrupted_exit_code
from aptmirror.sync.pool import (
    PoolDownloads,
    PoolPlan,
    commit_replacements,
    list_published,
    plan_suite,
)
from aptmirror.sync.release import VerifiedRelease, fetch_release
from aptmirror.units import format_size

T = TypeVar("T")


@frozen
class RunSummary:
    exit_code: int
    jobs: int
    published: int
    failures: int
    downloaded_files: int
    downloaded_bytes: int
    requests: int


async def _stage(ctx: RunContext, name: str, count: int, work: Awaitable[T], size: int = 0) -> T:
    threads = min(ctx.settings.nthreads, max(1, count))
    ctx.say(f"Downloading {count} {name} files using {threads} threads...")
    ctx.say(f"Begin time: {time.ctime()}")
    ctx.emit(StageStarted(name, count, size))
    result = await work
    ctx.emit(StageFinished(name))
    ctx.say(f"End time: {time.ctime()}\n")
    return result


def _prepare(ctx: RunContext, indexes: list[SuiteIndexes]) -> dict[int, Prepared | Published]:
    """Build every complete suite's new snapshot (nothing visible yet); by index position."""
    prepared: dict[int, Prepared | Published] = {}
    for i, idx in enumerate(indexes):
        job = idx.verified.job
        if ctx.failed(job) or job.is_flat:
            continue
        target = ctx.mirror / ctx.suite_rel(job)
        try:
            prepared[i] = prepare_suite(target, idx.present, ctx.stamp)
        except OSError as exc:
            ctx.fail(job, str(target), f"cannot build the new snapshot: {exc}")
    return prepared


def _publish(
    ctx: RunContext, indexes: list[SuiteIndexes], prepared: dict[int, Prepared | Published]
) -> tuple[int, list[Path]]:
    """Swap in the prepared snapshots (flat repositories: replace their indexes); then
    skel's by-hash objects of a suite's earlier index generations go."""
    published = 0
    obsolete: list[Path] = []
    for i, idx in enumerate(indexes):
        job = idx.verified.job
        ready = prepared.get(i)
        if ctx.failed(job):
            if isinstance(ready, Prepared):
                discard(ready)
            ctx.say(f"Not publishing {job.name}: it is incomplete (see errors below)")
            continue
        target = ctx.mirror / ctx.suite_rel(job)
        try:
            if job.is_flat:
                publish_flat(target, idx.present)
            elif isinstance(ready, Prepared):
                obsolete.extend(swap(ready).obsolete)
        except OSError as exc:
            ctx.fail(job, str(target), f"cannot publish: {exc}")
            continue
        published += 1
        if isinstance(ready, Prepared):  # new indexes: the older ones' by-hash objects go
            _prune_staging(ctx, job, indexes)
        ctx.emit(SuitePublished(ctx.local_root(job), job.dist, ctx.suite_rel(job)))
    return published, obsolete


async def _mirror(
    ctx: RunContext, jobs: list[RepoJob], config: Config, scan: TreeScan | None
) -> int:
    # find(1) lists what the mirror holds on the other core meanwhile (planning's lstats)
    if scan is None:
        scan = TreeScan.start(repo_roots(config))
    try:
        return await _mirror_with(ctx, jobs, config, scan)
    finally:
        scan.close()


def _prune_staging(ctx: RunContext, job: RepoJob, indexes: list[SuiteIndexes]) -> None:
    """After ``job``'s new snapshot went live: skel's by-hash objects that none of this
    run's indexes for its suite directory use go (:func:`prune_by_hash`)."""
    rel = ctx.suite_rel(job)
    keep = {p for idx in indexes if ctx.suite_rel(idx.verified.job) == rel for p in idx.present}
    try:
        prune_by_hash(ctx.skel / rel, keep)
    except OSError as exc:
        ctx.warn(f"{job.name}: old by-hash files in {ctx.skel / rel} stay: {exc}")


async def _mirror_with(ctx: RunContext, jobs: list[RepoJob], config: Config, scan: TreeScan) -> int:
    releases = await _stage(
        ctx, "release", len(jobs), asyncio.gather(*(fetch_release(ctx, j) for j in jobs))
    )
    verified = [v for v in releases if v is not None]
    n_index = sum(len(select_for(v, ctx)) for v in verified)
    early = _early_downloads(ctx, verified)
    plan = PoolPlan()
    try:  # until planning takes them over, the early workers are stopped here on any error
        indexes = await _stage(
            ctx, "index", n_index, asyncio.gather(*(fetch_indexes(ctx, v) for v in verified))
        )
        ctx.say("Processing indexes: [" + "".join(_marks(i) for i in indexes) + "]\n")
        listing = await scan.result()
        ctx.tree = LocalTree() if listing is None else listing  # (an empty one is falsy)
        key = plancache.plan_key(ctx, indexes)
        reused = plancache.reuse(ctx, key, plan)  # the same plan as last time, files in place
    except BaseException:
        if early is not None:
            await early.abort()
        raise
    if reused and early is not None:
        await early.abort()
    downloads = (
        PoolDownloads(ctx, 1) if reused else await _plan(ctx, jobs, indexes, plan, key, early)
    )
    ctx.say(f"{format_size(plan.todo_bytes)} will be downloaded into archive.")
    await _stage(ctx, "archive", len(plan.todo), downloads.finish(), plan.todo_bytes)
    ctx.emit(StageStarted("publish", len(indexes)))
    # Build every snapshot first, then swap changed pool files in, then the snapshots: the
    # window in which old indexes meet new bytes of a same-named pool file is only the swaps.
    prepared = _prepare(ctx, indexes)
    commit_replacements(ctx, plan)
    published, obsolete = _publish(ctx, indexes, prepared)
    remove_obsolete(obsolete)
    ctx.emit(StageFinished("publish"))
    # what was downloaded is in place: the clean stage's walk may reuse the memory of the
    # download records (a first mirror of a whole Debian: tens of MB)
    plan.todo.clear()
    ctx.tree = LocalTree()
    downloads.close()
    ctx.emit(StageStarted("clean"))
    run_clean(ctx, config, jobs, plan.keep, indexes)
    ctx.emit(StageFinished("clean"))
    return published


def _early_downloads(ctx: RunContext, verified: list[VerifiedRelease]) -> PoolDownloads | None:
    """The pool downloads with their worker processes started now, before the index
    stage, when the changed indexes are big enough to start them before planning anyway
    (:func:`~aptmirror.sync.pool_procs.streaming_process_count`): a worker's start-up
    (≈ 0.1 s) then overlaps the index downloads instead of the planning. None when no big
    index changed — a no-op run starts no process."""
    weight = sum(bytes_to_plan(ctx, v) for v in verified)
    if weight == 0:
        return None
    from aptmirror.sync.pool_procs import streaming_process_count  # not needed by a no-op

    processes = streaming_process_count(ctx.settings.pool_processes, weight)
    return PoolDownloads(ctx, processes) if processes > 1 else None


async def _plan(
    ctx: RunContext,
    jobs: list[RepoJob],
    indexes: list[SuiteIndexes],
    plan: PoolPlan,
    key: str,
    early: PoolDownloads | None = None,
) -> PoolDownloads:
    """Plan every suite into ``plan`` and the var/ lists (a suite of ``jobs`` whose Release
    failed goes into the lists as published); the pool downloads start at once
    in the worker processes (``pool_processes``), which take files as they are planned
    (``early``: already started before the index stage)."""
    from aptmirror.sync.pool_procs import streaming_process_count  # not needed by a no-op

    if early is not None:
        downloads = early
    else:
        weight = sum(_index_bytes(path) for idx in indexes for _, path in idx.parseable)
        processes = streaming_process_count(ctx.settings.pool_processes, weight)
        downloads = PoolDownloads(ctx, processes)
    try:
        warned = len(ctx.warnings)
        with VarFiles(ctx.var) as var:
            for idx in indexes:
                for _ in plan_suite(ctx, idx, plan, var, downloads.add):
                    downloads.feed()
                    await asyncio.sleep(0)  # the workers' pipes
            planned = {id(idx.verified.job) for idx in indexes}
            for job in jobs:
                if id(job) not in planned:  # its Release failed: it stays as published
                    list_published(ctx, job, var)
        plancache.save(ctx, key, plan, ctx.warnings[warned:])
    except BaseException:
        await downloads.abort()
        raise
    return downloads


def _index_bytes(path: Path) -> int:
    """About how many bytes an index has once decompressed (compressed: PACKED_RATIO times)."""
    try:
        size = path.stat().st_size
    except OSError:
        return 0
    return size if split_compression(path.name)[1] == "" else PACKED_RATIO * size


def _marks(idx: SuiteIndexes) -> str:
    return "".join("P" if kind == "packages" else "S" for kind, _ in idx.parseable)


async def run_mirror(
    config: Config,
    out: TextIO,
    emit: Emit | None = None,
    run_id: str = "",
    scan: TreeScan | None = None,
) -> RunSummary:
    """Run every stage for ``config``; never raises for a download problem.

    ``emit`` receives the run's events (observe/events.py) under ``run_id``. ``scan``:
    the listing of the repository roots, if the caller started it already (else the run
    starts it); closed by the run.
    """
    s = config.settings
    for path in (s.mirror_path, s.skel_path, s.var_path):
        Path(path).mkdir(parents=True, exist_ok=True)
    jobs = group_jobs(config.sources, config.directives)
    credentials, problems = read_auth_conf(s.etc_netrc)
    started: RunContext | None = None  # once RunStarted is out: a stop must end the run
    try:
        async with HttpTransport(transport_options(s, credentials)) as transport:
            fetcher = make_fetcher(transport, s, emit)
            ctx = RunContext(s, fetcher, out, time.strftime("%Y%m%dT%H%M%S"))
            for problem in problems:
                ctx.warn(problem)
            if emit is not None:
                ctx.emit = emit
            run_id = run_id or ctx.stamp
            suites = tuple((ctx.local_root(j), j.dist) for j in jobs)
            sources = tuple(
                (uri, ctx.local_root(j), j.dist) for j in jobs for uri in (j.uri, *j.mirrors)
            )
            ctx.emit(RunStarted(run_id, suites, sources=sources))
            started = ctx
            published = await _mirror(ctx, jobs, config, scan)
    except asyncio.CancelledError:  # Ctrl-C, SIGTERM (see sync.loop)
        if started is not None:  # (even if only the connections' closing was left)
            _finished_early(started, run_id, interrupted_exit_code(), interrupted=True)
        raise
    except (AptMirrorError, OSError) as exc:  # the run cannot go on (var/ on a full disk…)
        if started is not None:  # the report, state DB, metrics and health record it failed
            reason = local_error_text(exc) if isinstance(exc, OSError) else str(exc)
            started.fail(None, s.var_path, f"the run stopped: {reason}")
            _emit_results(started, jobs, stopped=True)
            _finished_early(started, run_id, 1)
        raise
    _report_failures(ctx)
    _emit_results(ctx, jobs)
    stats = ctx.fetcher.stats
    ctx.say(
        f"Downloaded {stats.files} files, {format_size(stats.bytes)} in {stats.requests} "
        f"requests; {published} of {len(jobs)} suites published."
    )
    exit_code = 1 if ctx.failures else 0
    ctx.emit(RunFinished(run_id, exit_code, stats.files, stats.bytes, len(ctx.failures)))
    return RunSummary(
        exit_code=exit_code,
        jobs=len(jobs),
        published=published,
        failures=len(ctx.failures),
        downloaded_files=stats.files,
        downloaded_bytes=stats.bytes,
        requests=stats.requests,
    )


def _report_failures(ctx: RunContext) -> None:
    if not ctx.failures:
        return
    ctx.say(f"\nERROR: {len(ctx.failures)} required download(s)/check(s) failed:")
    for f in ctx.failures:
        ctx.say(f"  {f.target}: {f.reason}")
    if any(f.job is not None for f in ctx.failures):  # not for a refused clean-up alone
        ctx.say("The previously published copy of each affected suite was left unchanged.")


def _finished_early(ctx: RunContext, run_id: str, code: int, *, interrupted: bool = False) -> None:
    """RunFinished for a run that stops before its end (a signal, a local error)."""
    stats = ctx.fetcher.stats
    failures = len(ctx.failures)
    ctx.emit(RunFinished(run_id, code, stats.files, stats.bytes, failures, interrupted=interrupted))


def _emit_results(ctx: RunContext, jobs: list[RepoJob], *, stopped: bool = False) -> None:
    """One RunFailure per failure and one SuiteResult per job, for the observers (report,
    state DB, logs): their texts with the URLs' credentials masked. ``stopped``: the run
    ended early on an error of its own (no job's), which every suite's result carries."""
    for f in ctx.failures:
        root = ctx.local_root(f.job) if f.job else None
        ctx.emit(RunFailure(root, redact(f.target), redact(f.reason)))
    for job in jobs:
        errors = tuple(
            redact(f"{f.target}: {f.reason}")
            for f in ctx.failures
            if f.job is job or (stopped and f.job is None)
        )
        ctx.emit(SuiteResult(ctx.local_root(job), job.dist, not errors, errors))
