"""HTTP transport: the only module that imports the aiohttp client.

One ``aiohttp.ClientSession`` with keep-alive connection pooling for a whole run. It
translates aiohttp's exceptions into :class:`~aptmirror.errors.FetchError` so nothing above
this module needs to know aiohttp. It does not retry, verify or write files.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from yarl import URL

from aptmirror import __version__
from aptmirror.errors import FetchError
from aptmirror.fetch.authconf import Credential, find_credential

CHUNK_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Connection settings, derived from mirror.list by the caller."""

    max_connections: int = 20
    max_connections_per_host: int = 0  # 0 = no limit beyond max_connections
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
    https_only: bool = False  # refuse http:// URLs and redirects to them
    credentials: tuple[Credential, ...] = ()  # from auth.conf, for URLs without user:pass


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
    if not options.ca_certificate and not options.certificate:
        return True  # aiohttp's default verifying context, built once at import (≈ 20 ms)
    ctx = ssl.create_default_context(cafile=options.ca_certificate or None)
    if options.certificate:
        ctx.load_cert_chain(options.certificate, options.private_key or None)
    return ctx


class HttpTransport:
    """Owns the aiohttp session; use as ``async with HttpTransport(opts) as t``."""

    def __init__(self, options: TransportOptions) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None
        self._env_proxies: dict[str, str] | None = None
        self._env_cache: dict[tuple[str, str], str | None] = {}

    def _env_proxy(self, url: str) -> str | None:
        """``http_proxy``/``https_proxy``/``no_proxy`` from the environment, as curl/wget."""
        if self._env_proxies is None:
            self._env_proxies = urllib.request.getproxies_environment()
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc.rpartition("@")[2])
        if key not in self._env_cache:
            proxy = self._env_proxies.get(parts.scheme) or self._env_proxies.get("all")
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if proxy and bypass(key[1], self._env_proxies):
                proxy = None
            self._env_cache[key] = proxy or None
        return self._env_cache[key]

    async def __aenter__(self) -> HttpTransport:
        opts = self._options
        connector = aiohttp.TCPConnector(
            limit=max(1, opts.max_connections),
            limit_per_host=max(0, opts.max_connections_per_host),
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
            # Environment proxies are resolved here once per host (_env_proxy), not by
            # aiohttp's trust_env, which costs a thread hand-off on every request.
            trust_env=False,
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

    def _proxy_for(self, url: str) -> tuple[str | None, dict[str, str]]:
        opts = self._options
        proxy = opts.https_proxy if url.startswith("https:") else opts.http_proxy
        if opts.http_proxy is None and opts.https_proxy is None:
            proxy = self._env_proxy(url)
        if not proxy:
            return None, {}
        if "://" not in proxy:
            proxy = f"http://{proxy}"  # wget takes "host:port" as well
        if not opts.proxy_user:
            return proxy, {}
        return proxy, {"Proxy-Authorization": _basic(opts.proxy_user, opts.proxy_password or "")}

    def _headers_for(self, url: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        parts = urlsplit(url)
        if parts.username is not None:  # credentials in the URL: sent as Basic auth
            user, password = unquote(parts.username), unquote(parts.password or "")
            headers.setdefault("Authorization", _basic(user, password))
        else:
            cred = find_credential(self._options.credentials, url)
            if cred is not None:
                headers.setdefault("Authorization", _basic(cred.login, cred.password))
        return headers

    def _check_scheme(self, url: str, redirected_from: str | None = None) -> None:
        if not self._options.https_only or urlsplit(url).scheme.lower() == "https":
            return
        what = f"redirect from {redirected_from} to {url}" if redirected_from else "plain http"
        raise FetchError(
            redirected_from or url, f"refused {what} (https_only is on)", retryable=False
        )

    @asynccontextmanager
    async def get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Response]:
        """GET ``url``; yields the response with its body unread. Never follows HTML links.

        Redirects are followed (at most 10), each hop checked against ``https_only`` before
        it is requested; credentials are chosen per hop, never carried to another URL.
        """
        if self._session is None:
            raise RuntimeError("HttpTransport used outside 'async with'")
        self._check_scheme(url)
        current = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                proxy, proxy_headers = self._proxy_for(current)
                request_headers = self._headers_for(current, headers)
                if not current.startswith("https:"):
                    # plain http is forwarded by the proxy (no CONNECT): it reads this header
                    request_headers.update(proxy_headers)
                async with self._session.get(
                    _strip_userinfo(current),
                    headers=request_headers,
                    proxy=proxy,
                    proxy_headers=proxy_headers or None,
                    allow_redirects=False,
                ) as raw:
                    location = raw.headers.get("Location")
                    if raw.status in REDIRECT_STATUSES and location:
                        try:
                            target = str(raw.url.join(URL(location)))
                        except ValueError as exc:
                            raise FetchError(url, f"bad redirect {location!r}: {exc}") from exc
                        self._check_scheme(target, current)
                        current = target
                        continue
                    yield Response(url, raw)
                    return
            raise FetchError(url, f"more than {MAX_REDIRECTS} redirects", retryable=False)
        except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
            raise FetchError(url, _describe(exc)) from exc


MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _strip_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))
