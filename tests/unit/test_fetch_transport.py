"""aptmirror.fetch.transport and authconf: TLS options, https_only, auth.conf credentials.

TLS tests use a throwaway self-signed certificate made with ``openssl`` for 127.0.0.1 and a
small aiohttp server on loopback.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from aptmirror.errors import FetchError
from aptmirror.fetch.authconf import Credential, find_credential, parse_auth_conf
from aptmirror.fetch.setup import read_auth_conf
from aptmirror.fetch.transport import HttpTransport, TransportOptions

# --------------------------------------------------------------------------- auth.conf

AUTH_CONF = """\
# apt_auth.conf(5)
machine example.org/private login alice password a1
machine example.org login bob password b2
machine http://plain.example.org:8080/debian
  login carol
  password c3
machine tor+https://onion.example login dave password d4
machine incomplete.example login eve
"""


def test_parse_auth_conf() -> None:
    creds = parse_auth_conf(AUTH_CONF)
    assert [(c.scheme, c.host, c.port, c.path, c.login) for c in creds] == [
        (None, "example.org", None, "/private", "alice"),
        (None, "example.org", None, "", "bob"),
        ("http", "plain.example.org", 8080, "/debian", "carol"),
        ("tor+https", "onion.example", None, "", "dave"),
    ]


@pytest.mark.parametrize(
    ("url", "login"),
    [
        ("https://example.org/private/dists/x", "alice"),  # first match wins
        ("https://example.org/privateer/x", "bob"),  # a path prefix is a whole segment
        ("https://EXAMPLE.org:8443/debian/", "bob"),  # no port given: any port
        ("http://example.org/private/x", None),  # no protocol: https only, as apt
        ("http://plain.example.org:8080/debian/pool/a.deb", "carol"),
        ("http://plain.example.org/debian/pool/a.deb", None),  # port 80 != 8080
        ("https://plain.example.org:8080/debian/", None),  # protocol given: only that one
        ("http://plain.example.org:8080/other/", None),
        ("tor+https://onion.example/x", "dave"),
        ("https://incomplete.example/x", None),
    ],
)
def test_credential_matching(url: str, login: str | None) -> None:
    found = find_credential(tuple(parse_auth_conf(AUTH_CONF)), url)
    assert (found.login if found else None) == login


def test_read_auth_conf_and_parts(tmp_path: Path) -> None:
    main = tmp_path / "auth.conf"
    main.write_text("machine a.example login a password 1\n")
    (tmp_path / "auth.conf.d").mkdir()
    (tmp_path / "auth.conf.d/20-b.conf").write_text("machine b.example login b password 2\n")
    (tmp_path / "auth.conf.d/10-c.conf").write_text("machine c.example login c password 3\n")
    (tmp_path / "auth.conf.d/ignored.txt").write_text("machine d.example login d password 4\n")
    creds, problems = read_auth_conf(str(main))
    assert [c.login for c in creds] == ["a", "c", "b"] and problems == []
    assert read_auth_conf(str(tmp_path / "missing.conf")) == ((), [])
    assert read_auth_conf("") == ((), [])


# --------------------------------------------------------------------------- servers


Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def _serve(routes: dict[str, web.Response], ctx: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        for path, response in routes.items():

            async def handler(request: web.Request, r: web.Response = response) -> web.Response:
                auth = request.headers.get("Authorization", "")
                return web.Response(status=r.status, headers=r.headers, text=auth or "ok")

            app.router.add_get(path, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"{'https' if ctx else 'http'}://127.0.0.1:{port}"

    yield _serve
    for runner in runners:
        await runner.cleanup()


def _server_ctx(certs: dict[str, Path], *, client_ca: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
    if client_ca is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    return ctx


async def _get(opts: TransportOptions, url: str) -> tuple[int, str]:
    async with HttpTransport(opts) as t, t.get(url) as resp:
        body = b"".join([c async for c in resp.chunks()])
        return resp.status, body.decode()


OK = web.Response(text="ok")


# --------------------------------------------------------------------------- TLS


async def test_tls_with_ca_certificate(certs: dict[str, Path], serve: Serve) -> None:
    base = await serve({"/f": OK}, _server_ctx(certs))
    assert await _get(TransportOptions(ca_certificate=str(certs["server_cert"])), f"{base}/f") == (
        200,
        "ok",
    )


async def test_tls_untrusted_certificate_fails_unless_unchecked(
    certs: dict[str, Path], serve: Serve
) -> None:
    base = await serve({"/f": OK}, _server_ctx(certs))
    with pytest.raises(FetchError, match=r"certificate verify failed|CERTIFICATE_VERIFY_FAILED"):
        await _get(TransportOptions(), f"{base}/f")
    assert await _get(TransportOptions(verify_tls=False), f"{base}/f") == (200, "ok")


async def test_tls_client_certificate(certs: dict[str, Path], serve: Serve) -> None:
    base = await serve({"/f": OK}, _server_ctx(certs, client_ca=certs["client_cert"]))
    trusted = TransportOptions(ca_certificate=str(certs["server_cert"]))
    with pytest.raises(FetchError):
        await _get(trusted, f"{base}/f")  # the server requires a client certificate
    with_cert = TransportOptions(
        ca_certificate=str(certs["server_cert"]),
        certificate=str(certs["client_cert"]),
        private_key=str(certs["client_key"]),
    )
    assert await _get(with_cert, f"{base}/f") == (200, "ok")


# --------------------------------------------------------------------------- https_only


async def test_https_only_refuses_plain_http_without_a_request(serve: Serve) -> None:
    base = await serve({"/f": OK})
    opts = TransportOptions(https_only=True)
    with pytest.raises(FetchError, match=r"refused plain http \(https_only is on\)") as info:
        await _get(opts, f"{base}/f")
    assert not info.value.retryable


async def test_https_only_refuses_a_redirect_to_http(certs: dict[str, Path], serve: Serve) -> None:
    plain = await serve({"/f": OK})
    redirect = web.Response(status=302, headers={"Location": f"{plain}/f"})
    secure = await serve(
        {
            "/to-http": redirect,
            "/to-https": web.Response(status=301, headers={"Location": "/f"}),
            "/f": OK,
        },
        _server_ctx(certs),
    )
    opts = TransportOptions(ca_certificate=str(certs["server_cert"]), https_only=True)
    with pytest.raises(FetchError, match=r"refused redirect from .* to http://") as info:
        await _get(opts, f"{secure}/to-http")
    assert not info.value.retryable
    assert await _get(opts, f"{secure}/to-https") == (200, "ok")  # https → https is fine
    relaxed = TransportOptions(ca_certificate=str(certs["server_cert"]))
    assert await _get(relaxed, f"{secure}/to-http") == (200, "ok")


async def test_too_many_redirects(serve: Serve) -> None:
    base = await serve({"/loop": web.Response(status=302, headers={"Location": "/loop"})})
    with pytest.raises(FetchError, match="more than 10 redirects"):
        await _get(TransportOptions(), f"{base}/loop")


# --------------------------------------------------------------------------- credentials


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_credentials_from_auth_conf_and_url(serve: Serve) -> None:
    base = await serve({"/debian/f": OK, "/other/f": OK})
    port = int(base.rsplit(":", 1)[1])
    creds = (Credential("http", "127.0.0.1", port, "/debian", "alice", "s3 cret"),)
    opts = TransportOptions(credentials=creds)
    assert await _get(opts, f"{base}/debian/f") == (200, _basic("alice", "s3 cret"))
    assert await _get(opts, f"{base}/other/f") == (200, "ok")  # path does not match
    in_url = f"http://bob:p%40ss@127.0.0.1:{port}/debian/f"  # the URL's own credentials win
    assert await _get(opts, in_url) == (200, _basic("bob", "p@ss"))


async def test_credentials_are_not_carried_across_a_redirect(serve: Serve) -> None:
    other = await serve({"/f": OK})
    base = await serve({"/debian/f": web.Response(status=302, headers={"Location": f"{other}/f"})})
    port = int(base.rsplit(":", 1)[1])
    creds = (Credential("http", "127.0.0.1", port, "", "alice", "x"),)
    assert await _get(TransportOptions(credentials=creds), f"{base}/debian/f") == (200, "ok")


# --------------------------------------------------------------------------- request bytes


def _lines(head: bytes) -> tuple[str, set[str]]:
    first, *rest = head.decode("latin-1").split("\r\n")
    return first, {line for line in rest if line}


@pytest.mark.parametrize(
    "opts",
    [
        TransportOptions(),
        TransportOptions(http_proxy="http://u:p@proxy.example:3128"),  # absolute-form
        TransportOptions(user_agent="probe/1"),
    ],
)
async def test_plain_urls_of_a_known_origin_get_the_same_request_the_fast_way(
    opts: TransportOptions,
) -> None:
    async with HttpTransport(opts) as t:
        first = "http://h.example:8080/debian/dists/stable/InRelease"
        assert t._plain_request(first) is None  # origin not known yet
        t._request(first, first, None)
        for url in (
            "http://h.example:8080/debian/pool/main/h/hello/hello_2.10-3_amd64.deb",
            "http://h.example:8080/debian/pool/main/libx/x%2By_1.0~rc1-1+b2_all.deb",
        ):
            fast = t._plain_request(url)
            assert fast is not None
            assert fast[0] == t._request(url, url, None)[0]
            assert _lines(fast[1]) == _lines(t._request(url, url, None)[1])
        for other in (
            "http://h.example:8080/debian/pool/a b.deb",  # to be quoted
            "http://h.example:8080/debian/pool/\u00e9.deb",
            "http://h.example:8080/debian/x?y=1",  # a query
            "http://h.example:8081/debian/pool/a.deb",  # another origin
            "http://u:p@h.example:8080/debian/pool/a.deb",  # credentials in the URL
        ):
            assert t._plain_request(other) is None, other


async def test_a_plain_url_with_auth_conf_credentials_takes_the_general_way() -> None:
    cred = Credential("http", "h.example", None, "/private", "alice", "a1")
    async with HttpTransport(TransportOptions(credentials=(cred,))) as t:
        t._request("http://h.example/debian/x", "http://h.example/debian/x", None)
        assert t._plain_request("http://h.example/debian/pool/a.deb") is not None
        url = "http://h.example/private/pool/a.deb"
        assert t._plain_request(url) is None
        _, head = t._request(url, url, None)
        expected = base64.b64encode(b"alice:a1").decode()
        assert f"Authorization: Basic {expected}" in _lines(head)[1]
