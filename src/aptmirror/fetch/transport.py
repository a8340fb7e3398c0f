"""HTTP transport: the policy around :mod:`aptmirror.fetch.http1`'s connection pool.

One pool with keep-alive connections for a whole run. Here is decided, per request, which
proxy to go through (mirror.list, else the environment), which credentials to send (from
the URL, else auth.conf; never carried across a redirect), whether plain http is allowed
(``https_only``), how redirects are followed and which TLS context is used. Failures become
:class:`~aptmirror.errors.FetchError` naming the URL. It does not retry, verify or write.
"""

from __future__ import annotations

import base64
import os
import re
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit

from aptmirror import __version__
from aptmirror.errors import FetchError
from aptmirror.fetch.authconf import Credential, find_credential
from aptmirror.fetch.http1 import (
    ConnectionPool,
    Endpoint,
    ProtocolError,
    Response,
    describe,
    request_head,
)
from aptmirror.frozen import frozen

__all__ = ["HttpTransport", "Response", "TransportOptions"]


@frozen
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


def ssl_context(options: TransportOptions) -> ssl.SSLContext:
    """The TLS context of a run (built when the first https URL is fetched)."""
    ctx = ssl.create_default_context(cafile=options.ca_certificate or None)
    if not options.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if options.certificate:
        ctx.load_cert_chain(options.certificate, options.private_key or None)
    return ctx


@frozen
class _Route:
    """How one URL is requested: the connection's endpoint and the request's bytes."""

    endpoint: Endpoint
    target: str  # origin-form path, or the absolute URL for a plain-http proxy
    host: str  # the Host header
    proxy_auth: str | None  # Proxy-Authorization to send with a plain-http proxy request


class HttpTransport:
    """Owns the connection pool; use as ``async with HttpTransport(opts) as t``."""

    def __init__(self, options: TransportOptions) -> None:
        self._options = options
        self._pool: ConnectionPool | None = None
        self._ssl: ssl.SSLContext | None = None
        self._env_proxies: dict[str, str] | None = None
        # (scheme, host[:port]) -> endpoint and proxy credentials: proxy choice once per host
        self._routes: dict[tuple[str, str], tuple[Endpoint, str | None]] = {}
        # "scheme://host[:port]" as written in URLs -> endpoint, what goes before the path in
        # the request line, and the header lines: a plain URL of a known origin (nothing to
        # quote, no credentials, no extra headers) is one string join away from its request
        self._plain: dict[str, tuple[Endpoint, str, str]] = {}

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl_context(self._options)
        return self._ssl

    def _env_proxy(self, scheme: str, host: str) -> str | None:
        """``http_proxy``/``https_proxy``/``no_proxy`` from the environment, as curl/wget."""
        if self._env_proxies is None:
            # urllib.request costs 5-7 ms of start-up: only imported when a *_proxy
            # variable is set (it would find nothing otherwise)
            if any(name.lower().endswith("_proxy") for name in os.environ):
                import urllib.request

                self._env_proxies = urllib.request.getproxies_environment()
            else:
                self._env_proxies = {}
        proxy = self._env_proxies.get(scheme) or self._env_proxies.get("all")
        if not proxy:
            return None
        import urllib.request

        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        return None if bypass(host, self._env_proxies) else proxy

    async def __aenter__(self) -> HttpTransport:
        opts = self._options
        self._pool = ConnectionPool(
            limit=opts.max_connections,
            limit_per_host=opts.max_connections_per_host,
            connect_timeout=opts.connect_timeout,
            read_timeout=opts.read_timeout,
            tls=self._tls,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _proxy_for(self, scheme: str, host: str) -> str | None:
        opts = self._options
        proxy = opts.https_proxy if scheme == "https" else opts.http_proxy
        if opts.http_proxy is None and opts.https_proxy is None:
            proxy = self._env_proxy(scheme, host)
        if not proxy:
            return None
        return proxy if "://" in proxy else f"http://{proxy}"  # wget takes "host:port" too

    def _route(self, parts: SplitResult, url: str, reported: str) -> _Route:
        """Endpoint, request target and Host header of ``url`` (errors name ``reported``)."""
        scheme = parts.scheme.lower()
        try:
            port = parts.port
        except ValueError as exc:
            raise FetchError(reported, f"bad URL {url!r}: {exc}", retryable=False) from exc
        if scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(reported, f"cannot fetch {url!r}: not an http(s) URL", retryable=False)
        host = parts.netloc.rpartition("@")[2]
        key = (scheme, host)
        found = self._routes.get(key)
        if found is None:
            found = self._routes[key] = self._endpoint(
                scheme, host, parts.hostname, port or DEFAULT_PORTS[scheme], reported
            )
        endpoint, proxy_auth = found
        target = quote(parts.path or "/", safe=URL_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=URL_SAFE + "?")
        if endpoint.proxy is not None and scheme == "http":  # the proxy forwards it
            return _Route(endpoint, f"http://{host}{target}", host, proxy_auth)
        return _Route(endpoint, target, host, None)

    def _endpoint(
        self, scheme: str, host: str, hostname: str, port: int, reported: str
    ) -> tuple[Endpoint, str | None]:
        """The endpoint of a host, and the Proxy-Authorization of its proxy (if any)."""
        proxy = self._proxy_for(scheme, host)
        if proxy is None:
            return Endpoint(scheme, hostname, port), None
        p = urlsplit(proxy)
        try:
            proxy_port = p.port or 80
        except ValueError as exc:
            raise FetchError(reported, f"bad proxy {proxy!r}: {exc}", retryable=False) from exc
        if p.scheme.lower() != "http" or not p.hostname:
            why = f"unsupported proxy {proxy!r} (an http:// proxy is needed)"
            raise FetchError(reported, why, retryable=False)
        opts = self._options
        auth = None
        if opts.proxy_user:
            auth = _basic(opts.proxy_user, opts.proxy_password or "")
        elif p.username is not None:
            auth = _basic(unquote(p.username), unquote(p.password or ""))
        via = (p.hostname, proxy_port)
        return Endpoint(scheme, hostname, port, via, auth if scheme == "https" else None), auth

    def _auth_for(self, parts: SplitResult, url: str) -> dict[str, str]:
        """The Authorization header for ``url`` (from the URL, else auth.conf), if any."""
        if parts.username is not None:  # credentials in the URL: sent as Basic auth
            user, password = unquote(parts.username), unquote(parts.password or "")
            return {"Authorization": _basic(user, password)}
        cred = find_credential(self._options.credentials, url)
        if cred is not None:
            return {"Authorization": _basic(cred.login, cred.password)}
        return {}

    def _check_scheme(self, url: str, redirected_from: str | None = None) -> None:
        if not self._options.https_only or urlsplit(url).scheme.lower() == "https":
            return
        what = f"redirect from {redirected_from} to {url}" if redirected_from else "plain http"
        raise FetchError(
            redirected_from or url, f"refused {what} (https_only is on)", retryable=False
        )

    async def open(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url``: the response with its body unread, which the caller must
        :meth:`~Response.release`. Never follows HTML links.

        Redirects are followed (at most 10), each hop checked against ``https_only`` before
        it is requested; credentials are chosen per hop, never carried to another URL.
        """
        pool = self._pool
        if pool is None:
            raise RuntimeError("HttpTransport used outside 'async with'")
        self._check_scheme(url)
        current = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                plain = None if headers else self._plain_request(current)
                if plain is not None:
                    endpoint, head = plain
                else:
                    endpoint, head = self._request(current, url, headers)
                resp = await pool.open(endpoint, head, url)
                location = resp.headers.get("Location")
                if resp.status not in REDIRECT_STATUSES or not location:
                    return resp
                resp.release()
                target = urljoin(current, location.strip())
                self._check_scheme(target, current)
                current = target
            raise FetchError(url, f"more than {MAX_REDIRECTS} redirects", retryable=False)
        except (OSError, ProtocolError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
            raise FetchError(url, describe(exc)) from exc

    def _request(
        self, url: str, reported: str, headers: Mapping[str, str] | None
    ) -> tuple[Endpoint, bytes]:
        """Endpoint and request bytes of ``url``, in general (errors name ``reported``)."""
        parts = urlsplit(url)
        route = self._route(parts, url, reported)
        common = {"User-Agent": self._options.user_agent, "Accept": "*/*"}
        if route.proxy_auth is not None:  # plain http through a proxy
            common["Proxy-Authorization"] = route.proxy_auth
        auth = self._auth_for(parts, url)
        head = request_head(route.target, route.host, {**common, **auth, **(headers or {})})
        if not auth and "@" not in parts.netloc:  # its origin's plain URLs: the fast way
            origin = url[: len(parts.scheme) + 3 + len(parts.netloc)]
            absolute = route.endpoint.proxy is not None and route.endpoint.scheme == "http"
            lines = "".join(f"{name}: {value}\r\n" for name, value in common.items())
            rest = f"Host: {route.host}\r\n{lines}\r\n"
            self._plain[origin] = (route.endpoint, f"http://{route.host}" if absolute else "", rest)
        return route.endpoint, head

    def plain(self, url: str) -> tuple[ConnectionPool, Endpoint, bytes] | None:
        """The pool, endpoint and request bytes of a plain URL of an origin that was already
        asked (nothing to quote, no credentials, no extra headers, allowed by
        ``https_only``), for a request written straight to a leased connection; None for
        any other URL, which goes through :meth:`open`."""
        pool = self._pool
        if pool is None or (self._options.https_only and not url.startswith("https://")):
            return None
        found = self._plain_request(url)
        return None if found is None else (pool, *found)

    def _plain_request(self, url: str) -> tuple[Endpoint, bytes] | None:
        """Endpoint and request bytes of a plain URL of a known origin, else None."""
        start = url.find("/", url.find("://") + 3)
        if start < 0:
            return None
        known = self._plain.get(url[:start])
        path = url[start:]
        if known is None or _PLAIN_PATH.fullmatch(path) is None:
            return None
        if self._options.credentials and find_credential(self._options.credentials, url):
            return None
        endpoint, prefix, rest = known
        return endpoint, f"GET {prefix}{path} HTTP/1.1\r\n{rest}".encode("ascii")

    @asynccontextmanager
    async def get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> AsyncIterator[Response]:
        """:meth:`open` as a context: the response is released at its end."""
        resp = await self.open(url, headers)
        try:
            yield resp
        finally:
            resp.release()


# a path that quoting leaves as it is (URL_SAFE, letters and digits)
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=._~-]*")
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
# kept as they are in a request target: RFC 3986 pchar, "/" and existing %-escapes
URL_SAFE = "/%:@!$&'()*+,;=-._~"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
