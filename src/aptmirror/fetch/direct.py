"""A small file's first attempt, received in its connection's callbacks.

Most pool files are small (Debian's median .deb is tens of KiB), and for them the general
path of :class:`aptmirror.fetch.fetcher.Fetcher` — a response object, a coroutine woken for
the headers and for each piece of the body, a timer per wait — cost more Python than the
file's own bytes. Here the request is written to a leased keep-alive connection and a
:class:`DirectSink` takes the answer as the parser delivers it: the status and the three
headers it needs, each piece of the body hashed and written (256 KiB at a time, through the
same :class:`~aptmirror.fetch.body.BodyWriter`), the file verified and renamed when the
message is complete; one future per file wakes the fetcher at the end. A body that arrives
whole is told to the observers by its ``FileDone`` alone (see its ``started``), without a
``FileStarted`` and ``FileProgress`` that would be out of date at once: in a first mirror
each of those cost the run a few µs per file in every observer, and the pool worker
processes as much to send them.

It only takes what needs no decision: a ``200`` answer. Everything else is left to the
fetcher, which decides as on its general path (see :meth:`DirectSink.failure`); a body cut
off or refused is deleted — a small file is fetched whole again, as ``resume_min_size``
says.
"""

from __future__ import annotations

import asyncio
import time

from aptmirror.errors import FetchError, VerificationError
from aptmirror.fetch.body import BodyWriter, Hasher, discard
from aptmirror.fetch.http1 import Connection, ConnectionPool, Endpoint, describe
from aptmirror.fetch.pace import SlowRate, SlowWindow, Traffic
from aptmirror.model import Checksums
from aptmirror.observe.events import Emit, FileProgress, FileStarted


class Fallback(Exception):
    """The answer needs the general path (a redirect, or a kept-alive connection the server
    had closed): the request is made again there, not counted as a failed attempt."""


def _header_fields(conn: Connection) -> tuple[int | None, str | None]:
    """(Content-Length, Last-Modified) of the answer on ``conn``, as
    :class:`~aptmirror.fetch.http1.Response` reads them: no length for a chunked body or a
    repeated (joined) field, a repeated Last-Modified joined with ", "."""
    length: int | None = None
    lengths = 0
    chunked = False
    modified: str | None = None
    for name, value in conn.raw_headers:
        size = len(name)  # compared first: most fields are neither of these
        if size == 14 and name.lower() == b"content-length":
            lengths += 1
            text = value.strip()
            length = int(text) if text.isdigit() else None
        elif size == 13 and name.lower() == b"last-modified":
            text_lm = value.decode("latin-1").strip()
            modified = text_lm if modified is None else f"{modified}, {text_lm}"
        elif size == 17 and name.lower() == b"transfer-encoding":
            chunked = True
    if chunked or lengths != 1:
        length = None
    return length, modified


class DirectSink:
    """Receives one file's answer from its connection (see the module docstring).

    ``done`` is resolved when the fetcher has something to look at: the file is in place,
    the answer was not a 200, or the transfer failed (:meth:`failure` says how).
    """

    __slots__ = (
        "_announced",
        "_conn",
        "_dest",
        "_emit",
        "_expected",
        "_in_place",
        "_loop",
        "_made_dirs",
        "_modified",
        "_slow",
        "_started_at",
        "_tmp",
        "_traffic",
        "_url",
        "_window",
        "done",
        "error",
        "last",
        "started",
        "writer",
    )

    def __init__(
        self,
        conn: Connection,
        url: str,
        dest: str,
        tmp: str,
        expected: Checksums,
        *,
        emit: Emit,
        traffic: Traffic,
        slow: SlowRate | None,
        made_dirs: set[str],
        in_place: bool = False,
    ) -> None:
        self._conn, self._url, self._dest, self._tmp = conn, url, dest, tmp
        self._expected, self._emit, self._traffic = expected, emit, traffic
        self._slow, self._made_dirs, self._in_place = slow, made_dirs, in_place
        self._loop = asyncio.get_running_loop()
        self.done: asyncio.Future[None] = self._loop.create_future()
        self.error: BaseException | None = None  # ours: the disk, verification, too slow
        self.writer: BodyWriter | None = None
        self._window: SlowWindow | None = None
        self._modified: str | None = None
        self.last = self._loop.time()  # of the last callback: the lane's read timeout
        # Observers hear of the file (FileStarted, FileProgress) only once a piece of it
        # arrived and more is to come; a body that arrives whole is told by its FileDone
        # alone (``started``): two events fewer for most small files, in each process.
        self._started_at = 0.0
        self._announced = False
        self.started: float | None = None  # set when the file is in place, unannounced

    # ------------------------------------------------------------------ connection callbacks

    def on_headers(self) -> None:
        conn = self._conn
        self.last = self._loop.time()
        if conn.status != 200:
            self._end()  # the fetcher decides, as on its general path
            return
        length, self._modified = _header_fields(conn)
        limit = self._expected.size
        if length is not None and length > limit:
            self._abort(
                VerificationError(self._url, f"server announces {length} bytes, expected {limit}")
            )
            return
        hasher = Hasher(self._expected)
        self.writer = BodyWriter(
            self._tmp, hasher, append=False, made_dirs=self._made_dirs, in_place=self._in_place
        )
        self._traffic.streaming += 1
        if self._slow is not None:
            self._window = SlowWindow(self._slow, self._traffic, self._loop.time)
        self._started_at = time.time()  # the events' clock

    def on_body(self, data: bytes) -> None:
        writer = self.writer
        if writer is None or self.done.done():
            return
        self.last = self._loop.time()
        try:
            if writer.add(data):
                writer.flush()
        except OSError as exc:  # the local disk
            self._abort(exc)
            return
        limit = self._expected.size
        if writer.total > limit:
            self._abort(VerificationError(self._url, f"body exceeds {limit} bytes"))
            return
        n = len(data)
        self._traffic.received += n
        # the whole body in this piece: told with its FileDone (a piece after it would
        # exceed the size); else in flight from now on
        if not self._announced and writer.total < limit:
            self._announced = True
            self._emit(FileStarted(self._url, self._dest, limit, 0, self._started_at))
        if self._announced:
            self._emit(FileProgress(self._url, n))
        window = self._window
        if window is not None and writer.total < limit:
            too_slow = window.check(n)
            if too_slow is not None:
                self._abort(FetchError(self._url, too_slow))

    def on_end(self) -> None:
        if self.done.done():
            return
        conn, writer = self._conn, self.writer
        if writer is not None and conn.complete and conn.error is None:
            try:
                writer.finish(self._url, self._expected, self._dest, self._modified, False)
            except (VerificationError, OSError) as exc:
                self.error = exc
            else:
                if not self._announced:
                    self.started = self._started_at
        self._end()

    # ------------------------------------------------------------------ ours

    def _abort(self, exc: BaseException) -> None:
        """Stop receiving: the connection is closed (what is left of the body is not read)."""
        self.error = exc
        self._conn.close()
        self._end()

    def _end(self) -> None:
        if self.writer is not None:
            self._traffic.streaming -= 1
            self.writer.close()
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        """After the answer (or a cancellation): nothing left open, nothing half-written."""
        if not self.done.done():
            self.error = self.error or asyncio.CancelledError()
            self._end()
        if self.error is not None or self._conn.error is not None:
            discard(self._tmp)

    def failure(self) -> BaseException | None:
        """What the fetcher must act on, or None when the file is in place or the answer is
        not a 200 (its status is on the connection): an ``OSError`` of the local disk, a
        :class:`FetchError` (the transfer failed: a failed attempt) or :class:`Fallback`."""
        if self.error is not None:
            return self.error
        conn = self._conn
        if conn.error is None:
            return None
        if isinstance(conn.error, ConnectionError) and conn.reused and not conn.got_bytes:
            return Fallback()  # closed by the server while idle
        return FetchError(self._url, describe(conn.error))


class Lane:
    """A connection kept from one directly fetched file to the next, with its place in the
    pool's limits, and the read-timeout watchdog of the file on it (one timer for all of
    them, not one per file). :class:`aptmirror.fetch.batch.fetch_all` gives each of its
    workers one; :meth:`release` whenever the worker does anything else.
    """

    __slots__ = ("_conn", "_ep", "_pool", "_slot", "_timer", "sink")

    def __init__(self) -> None:
        self._pool: ConnectionPool | None = None
        self._ep: Endpoint | None = None
        self._conn: Connection | None = None
        self._slot: asyncio.Semaphore | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.sink: DirectSink | None = None  # the file being received

    async def connection(self, pool: ConnectionPool, ep: Endpoint) -> Connection:
        """The kept connection if it goes to ``ep`` and is open, else a leased one."""
        conn = self._conn
        if conn is not None and (conn.closed or ep != self._ep or pool is not self._pool):
            self.release()
            conn = None
        if conn is None:
            conn, self._slot = await pool.lease(ep)
            self._pool, self._ep, self._conn = pool, ep, conn
        return conn

    def watch(self, sink: DirectSink) -> None:
        """``sink`` receives on the lane's connection now."""
        self.sink = sink
        if self._timer is None and self._conn is not None:
            self._timer = asyncio.get_running_loop().call_later(
                self._conn.read_timeout, self._check
            )

    def _check(self) -> None:
        self._timer = None
        sink, conn = self.sink, self._conn
        if sink is None or conn is None:
            return  # between files: armed again by the next one
        loop = asyncio.get_running_loop()
        idle = loop.time() - sink.last
        if idle < conn.read_timeout:
            self._timer = loop.call_later(conn.read_timeout - idle, self._check)
        else:
            conn._fail(TimeoutError(f"no data for {conn.read_timeout:g} s"))

    def done(self, conn: Connection) -> None:
        """The exchange on ``conn`` is over: it stays for the next file if it can carry
        another request, else it is closed and its place freed."""
        self.sink = None
        if not conn.release() and conn is self._conn:
            self.release()

    def release(self) -> None:
        """Give the connection (if any) back to the pool, and its place in the limits."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sink = None
        conn, self._conn = self._conn, None
        if conn is not None and self._pool is not None and self._ep is not None:
            self._pool.give_back(self._ep, conn, self._slot)
        self._slot = None
