"""A fake upstream HTTP server on loopback, with a request log and fault injection.

One job: serve a directory tree (e.g. one made by :mod:`aptmirror.testing.repo`) the way a
plain static mirror does — GET/HEAD, ``Range`` (206 + ``Content-Range``), ``If-Range``,
``ETag``/``Last-Modified`` and conditional requests (304) — and misbehave on demand: error
statuses (with ``Retry-After``), connection resets, truncated/corrupted/over-long bodies,
stalls, ignored ranges and captive-portal HTML. :class:`FakeUpstream` runs in the caller's
event loop; :class:`ThreadedUpstream` runs one in its own thread for synchronous tests and
subprocess clients such as apt-get.

Self-contained: stdlib + aiohttp; must not import other ``aptmirror`` packages.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import fnmatch
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from aiohttp import web

from aptmirror.frozen import frozen

from ._http import RANGE_RE, content_type, if_range_ok, not_modified, parse_range

__all__ = ["FakeUpstream", "Fault", "FaultKind", "RequestRecord", "ThreadedUpstream"]

FaultKind = Literal[
    "status",
    "reset",
    "truncate",
    "corrupt",
    "stall",
    "ignore_range",
    "wrong_length",
    "html",
]

CAPTIVE_PORTAL_HTML = (
    b"<!DOCTYPE html>\n<html><head><title>Hotel WiFi - Sign in</title></head>\n"
    b"<body><h1>Welcome!</h1><p>Please accept the terms to continue.</p></body></html>\n"
)
_CHUNK = 256 * 1024


@dataclass
class Fault:
    """A misbehaviour applied to requests whose path matches a glob.

    ``kind``: ``status`` (answer ``status``, optional ``retry_after``), ``reset`` (abort the
    connection after ``after_bytes`` body bytes), ``truncate`` (full ``Content-Length``, send
    ``after_bytes`` bytes, close), ``corrupt`` (flip one byte, at ``offset`` of the body sent
    or its middle), ``stall`` (send headers and the first ``after_bytes`` body bytes, wait
    ``seconds`` — cut short when the server stops — then the rest), ``ignore_range`` (200
    with the full body), ``wrong_length`` (``Content-Length`` ``extra_length`` bytes too
    large), ``html`` (200 captive-portal page).
    ``times``: how many matching requests it applies to; ``None`` = all.
    """

    kind: FaultKind
    times: int | None = None
    status: int = 503
    retry_after: int | str | None = None
    after_bytes: int = 0
    seconds: float = 30.0
    offset: int | None = None
    extra_length: int = 100


@frozen
class RequestRecord:
    """One request as the server saw it (``path`` as requested, percent-decoded)."""

    method: str
    path: str
    status: int
    range_header: str | None
    fault: FaultKind | None = None


class FakeUpstream:
    """Serve ``root`` over HTTP on loopback; ``async with FakeUpstream(root) as srv: srv.url``.

    ``path_prefix`` (e.g. ``"debian"``) serves the tree under ``/debian/``; ``auth`` requires
    HTTP Basic credentials. Fault patterns and :meth:`count` globs match the request path
    (``/debian/dists/stable/InRelease``), where ``*`` also matches ``/``.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path_prefix: str = "",
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self.prefix = "/" + path_prefix.strip("/") + "/" if path_prefix.strip("/") else "/"
        self.auth = auth
        self.requests: list[RequestRecord] = []
        self._faults: list[tuple[str, Fault]] = []
        self._hooks: list[tuple[str, Callable[[str], object]]] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL including the prefix, ending in ``/``."""
        if self._runner is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}{self.prefix}"

    async def start(self) -> str:
        """Bind and start serving; returns :attr:`url`."""
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=0.5,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return self.url

    async def stop(self) -> None:
        """Wake stalled handlers and shut down."""
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeUpstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- log, faults, hooks --------------------------------------------------------------------

    def count(self, path_glob: str = "*", method: str | None = None) -> int:
        """How many logged requests match ``path_glob`` (and ``method``, if given)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if fnmatch.fnmatchcase(r.path, path_glob) and method in (None, r.method)
            )

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def add_fault(self, pattern: str, fault: Fault) -> None:
        """Apply ``fault`` to requests matching ``pattern`` (earlier faults win)."""
        with self._lock:
            self._faults.append((pattern, fault))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def add_hook(self, pattern: str, fn: Callable[[str], object]) -> None:
        """Call ``fn(path)`` before serving a matching request (e.g. to change the tree)."""
        with self._lock:
            self._hooks.append((pattern, fn))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for pattern, fault in self._faults:
                if fnmatch.fnmatchcase(path, pattern) and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _log(self, request: web.Request, status: int, fault: Fault | None) -> None:
        rec = RequestRecord(
            request.method,
            request.path,
            status,
            request.headers.get("Range"),
            fault.kind if fault else None,
        )
        with self._lock:
            self.requests.append(rec)

    # -- serving -------------------------------------------------------------------------------

    def _resolve(self, path: str) -> Path | None:
        if not path.startswith(self.prefix):
            return None
        root = self.root.resolve()
        try:
            target = (root / path[len(self.prefix) :]).resolve()
        except (OSError, RuntimeError):
            return None
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return target

    def _authorized(self, request: web.Request) -> bool:
        if self.auth is None:
            return True
        want = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return request.headers.get("Authorization", "") == f"Basic {want}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        with self._lock:
            hooks = [fn for pat, fn in self._hooks if fnmatch.fnmatchcase(path, pat)]
        for fn in hooks:
            fn(path)
        if not self._authorized(request):
            self._log(request, 401, None)
            return web.Response(
                status=401, text="401\n", headers={"WWW-Authenticate": 'Basic realm="test"'}
            )
        if request.method not in ("GET", "HEAD"):
            self._log(request, 405, None)
            return web.Response(status=405, text="405\n")
        fault = self._take_fault(path)
        if fault is not None and fault.kind in ("status", "html"):
            return self._simple_fault(request, fault)
        target = self._resolve(path)
        if target is None:
            self._log(request, 404, fault)
            return web.Response(status=404, text="404 Not Found\n")
        return await self._serve_file(request, target, fault)

    def _simple_fault(self, request: web.Request, fault: Fault) -> web.Response:
        if fault.kind == "html":
            self._log(request, 200, fault)
            return web.Response(body=CAPTIVE_PORTAL_HTML, content_type="text/html")
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        self._log(request, fault.status, fault)
        return web.Response(status=fault.status, text=f"{fault.status}\n", headers=headers)

    async def _serve_file(
        self, request: web.Request, target: Path, fault: Fault | None
    ) -> web.StreamResponse:
        st = target.stat()
        size = st.st_size
        etag = f'"{size:x}-{st.st_mtime_ns:x}"'
        last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": last_modified, "Accept-Ranges": "bytes"}
        if not_modified(request, etag, int(st.st_mtime)):
            self._log(request, 304, fault)
            return web.Response(status=304, headers=headers)
        start, length, status = 0, size, 200
        rng = request.headers.get("Range")
        use_range = rng is not None and RANGE_RE.match(rng.strip()) is not None
        if (
            use_range
            and if_range_ok(request, etag, last_modified)
            and not _kind(fault, "ignore_range")
        ):
            parsed = parse_range(str(rng), size)
            if parsed is None:
                self._log(request, 416, fault)
                return web.Response(
                    status=416, headers={**headers, "Content-Range": f"bytes */{size}"}
                )
            start, length = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        resp = web.StreamResponse(status=status, headers=headers)
        resp.content_type = content_type(target)
        extra = fault.extra_length if fault is not None and fault.kind == "wrong_length" else 0
        resp.content_length = length + extra
        self._log(request, status, fault)
        await resp.prepare(request)
        if request.method == "HEAD":
            await resp.write_eof()
            return resp
        await self._send_body(request, resp, target, start, length, fault)
        return resp

    async def _stall(self, fault: Fault | None) -> None:
        if fault is not None and self._stopping is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), fault.seconds)

    async def _send_body(
        self,
        request: web.Request,
        resp: web.StreamResponse,
        target: Path,
        start: int,
        length: int,
        fault: Fault | None,
    ) -> None:
        stall_at = None
        if fault is not None and fault.kind == "stall":
            stall_at = min(fault.after_bytes, length)
        limit = length
        if fault is not None and fault.kind in ("reset", "truncate"):
            limit = min(length, fault.after_bytes)
        flip = None
        if fault is not None and fault.kind == "corrupt" and length > 0:
            flip = fault.offset if fault.offset is not None else length // 2
        sent = 0
        with target.open("rb") as fh:
            fh.seek(start)
            while sent < limit or stall_at is not None:
                if stall_at is not None and sent >= stall_at:
                    stall_at = None
                    await self._stall(fault)
                    continue
                step = limit - sent if stall_at is None else min(limit, stall_at) - sent
                chunk = fh.read(min(_CHUNK, step))
                if not chunk:
                    break
                if flip is not None and sent <= flip < sent + len(chunk):
                    buf = bytearray(chunk)
                    buf[flip - sent] ^= 0xFF
                    chunk = bytes(buf)
                await resp.write(chunk)
                sent += len(chunk)
        if fault is not None and fault.kind in ("reset", "truncate", "wrong_length"):
            transport = request.transport
            if transport is not None:
                if fault.kind == "reset":
                    transport.abort()
                else:
                    transport.close()
            return
        await resp.write_eof()


def _kind(fault: Fault | None, kind: FaultKind) -> bool:
    return fault is not None and fault.kind == kind


class ThreadedUpstream:
    """A :class:`FakeUpstream` running its own event loop in a daemon thread.

    For synchronous tests and subprocess clients: ``with ThreadedUpstream(root) as srv:``.
    Faults, hooks and the log are shared with the inner server (thread-safe).
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path_prefix: str = "",
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.server = FakeUpstream(root, host=host, port=port, path_prefix=path_prefix, auth=auth)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start the thread and the server; returns :attr:`url`."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="ThreadedUpstream", daemon=True)
        self._thread.start()
        ready.wait()
        try:
            return asyncio.run_coroutine_threadsafe(self.server.start(), loop).result(10)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server, the loop and the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._loop = self._thread = None

    def __enter__(self) -> ThreadedUpstream:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[RequestRecord]:
        return self.server.requests

    @property
    def root(self) -> Path:
        return self.server.root

    @root.setter
    def root(self, value: Path) -> None:
        self.server.root = Path(value)

    def count(self, path_glob: str = "*", method: str | None = None) -> int:
        return self.server.count(path_glob, method)

    def reset_log(self) -> None:
        self.server.reset_log()

    def add_fault(self, pattern: str, fault: Fault) -> None:
        self.server.add_fault(pattern, fault)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def add_hook(self, pattern: str, fn: Callable[[str], object]) -> None:
        self.server.add_hook(pattern, fn)
