"""Spread the pool downloads over processes (one event loop per core).

With ``processes`` = N, N - 1 worker processes and the run's own process take files from
one queue (:class:`aptmirror.fetch.batch.SizeQueue`): the run hands each worker a batch
and tops it up whenever the worker reports progress, keeping ``FEED_PER_TRANSFER`` files
per transfer in its hands. So a process that is slower — the run's own also handles every
event — simply takes fewer files, and all finish together. (Dealing fixed shares up front,
as before, left one process idle for up to half a second at the end of a first mirror.)
Each process runs with ``nthreads / N`` transfers and ``max_connections_per_host / N``, so
the run's totals stay what was configured; ``limit_rate`` is one budget that every process
draws on (the run's rate limiter's clock, in memory shared with the workers).
Events from the workers are re-emitted here, in order, so progress, logs, metrics and the
state DB see the same events as with in-process downloads. The files a worker had not
finished when it died (killed, out of memory, cannot start) are fetched by the run's own
process afterwards, resuming what the worker left; stopping the run (cancellation) kills the
workers, leaving their partial files for a Range resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import pickle
import sys
from collections.abc import Callable

from aptmirror.errors import FetchError
from aptmirror.fetch.batch import SizeQueue
from aptmirror.fetch.fetcher import FetchRequest, FetchStats
from aptmirror.model import Settings
from aptmirror.observe.events import Emit
from aptmirror.sync.pool_worker import (
    FEED_PER_TRANSFER,
    FRAME_HEADER,
    WorkerBatch,
    WorkerReport,
    WorkerTask,
    frame,
    frame_length,
)

# not ``-m aptmirror.sync.pool_worker``: the module would run as ``__main__`` and the task's
# pickled classes would not be its own
WORKER_COMMAND = (
    sys.executable,
    "-c",
    # os._exit: the last report is flushed by then, and an interpreter's shutdown (15 ms)
    # would hold up the archive stage, which ends when every worker's pipe is closed
    "import os, sys; from aptmirror.sync.pool_worker import main; code = main();"
    " sys.stdout.flush(); sys.stderr.flush(); os._exit(code)",
)


AUTO_MIN_FILES = 2000  # below this, starting processes costs more than it saves


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def process_count(setting: int, files: int, cpus: int | None = None) -> int:
    """How many processes download ``files`` (the run's own included, so 1 = no worker
    process): ``pool_processes`` when set, else (auto, 0) one per core — at most 4 — for a
    large batch, 1 for a small one."""
    if files == 0:
        return 1
    if setting > 0:
        return min(setting, files)
    if files < AUTO_MIN_FILES:
        return 1
    return _auto_count(cpus)


def _auto_count(cpus: int | None) -> int:
    """``pool_processes`` auto: one process per core, at most 4."""
    return max(1, min(4, cpus if cpus is not None else cpu_count()))


# Index bytes (uncompressed) from which planning takes about as long as a worker process
# takes to start (0.1 s on the benchmark machine): its start-up is then hidden.
STREAM_MIN_INDEX_BYTES = 2 << 20


def streaming_process_count(setting: int, index_bytes: int, cpus: int | None = None) -> int:
    """How many processes to start *before* planning (the run's own included), for indexes
    of ``index_bytes``: the workers take files as they are planned. 1 (none) for small
    indexes — their plan is made before a worker could start; :func:`process_count`
    decides afterwards — and with ``pool_processes 1``; else ``pool_processes``, or with
    auto one per core (at most 4). A worker that is not given anything is stopped unused."""
    if index_bytes < STREAM_MIN_INDEX_BYTES or setting == 1:
        return 1
    if setting > 0:
        return setting
    return _auto_count(cpus)


def share_of(s: Settings, processes: int) -> Settings:
    """The settings one of ``processes`` workers runs with (``limit_rate`` whole: the
    processes share one budget, see :class:`WorkerCrew`)."""
    per_host = s.max_connections_per_host
    return dataclasses.replace(
        s,
        nthreads=max(1, math.ceil(s.nthreads / processes)),
        max_connections_per_host=0 if per_host == 0 else max(1, math.ceil(per_host / processes)),
    )


class _Worker:
    def __init__(self) -> None:
        self.open: set[int] = set()  # positions handed to it, neither done nor failed yet
        self.proc: asyncio.subprocess.Process | None = None
        self.stdin: asyncio.StreamWriter | None = None  # set once it said it is ready
        self.failure = ""  # why it did not finish what it was given
        self.fed_all = False  # the last batch went out
        self.taken = 0  # files taken from the queue for it
        self.dismissed = False  # stopped before it was given anything


class WorkerCrew:
    """``workers`` worker processes taking files from ``queue`` (see the module docstring).

    ``limit_fd``: the run's rate limiter's shared clock (``RateLimiter.shared_fd``), passed
    on to every worker, whose transfers then draw on the run's one ``limit_rate`` budget.

    The queue may still be open: :meth:`start` the crew while files are being planned,
    call :meth:`feed` when more were put, close the queue, then await :meth:`finish`.
    Files put after :meth:`start` go to a worker only once it has started up (its first
    frame); one that has not been given any when the run's own process ran out of files is
    stopped (:meth:`dismiss_idle`) rather than waited for.
    """

    def __init__(
        self,
        share: Settings,
        workers: int,
        queue: SizeQueue,
        request: Callable[[int], FetchRequest],
        emit: Emit,
        on_error: Callable[[int, FetchError], None],
        stats: FetchStats,
        limit_fd: int | None = None,
    ) -> None:
        self.share, self.queue, self.request = share, queue, request
        self.limit_fd = limit_fd
        self.emit, self.on_error, self.stats = emit, on_error, stats
        self.crew = [_Worker() for _ in range(workers)]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        # the first batches before anything else takes from the queue: with a complete
        # queue the largest files go to the workers (the run's own process has every event
        # to handle besides its transfers); an open one may still be empty
        first = [_batch(w, self.share, self.queue, self.request) for w in self.crew]
        self._tasks = [
            asyncio.create_task(self._drive(w, batch))
            for w, batch in zip(self.crew, first, strict=True)
        ]

    def feed(self) -> None:
        """Top up every ready worker (after files were put into the queue, or it closed)."""
        for w in self.crew:
            self._top_up(w)

    def dismiss_idle(self) -> None:
        """Stop the workers that were not given any file (the queue is closed and empty)."""
        for w in self.crew:
            if w.taken == 0:
                w.dismissed = True
                if w.proc is not None and w.proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        w.proc.kill()

    async def finish(self, warn: Callable[[str], None]) -> list[int]:
        """Wait for every worker; the positions a worker did not finish because it died
        (``warn`` says so), for the caller to fetch itself. Kills them if cancelled."""
        try:
            self.feed()
            await asyncio.gather(*self._tasks)
        finally:
            await self.kill()
        left: list[int] = []
        for w in self.crew:
            if w.open:
                warn(
                    f"pool worker process {w.failure} before finishing {len(w.open)} files;"
                    " the run fetches them itself"
                )
                left += sorted(w.open)
        return left

    async def kill(self) -> None:
        for task in self._tasks:
            task.cancel()
        for w in self.crew:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()

    def _top_up(self, w: _Worker) -> None:
        if w.stdin is None or w.fed_all or w.stdin.is_closing():
            return
        data = _batch(w, self.share, self.queue, self.request)
        if data:
            w.stdin.write(data)

    async def _drive(self, w: _Worker, first: bytes) -> None:
        try:
            w.proc = proc = await asyncio.create_subprocess_exec(
                *WORKER_COMMAND,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                pass_fds=() if self.limit_fd is None else (self.limit_fd,),
            )
        except OSError as exc:  # left to the run itself, like a worker that died
            w.failure = f"could not be started ({exc.strerror or exc})"
            return
        assert proc.stdin is not None and proc.stdout is not None
        if w.dismissed:
            proc.kill()
            await proc.wait()
            return
        proc.stdin.write(frame(WorkerTask(self.share, self.limit_fd)) + first)
        # stdin stays open: the worker stops when it sees EOF (the run died)
        while True:
            try:
                header = await proc.stdout.readexactly(FRAME_HEADER)
                report = pickle.loads(await proc.stdout.readexactly(frame_length(header)))
            except asyncio.IncompleteReadError:
                break
            if not isinstance(report, WorkerReport):
                break
            for event in report.events:
                self.emit(event)
            for i in report.done:
                w.open.discard(i)
            for i, url, reason in report.errors:
                w.open.discard(i)
                self.on_error(i, FetchError(url, reason, retryable=False))
            if report.stats is not None:
                self.stats.add(report.stats)
            w.stdin = proc.stdin  # the first frame says it is ready
            self._top_up(w)
        proc.stdin.close()
        w.failure = f"exited with status {await proc.wait()}"


def _batch(
    w: _Worker, share: Settings, queue: SizeQueue, request: Callable[[int], FetchRequest]
) -> bytes:
    """The next batch for ``w`` (framed), or b"" when it has enough."""
    items: list[tuple[int, FetchRequest]] = []
    want = share.nthreads * FEED_PER_TRANSFER - len(w.open)
    while len(items) < want:
        # the same mix as the run's own transfers: a quarter of the files from the small end
        i = queue.take(smallest=w.taken % 4 == 3)
        if i is None:
            break
        w.taken += 1
        items.append((i, request(i)))
        w.open.add(i)
    last = queue.closed and len(queue) == 0
    if not items and (w.fed_all or not last):
        return b""
    w.fed_all = last
    return frame(WorkerBatch(tuple(items), last))
