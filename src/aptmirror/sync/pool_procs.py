"""Spread the pool downloads over processes (one event loop per core).

With ``processes`` = N, the files are dealt into N shares, largest first, each to the share
with the least work so far (bytes plus a fixed cost per file), so each gets about the same
work; N - 1 shares go to worker processes, the last one — a little smaller, as that process
also handles every event — is downloaded by the run's own process. Each share runs with
``nthreads / N`` transfers, ``max_connections_per_host / N`` and ``limit_rate / N``, so the
run's totals stay what was configured.
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
from collections.abc import Callable, Sequence

from aptmirror.errors import FetchError
from aptmirror.fetch.batch import fetch_share
from aptmirror.fetch.fetcher import FetchRequest, FetchStats
from aptmirror.model import Settings
from aptmirror.observe.events import Emit
from aptmirror.sync.pool_worker import FRAME_HEADER, WorkerReport, WorkerTask, frame, frame_length

# not ``-m aptmirror.sync.pool_worker``: the module would run as ``__main__`` and the task's
# pickled classes would not be its own
WORKER_COMMAND = (
    sys.executable,
    "-c",
    "import sys; from aptmirror.sync.pool_worker import main; sys.exit(main())",
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
    return max(1, min(4, cpus if cpus is not None else cpu_count()))


FILE_COST = 64 * 1024  # a file's fixed cost (request, events, create, rename) in bytes' worth
RUN_SHARE_WEIGHT = 0.85  # the run's process also handles every worker's events


def deal(
    sizes: Sequence[int], hands: int, weights: Sequence[float] | None = None
) -> list[list[int]]:
    """Positions of ``sizes`` dealt into ``hands`` shares, largest first, each to the share
    that would finish first — by bytes plus :data:`FILE_COST` per file, divided by the
    share's weight (default 1 each): about the same work for each."""
    weight = list(weights) if weights is not None else [1.0] * hands
    order = sorted(range(len(sizes)), key=lambda i: sizes[i], reverse=True)
    shares: list[list[int]] = [[] for _ in range(hands)]
    load = [0.0] * hands
    for i in order:
        cost = sizes[i] + FILE_COST
        seat = min(range(hands), key=lambda h: ((load[h] + cost) / weight[h], h))
        shares[seat].append(i)
        load[seat] += cost
    return shares


def share_of(s: Settings, processes: int) -> Settings:
    """The settings one of ``processes`` workers runs with."""
    per_host = s.max_connections_per_host
    return dataclasses.replace(
        s,
        nthreads=max(1, math.ceil(s.nthreads / processes)),
        limit_rate=None if s.limit_rate is None else max(1, s.limit_rate // processes),
        max_connections_per_host=0 if per_host == 0 else max(1, math.ceil(per_host / processes)),
    )


class _Worker:
    def __init__(self, positions: list[int]) -> None:
        self.positions = positions  # its request i is the caller's positions[i]
        self.open = set(range(len(positions)))  # neither done nor failed yet
        self.proc: asyncio.subprocess.Process | None = None
        self.failure = ""  # why it did not finish its share


async def fetch_in_processes(
    share: Settings,
    shares: Sequence[list[int]],
    request: Callable[[int], FetchRequest],
    emit: Emit,
    on_error: Callable[[int, FetchError], None],
    stats: FetchStats,
    warn: Callable[[str], None],
) -> list[int]:
    """Fetch ``request(i)`` for the positions of each of ``shares`` in a worker process
    of its own, with the ``share`` settings; ``on_error(i, exc)`` for each that failed for
    good; the workers' counters are added to ``stats``. Returns the positions a worker did
    not finish because it died (``warn`` says so), for the caller to fetch itself."""
    workers = [_Worker(p) for p in shares if p]
    try:
        await asyncio.gather(*(_drive(w, share, request, emit, on_error, stats) for w in workers))
        left: list[int] = []
        for w in workers:
            if w.open:
                warn(
                    f"pool worker process {w.failure} before finishing {len(w.open)} files;"
                    " the run fetches them itself"
                )
                left += [w.positions[i] for i in sorted(w.open)]
        return left
    finally:
        for w in workers:
            if w.proc is not None and w.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.kill()
                await w.proc.wait()


async def fetch_here(
    share: Settings,
    positions: list[int],
    sizes: Sequence[int],
    request: Callable[[int], FetchRequest],
    emit: Emit,
    on_error: Callable[[int, FetchError], None],
    stats: FetchStats,
) -> None:
    """The run's own share, in this process, with the same limits as one worker."""
    stats.add(
        await fetch_share(
            share,
            [sizes[i] for i in positions],
            lambda j: request(positions[j]),
            emit,
            lambda j, exc: on_error(positions[j], exc),
        )
    )


async def _drive(
    w: _Worker,
    share: Settings,
    request: Callable[[int], FetchRequest],
    emit: Emit,
    on_error: Callable[[int, FetchError], None],
    stats: FetchStats,
) -> None:
    try:
        w.proc = proc = await asyncio.create_subprocess_exec(
            *WORKER_COMMAND,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
    except OSError as exc:  # left to the run itself, like a worker that died
        w.failure = f"could not be started ({exc.strerror or exc})"
        return
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(frame(WorkerTask(share, tuple(request(i) for i in w.positions))))
    with contextlib.suppress(ConnectionError):
        await proc.stdin.drain()
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
            emit(event)
        for i in report.done:
            w.open.discard(i)
        for i, url, reason in report.errors:
            w.open.discard(i)
            on_error(w.positions[i], FetchError(url, reason, retryable=False))
        if report.stats is not None:
            stats.add(report.stats)
    proc.stdin.close()
    w.failure = f"exited with status {await proc.wait()}"
