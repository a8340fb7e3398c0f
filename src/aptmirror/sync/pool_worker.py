"""A pool worker process, started by the run (:data:`aptmirror.sync.pool_procs.WORKER_COMMAND`).

One Python process cannot use more than one core for the per-file work of a big first
mirror (HTTP client, event loop, bookkeeping). The run therefore hands shares of the pool
files to worker processes (:mod:`aptmirror.sync.pool_procs`), each with its own event loop,
connections and :class:`Fetcher`. The run keeps everything else: planning, failures,
publishing, and every observer (progress, logs, metrics, state DB) — a worker only sends
back what happened.

Protocol, over pipes, in length-prefixed pickle frames (both ends are this program):

* stdin: one :class:`WorkerTask`, then :class:`WorkerBatch` frames of files to fetch as the
  run hands them out, the last one marked. EOF on stdin means the run is gone: the worker
  stops (partial files stay for a Range resume).
* stdout: an empty :class:`WorkerReport` once it has started up (the run hands out files
  only then), then reports about 20 a second, and at once when the worker is running out
  of files; the last carries the fetcher's statistics. Anything printed by
  accident goes to stderr, never into the protocol.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import struct
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

from aptmirror.errors import FetchError
from aptmirror.fetch.batch import SizeQueue, fetch_share, request_size
from aptmirror.fetch.fetcher import FetchRequest, FetchStats
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.frozen import frozen
from aptmirror.model import Settings
from aptmirror.observe.events import Event, FileProgress
from aptmirror.sync.loop import run_loop

_LENGTH = struct.Struct(">I")
FLUSH_INTERVAL = 0.05  # seconds between report frames
# the run keeps FEED_PER_TRANSFER * nthreads files handed to a worker and not finished; the
# worker reports at once when fewer than LOW_WATER_PER_TRANSFER * nthreads wait to start
FEED_PER_TRANSFER = 8
LOW_WATER_PER_TRANSFER = 4


@frozen
class WorkerTask:
    settings: Settings  # this worker's share: nthreads, per-host connections already divided
    limit_fd: int | None = None  # the run's rate limit budget (RateLimiter.shared_fd), inherited


@frozen
class WorkerBatch:
    requests: tuple[tuple[int, FetchRequest], ...]  # (the run's position, request)
    last: bool = False  # nothing more will come


@dataclass(slots=True)
class WorkerReport:
    events: list[Event] = field(default_factory=list)  # FileProgress merged per file
    done: list[int] = field(default_factory=list)  # the run's positions
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (position, url, reason)
    stats: FetchStats | None = None  # in the last frame only


def frame(obj: object) -> bytes:
    """``obj`` pickled, after its length (4 bytes, big-endian)."""
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


FRAME_HEADER = _LENGTH.size


def frame_length(header: bytes) -> int:
    length: int = _LENGTH.unpack(header)[0]
    return length


def _read_exactly(fd: int, n: int) -> bytes:
    parts: list[bytes] = []
    while n > 0:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError("the run closed the pipe before sending the task")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


class Outbox:
    """Collects what happened; :meth:`flush` sends it as one frame."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._report = WorkerReport()
        self._progress_at: dict[str, int] = {}  # url -> index of its open FileProgress

    def emit(self, event: Event) -> None:
        events = self._report.events
        if type(event) is FileProgress:
            at = self._progress_at.get(event.url)
            if at is None:
                self._progress_at[event.url] = len(events)
                events.append(event)
            else:
                before = events[at]
                assert isinstance(before, FileProgress)
                events[at] = FileProgress(event.url, before.bytes + event.bytes)
            return
        url = getattr(event, "url", None)
        if url is not None:
            self._progress_at.pop(url, None)  # keep the order: progress, then done
        events.append(event)

    def done(self, position: int) -> None:
        self._report.done.append(position)

    def error(self, position: int, exc: FetchError) -> None:
        self._report.errors.append((position, exc.url, exc.reason))

    def ready(self) -> None:
        """The first frame (an empty report): started up, files may come."""
        self._out.write(frame(WorkerReport()))
        self._out.flush()

    def flush(self, stats: FetchStats | None = None) -> None:
        report = self._report
        if report.events or report.done or report.errors or stats is not None:
            report.stats = stats
            self._out.write(frame(report))
            self._out.flush()
            self._report = WorkerReport()
            self._progress_at.clear()


async def _tick(out: Outbox) -> None:
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        out.flush()


class _Inbox:
    """Reads :class:`WorkerBatch` frames from stdin into the worker's queue."""

    def __init__(self, queue: SizeQueue, requests: dict[int, FetchRequest]) -> None:
        self._queue = queue
        self._requests = requests
        self._buffer = bytearray()
        self.gone = False  # EOF: the run is gone

    def readable(self) -> None:
        data = os.read(0, 1 << 16)
        if not data:
            self.gone = True
            return
        buf = self._buffer
        buf += data
        while len(buf) >= FRAME_HEADER:
            end = FRAME_HEADER + frame_length(bytes(buf[:FRAME_HEADER]))
            if len(buf) < end:
                break
            batch = pickle.loads(buf[FRAME_HEADER:end])
            del buf[:end]
            if not isinstance(batch, WorkerBatch):
                raise TypeError(f"unexpected frame from the run: {type(batch).__name__}")
            for i, req in batch.requests:
                self._requests[i] = req
            self._queue.put((i, request_size(req)) for i, req in batch.requests)
            if batch.last:
                self._queue.close()


async def work(task: WorkerTask, out: Outbox) -> FetchStats:
    """Fetch every request the run sends, reporting through ``out``."""
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()
    queue = SizeQueue()
    requests: dict[int, FetchRequest] = {}
    inbox = _Inbox(queue, requests)
    low = task.settings.nthreads * LOW_WATER_PER_TRANSFER
    asked = False  # a report went out because files were running low: wait for them

    def stdin_readable() -> None:
        nonlocal asked
        try:
            inbox.readable()
        except Exception:  # a broken protocol: stop like when the run is gone
            inbox.gone = True
        asked = False
        if inbox.gone:
            loop.remove_reader(0)
            if current is not None:
                current.cancel()

    def running_low() -> None:
        nonlocal asked
        if not asked and not queue.closed and len(queue) < low:
            asked = True
            out.flush()

    def done(i: int) -> None:
        out.done(i)
        running_low()

    def failed(i: int, exc: FetchError) -> None:
        out.error(i, exc)
        running_low()

    loop.add_reader(0, stdin_readable)
    ticker = asyncio.create_task(_tick(out))
    try:
        limiter = RateLimiter(task.settings.limit_rate, shared_fd=task.limit_fd)
        return await fetch_share(
            task.settings, queue, requests.pop, out.emit, failed, done, limiter
        )
    finally:
        ticker.cancel()
        loop.remove_reader(0)


def main() -> int:
    # Ctrl-C reaches the whole process group, and systemd's stop sends SIGTERM to every
    # process of the service: the run decides, and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print() must not corrupt the frames
    header = _read_exactly(0, FRAME_HEADER)
    task = pickle.loads(_read_exactly(0, frame_length(header)))
    if not isinstance(task, WorkerTask):
        print("aptmirror pool worker: unexpected task", file=sys.stderr)
        return 2
    out = Outbox(protocol)
    out.ready()
    try:
        stats = run_loop(work(task, out), stoppable=False)
    except asyncio.CancelledError:
        return 1
    out.flush(stats)
    return 0
