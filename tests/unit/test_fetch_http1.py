"""aptmirror.fetch.http1 through the transport, against servers that answer byte by byte.

Each test server is a raw asyncio server on loopback that writes a handcrafted answer, so
the framing cases nginx never produces (chunked, close-delimited, interim 1xx, cut-off
bodies, a proxy's CONNECT) are exercised with the real client and parser.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from aptmirror.errors import FetchError
from aptmirror.fetch.transport import HttpTransport, TransportOptions

Answer = Callable[[bytes], bytes]  # request head -> raw answer; b"" closes at once


async def _read_head(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[..., Awaitable[tuple[str, list[bytes]]]]]:
    servers: list[asyncio.Server] = []

    async def _start(answer: Answer, *, close: bool = False) -> tuple[str, list[bytes]]:
        heads: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while (head := await _read_head(reader)) is not None:
                heads.append(head)
                writer.write(answer(head))
                await writer.drain()
                if close:
                    break
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}", heads

    yield _start
    for server in servers:
        server.close()


async def _get(url: str, opts: TransportOptions | None = None) -> tuple[int, bytes]:
    async with HttpTransport(opts or TransportOptions(read_timeout=5)) as t, t.get(url) as r:
        return r.status, b"".join([c async for c in r.chunks()])


RawServer = Callable[..., Awaitable[tuple[str, list[bytes]]]]


async def test_chunked_body_and_keep_alive(raw_server: RawServer) -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer = head + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    base, heads = await raw_server(lambda head: answer)
    async with HttpTransport(TransportOptions()) as t:
        for _ in range(3):
            async with t.get(f"{base}/f") as r:
                assert r.content_length is None
                assert b"".join([c async for c in r.chunks()]) == b"hello world"
    assert len(heads) == 3  # one connection served all three (the server counts per client)
    assert heads[0].startswith(b"GET /f HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_close_delimited_body_and_interim_answer(raw_server: RawServer) -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nuntil the end"
    base, _ = await raw_server(lambda head: answer, close=True)
    assert await _get(f"{base}/f") == (200, b"until the end")


async def test_cut_off_body_is_an_error_naming_the_url(raw_server: RawServer) -> None:
    base, _ = await raw_server(
        lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", close=True
    )
    with pytest.raises(FetchError, match=rf"{base}/f: .*closed the connection") as info:
        await _get(f"{base}/f")
    assert info.value.retryable


async def test_garbage_answer_is_an_error(raw_server: RawServer) -> None:
    base, _ = await raw_server(lambda head: b"SSH-2.0-OpenSSH_9.2\r\n\r\n", close=True)
    with pytest.raises(FetchError, match="malformed HTTP answer"):
        await _get(f"{base}/f")


async def test_silent_server_times_out(raw_server: RawServer) -> None:
    base, _ = await raw_server(lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12")
    with pytest.raises(FetchError, match="timed out"):
        await _get(f"{base}/f", TransportOptions(read_timeout=0.3))


async def test_server_closing_idle_connections_is_not_an_error(raw_server: RawServer) -> None:
    # every answer says keep-alive, but the server closes after it: the next request must
    # notice (or hit the closed socket) and go out on a new connection
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    base, heads = await raw_server(lambda head: answer, close=True)
    async with HttpTransport(TransportOptions()) as t:
        for pause in (0.0, 0.2, 0.0):
            await asyncio.sleep(pause)
            async with t.get(f"{base}/f") as r:
                assert b"".join([c async for c in r.chunks()]) == b"ok"
    assert len(heads) == 3


# --------------------------------------------------------------------------- CONNECT


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@pytest.fixture
async def connect_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A proxy that tunnels CONNECT (and refuses without the right Proxy-Authorization)."""
    seen: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await _read_head(reader)
        if head is None:
            writer.close()
            return
        lines = head.decode().split("\r\n")
        seen.append(lines[0])
        method, authority, _ = lines[0].split(" ")
        if method != "CONNECT" or "Proxy-Authorization: Basic dTpw" not in lines:
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, port = authority.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}", seen
    server.close()


async def test_https_through_a_connect_proxy(
    connect_proxy: tuple[str, list[str]], certs: dict[str, Path]
) -> None:
    cert = certs["server_cert"]
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, certs["server_key"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (head := await _read_head(reader)) is not None:
            body = head.split(b" ")[1]  # echo the request target
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        writer.close()

    origin = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    port = origin.sockets[0].getsockname()[1]
    proxy, seen = connect_proxy
    opts = TransportOptions(ca_certificate=str(cert), https_proxy=proxy, read_timeout=5)
    try:
        with pytest.raises(FetchError, match=r"refused CONNECT 127\.0\.0\.1:\d+: HTTP 407"):
            await _get(f"https://127.0.0.1:{port}/debian/f", opts)
        authed = TransportOptions(
            ca_certificate=str(cert), https_proxy=proxy, proxy_user="u", proxy_password="p"
        )
        assert await _get(f"https://127.0.0.1:{port}/debian/a%20b", authed) == (
            200,
            b"/debian/a%20b",
        )
    finally:
        origin.close()
    assert seen == [f"CONNECT 127.0.0.1:{port} HTTP/1.1"] * 2


async def test_slow_reader_gets_every_byte_of_a_large_body(raw_server: RawServer) -> None:
    # 4 MiB arrive far faster than they are read: reading pauses at 1 MiB buffered and
    # resumes as the reader drains, and the connection is reused afterwards
    body = bytes(range(256)) * (4 * 4096)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    base, heads = await raw_server(lambda head: answer)
    async with HttpTransport(TransportOptions(read_timeout=5)) as t:
        for _ in range(2):
            got = bytearray()
            async with t.get(f"{base}/big") as r:
                await asyncio.sleep(0.2)  # the whole answer is sent meanwhile
                async for chunk in r.chunks():
                    got += chunk
                    await asyncio.sleep(0)
            assert got == body
    assert len(heads) == 2
