"""A lean HTTP/1.1 client: one asyncio protocol per connection and a keep-alive pool.

Why not aiohttp's client (which this replaced): a first mirror is tens of thousands of
small GETs, and each went through ≈ 550 Python calls of aiohttp's request machinery
(cookie jar, tracing hooks, URL objects, stream readers, timers). Here a request is one
``write`` and the response arrives through protocol callbacks, parsed by httptools (llhttp,
the C parser of Node.js and of aiohttp itself). Measured on the 15,054-file benchmark
mirror: a prototype of this shape fetched, hashed and wrote the whole pool with 1.4 s of
user CPU, where the complete run with aiohttp spent 7.3 s (see bench/README.md).

What it does: GET only; keep-alive reuse (a reused connection the server closed meanwhile is
retried once on a new one, before any byte of an answer); Content-Length, chunked and
close-delimited bodies; 1xx answers skipped; read flow control (reading pauses while 1 MiB
of a body waits to be consumed); connect and read timeouts; TLS; a plain-http proxy
(absolute-form requests) and https through it (``CONNECT``, then TLS inside the tunnel).
No policy: which proxy, credentials, redirects and ``https_only`` are decided by
:mod:`aptmirror.fetch.transport`. Errors surface as ``OSError``, ``TimeoutError``,
``ssl.SSLError`` or :class:`ProtocolError`; the transport names the URL.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import NamedTuple, Protocol, TypeVar, cast, overload

import httptools

from aptmirror.errors import FetchError

_T = TypeVar("_T")

HIGH_WATER = 1 << 20  # body bytes buffered before the connection stops reading
LOW_WATER = 256 * 1024


class ProtocolError(Exception):
    """The peer did not speak HTTP/1.1 as expected (unparsable answer, refused CONNECT)."""


class Endpoint(NamedTuple):
    """Where a connection goes: the pool's key."""

    scheme: str  # "http" or "https" (the origin's)
    host: str
    port: int
    proxy: tuple[str, int] | None = None  # an http proxy to go through
    proxy_auth: str | None = None  # Proxy-Authorization for a CONNECT tunnel


class Headers(Mapping[str, str]):
    """Response headers, looked up case-insensitively; repeated fields joined with ", "."""

    __slots__ = ("_fields",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        fields: dict[str, str] = {}
        for name, value in raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1").strip()
            fields[key] = f"{fields[key]}, {text}" if key in fields else text
        self._fields = fields

    def __getitem__(self, key: str) -> str:
        return self._fields[key.lower()]

    # Mapping's own get and "in" go through __getitem__ and a KeyError for every absent
    # header: asked several times per response, so answered directly
    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, default: str, /) -> str: ...
    @overload
    def get(self, key: str, default: _T, /) -> str | _T: ...
    def get(self, key: str, default: object = None, /) -> object:
        return self._fields.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class Sink(Protocol):
    """Takes a response as it arrives, in the connection's callbacks (see
    :meth:`Connection.start`): no task is woken for its headers or body."""

    def on_headers(self) -> None: ...  # status and raw_headers are on the connection
    def on_body(self, data: bytes) -> None: ...
    def on_end(self) -> None: ...  # complete, or failed: the connection's error is set


class Connection(asyncio.Protocol):
    """One connection; one request at a time. The parser's callbacks fill the response, or
    hand it to a :class:`Sink`."""

    def __init__(self, read_timeout: float) -> None:
        self.read_timeout = read_timeout
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False  # it carried a request before
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[None] | None = None
        self._busy = False
        self.sink: Sink | None = None
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.got_bytes = False
        self.error: BaseException | None = None
        self._interim = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False

    # ------------------------------------------------------------------ asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if not self._busy:  # nothing asked: a server talking out of turn
            self.close()
            return
        self.got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"malformed HTTP answer: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._busy or self.complete or self.error is not None:
            return
        if self.headers_done and self._close_delimited():
            self.complete = True  # the body ends where the connection does
            self._wake()
            if self.sink is not None:
                self.sink.on_end()
            return
        why = f": {exc}" if exc is not None else ""
        self._fail(ConnectionResetError(f"the server closed the connection{why}"))

    def pause_writing(self) -> None:  # requests are small: nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # ------------------------------------------------------------------ parser callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103): the real one follows
            self._interim = True
            self.raw_headers = []
            return
        self.status = status
        self.headers_done = True
        if self.sink is not None:
            self.sink.on_headers()
        else:
            self._wake()

    def on_body(self, body: bytes) -> None:
        if self.sink is not None:
            self.sink.on_body(body)
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self.keep_alive = bool(self._parser.should_keep_alive())
        self._wake()
        if self.sink is not None:
            self.sink.on_end()

    # ------------------------------------------------------------------ used by the pool

    def _close_delimited(self) -> bool:
        names = {name.lower() for name, _ in self.raw_headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.close()
        self._wake()
        if self.sink is not None:
            self.sink.on_end()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _timed_out(self) -> None:
        self._fail(TimeoutError(f"no data for {self.read_timeout:g} s"))

    async def wait(self) -> None:
        """Until a callback reports progress, at most ``read_timeout`` seconds."""
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(self.read_timeout, self._timed_out)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def start(self, head: bytes, sink: Sink | None = None) -> None:
        """Write a request; its answer goes to ``sink`` when given (else see :meth:`send`)."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("the connection was closed")
        self._reset()
        self._busy = True
        self.sink = sink
        self.transport.write(head)

    async def send(self, head: bytes) -> None:
        """Write a request and wait for the answer's status and headers."""
        self.start(head)
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self.wait()

    def take(self) -> bytes | None:
        """The next buffered piece of the body, if any."""
        if not self._chunks:
            return None
        chunk = self._chunks.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < LOW_WATER and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunk

    def release(self) -> bool:
        """End the exchange; True when the connection can carry another request."""
        self._busy = False
        self.sink = None
        self.reused = True
        reusable = self.complete and self.keep_alive and not self.closed and not self._paused
        self._chunks.clear()
        if not reusable:
            self.close()
        return reusable

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    async def tunnel(self, authority: str, proxy_auth: str | None) -> None:
        """``CONNECT`` through the proxy this connection goes to."""
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy_auth:
            lines.append(f"Proxy-Authorization: {proxy_auth}")
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not 200 <= self.status < 300:
            status = self.status
            self.close()
            raise ProtocolError(f"the proxy refused CONNECT {authority}: HTTP {status}")
        # the answer to CONNECT has no body: what follows is the tunnel (TLS, spoken by us
        # first); a new parser reads the answers that come through it
        self._busy = False
        self._parser = httptools.HttpResponseParser(self)


class Response:
    """A response being received: status, headers and the body in chunks.

    Its connection (and its place in the pool's limits) is held until :meth:`release`.
    """

    __slots__ = ("_conn", "_release", "content_length", "headers", "status", "url")

    def __init__(self, url: str, conn: Connection, release: Callable[[Connection], None]) -> None:
        self.url = url
        self._conn = conn
        self._release: Callable[[Connection], None] | None = release
        self.status = conn.status
        self.headers = Headers(conn.raw_headers)
        self.content_length: int | None = None
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and "Transfer-Encoding" not in self.headers:
            self.content_length = int(length)

    async def read(self) -> bytes:
        """The next piece of the body as it arrives, b"" at its end; a cut-off or stalled
        body raises FetchError."""
        conn = self._conn
        try:
            while True:
                chunk = conn.take()
                if chunk is not None:
                    return chunk
                if conn.complete:
                    return b""
                if conn.error is not None:
                    raise conn.error
                await conn.wait()
        except (OSError, ProtocolError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
            raise FetchError(self.url, describe(exc)) from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (see :meth:`read`)."""
        while chunk := await self.read():
            yield chunk

    def release(self) -> None:
        """Done with the response: the connection goes back to the pool if it can carry
        another request (the whole body was read), else it is closed."""
        release, self._release = self._release, None
        if release is not None:
            release(self._conn)


def describe(exc: BaseException) -> str:
    """A failure as a log line: the exception's type and text."""
    if isinstance(exc, TimeoutError):
        return f"timed out ({exc})" if str(exc) else "timed out"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def request_head(target: str, host: str, headers: Mapping[str, str]) -> bytes:
    """The bytes of a GET request. Header values with a line break are refused."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ProtocolError(f"line break in the {name} header")
        lines.append(f"{name}: {value}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("latin-1")


class ConnectionPool:
    """Connections by endpoint, reused while the server keeps them alive.

    At most ``limit`` requests in flight (and ``limit_per_host`` per endpoint when set);
    use as ``async with pool.get(endpoint, head, url) as response``, or :meth:`open` and
    :meth:`Response.release`.
    """

    def __init__(
        self,
        *,
        limit: int,
        limit_per_host: int,
        connect_timeout: float,
        read_timeout: float,
        tls: Callable[[], ssl.SSLContext],
    ) -> None:
        self._slots = asyncio.Semaphore(max(1, limit))
        self._per_host = max(0, limit_per_host)
        self._host_slots: dict[Endpoint, asyncio.Semaphore] = {}
        self._idle: dict[Endpoint, list[Connection]] = {}
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._tls = tls

    async def _connect(self, ep: Endpoint) -> Connection:
        loop = asyncio.get_running_loop()
        conn = Connection(self._read_timeout)
        host, port = ep.proxy or (ep.host, ep.port)
        direct_tls = ep.scheme == "https" and ep.proxy is None
        async with asyncio.timeout(self._connect_timeout):
            await loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=self._tls() if direct_tls else None,
                server_hostname=ep.host if direct_tls else None,
            )
            if ep.scheme == "https" and ep.proxy is not None:
                try:
                    await conn.tunnel(f"{ep.host}:{ep.port}", ep.proxy_auth)
                    assert conn.transport is not None
                    tls = await loop.start_tls(
                        conn.transport, conn, self._tls(), server_hostname=ep.host
                    )
                except BaseException:
                    conn.close()
                    raise
                if tls is None:
                    raise ConnectionResetError("the proxy closed the tunnel")
                conn.transport = tls
        return conn

    def _checkout(self, ep: Endpoint) -> Connection | None:
        idle = self._idle.get(ep)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def _acquire(self, ep: Endpoint) -> asyncio.Semaphore | None:
        """A place in the limits (the global one, and ``ep``'s, which is returned)."""
        host_slot = None
        if self._per_host:
            host_slot = self._host_slots.get(ep)
            if host_slot is None:
                host_slot = self._host_slots[ep] = asyncio.Semaphore(self._per_host)
            await host_slot.acquire()
        try:
            await self._slots.acquire()
        except BaseException:
            if host_slot is not None:
                host_slot.release()
            raise
        return host_slot

    def _free(self, host_slot: asyncio.Semaphore | None) -> None:
        self._slots.release()
        if host_slot is not None:
            host_slot.release()

    async def open(self, ep: Endpoint, head: bytes, url: str) -> Response:
        """Send ``head`` to ``ep``; the response with its headers in. The caller must call
        its :meth:`Response.release`, which frees its place in the limits."""
        host_slot = await self._acquire(ep)
        try:
            conn = await self._open(ep, head)
        except BaseException:
            self._free(host_slot)
            raise

        def release(conn: Connection) -> None:
            self.give_back(ep, conn, host_slot)

        return Response(url, conn, release)

    async def lease(self, ep: Endpoint) -> tuple[Connection, asyncio.Semaphore | None]:
        """An idle or new connection to ``ep`` and its place in the limits, for a request
        written with :meth:`Connection.start`; return both with :meth:`give_back`."""
        host_slot = await self._acquire(ep)
        try:
            conn = self._checkout(ep) or await self._connect(ep)
        except BaseException:
            self._free(host_slot)
            raise
        return conn, host_slot

    def give_back(
        self, ep: Endpoint, conn: Connection, host_slot: asyncio.Semaphore | None
    ) -> None:
        """End a leased connection's exchange: kept for the next request if it can carry
        one (see :meth:`Connection.release`), else closed; its place in the limits freed."""
        if conn.release():
            self._idle.setdefault(ep, []).append(conn)
        self._free(host_slot)

    @asynccontextmanager
    async def get(self, ep: Endpoint, head: bytes, url: str) -> AsyncIterator[Response]:
        """:meth:`open` as a context: the response is released at its end."""
        resp = await self.open(ep, head, url)
        try:
            yield resp
        finally:
            resp.release()

    async def _open(self, ep: Endpoint, head: bytes) -> Connection:
        """A connection with ``head`` sent and the answer's headers in."""
        conn = self._checkout(ep)
        if conn is not None:
            try:
                await conn.send(head)
                return conn
            except ConnectionError:
                conn.close()
                if conn.got_bytes:
                    raise
            # closed by the server while idle: once more on a new connection
        conn = await self._connect(ep)
        try:
            await conn.send(head)
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
