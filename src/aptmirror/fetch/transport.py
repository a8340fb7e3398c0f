"""HTTP transport: the only module that imports the aiohttp client.

One ``aiohttp.ClientSession`` with keep-alive connection pooling for a whole run. It
translates aiohttp's exceptions into :class:`~aptmirror.errors.FetchError` so nothing above
this module needs to know aiohttp. It does not retry, verify or write files.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType

import aiohttp

from aptmirror import __version__
from aptmirror.errors import FetchError

CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Connection settings, derived from mirror.list by the caller."""

    max_connections: int = 20
    connect_timeout: float = 30.0
    read_timeout: float = 60.0
    http_proxy: str | None = None
    https_proxy: str | None = None
    proxy_user: str | None = None
    proxy_password: str | None = None
    verify_tls: bool = True
    ca_certificate: str | None = None
    certificate: str | None = None
    private_key: str | None = None
    user_agent: str = f"aptmirror/{__version__}"


class Response:
    """A streaming HTTP response: status, headers and the body in chunks."""

    def __init__(self, url: str, raw: aiohttp.ClientResponse) -> None:
        self.url = url
        self._raw = raw
        self.status: int = raw.status
        self.headers: Mapping[str, str] = raw.headers
        self.content_length: int | None = raw.content_length

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._raw.content.iter_chunked(CHUNK_SIZE):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise FetchError(self.url, _describe(exc)) from exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _ssl_context(options: TransportOptions) -> ssl.SSLContext | bool:
    if not options.verify_tls:
        return False
    ctx = ssl.create_default_context(cafile=options.ca_certificate or None)
    if options.certificate:
        ctx.load_cert_chain(options.certificate, options.private_key or None)
    return ctx


class HttpTransport:
    """Owns the aiohttp session; use as ``async with HttpTransport(opts) as t``."""

    def __init__(self, options: TransportOptions) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpTransport:
        opts = self._options
        connector = aiohttp.TCPConnector(
            limit=max(1, opts.max_connections),
            ssl=_ssl_context(opts),
            enable_cleanup_closed=True,
        )
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=opts.connect_timeout, sock_read=opts.read_timeout
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers={"User-Agent": opts.user_agent},
            auto_decompress=False,
            trust_env=opts.http_proxy is None and opts.https_proxy is None,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _proxy_for(self, url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
        opts = self._options
        proxy = opts.https_proxy if url.startswith("https:") else opts.http_proxy
        if not proxy:
            return None, None
        auth = None
        if opts.proxy_user:
            auth = aiohttp.BasicAuth(opts.proxy_user, opts.proxy_password or "")
        return proxy, auth

    @asynccontextmanager
    async def get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Response]:
        """GET ``url``; yields the response with its body unread. Never follows HTML links."""
        if self._session is None:
            raise RuntimeError("HttpTransport used outside 'async with'")
        proxy, proxy_auth = self._proxy_for(url)
        try:
            async with self._session.get(
                url, headers=dict(headers or {}), proxy=proxy, proxy_auth=proxy_auth
            ) as raw:
                yield Response(url, raw)
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
            raise FetchError(url, _describe(exc)) from exc
