"""Tests of aptmirror.testing.server: static serving, conditional/range requests, faults."""

from __future__ import annotations

import asyncio
import base64
import urllib.request
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest

from aptmirror.testing import FakeUpstream, Fault, ThreadedUpstream

BODY = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "dists/stable").mkdir(parents=True)
    (root / "dists/stable/InRelease").write_bytes(BODY)
    (root / "pool/main/lib+").mkdir(parents=True)
    (root / "pool/main/lib+/a+b~1.deb").write_bytes(b"deb")
    (root / "dists/bookworm").symlink_to("stable")
    (tmp_path / "secret").write_bytes(b"secret")
    (root / "escape").symlink_to(tmp_path / "secret")
    return root


@pytest.fixture
async def served(tree: Path) -> AsyncIterator[tuple[FakeUpstream, aiohttp.ClientSession]]:
    async with FakeUpstream(tree, path_prefix="debian") as srv, aiohttp.ClientSession() as s:
        yield srv, s


async def _get(
    s: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[int, bytes, Mapping[str, str]]:
    async with s.get(url, headers=headers) as r:
        return r.status, await r.read(), r.headers.copy()


async def test_get_head_range_and_conditionals(
    served: tuple[FakeUpstream, aiohttp.ClientSession],
) -> None:
    srv, s = served
    assert srv.url.endswith("/debian/")
    url = srv.url + "dists/stable/InRelease"
    status, body, h = await _get(s, url)
    assert (status, body) == (200, BODY)
    etag, last_modified = h["ETag"], h["Last-Modified"]
    async with s.head(url) as r:
        assert r.status == 200 and r.headers["Content-Length"] == str(len(BODY))
    status, body, h = await _get(s, url, Range="bytes=100-199")
    assert (status, body, h["Content-Range"]) == (206, BODY[100:200], "bytes 100-199/10240")
    status, body, _ = await _get(s, url, Range="bytes=10000-")
    assert (status, body) == (206, BODY[10000:])
    status, body, _ = await _get(s, url, Range="bytes=-10")
    assert (status, body) == (206, BODY[-10:])
    status, _, h = await _get(s, url, Range="bytes=20000-")
    assert (status, h["Content-Range"]) == (416, "bytes */10240")
    status, body, _ = await _get(s, url, Range="bytes=5-", **{"If-Range": etag})
    assert (status, body) == (206, BODY[5:])
    status, body, _ = await _get(s, url, Range="bytes=5-", **{"If-Range": '"other"'})
    assert (status, body) == (200, BODY)
    assert (await _get(s, url, **{"If-None-Match": etag}))[0] == 304
    assert (await _get(s, url, **{"If-Modified-Since": last_modified}))[0] == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert (await _get(s, url, **{"If-Modified-Since": old}))[0] == 200
    assert srv.count("*/InRelease") == 11
    assert srv.count("*/InRelease", method="HEAD") == 1
    assert [r.range_header for r in srv.requests][2] == "bytes=100-199"
    srv.reset_log()
    assert srv.requests == []


async def test_paths(served: tuple[FakeUpstream, aiohttp.ClientSession], tree: Path) -> None:
    srv, s = served
    status, body, _ = await _get(s, srv.url + "pool/main/lib%2b/a%2bb%7e1.deb")
    assert (status, body) == (200, b"deb")
    assert (await _get(s, srv.url + "dists/bookworm/InRelease"))[0] == 200  # symlink inside
    assert (await _get(s, srv.url + "escape"))[0] == 404  # symlink out of the root
    assert (await _get(s, srv.url + "dists/stable/%2e%2e/%2e%2e/%2e%2e/secret"))[0] == 404
    assert (await _get(s, srv.url + "missing"))[0] == 404
    assert (await _get(s, srv.url + "dists/stable"))[0] == 404  # directories are not served
    base = srv.url.removesuffix("debian/")
    assert (await _get(s, base + "dists/stable/InRelease"))[0] == 404  # outside the prefix
    assert srv.requests[0].path == "/debian/pool/main/lib+/a+b~1.deb"


async def test_status_faults_and_times(
    served: tuple[FakeUpstream, aiohttp.ClientSession],
) -> None:
    srv, s = served
    url = srv.url + "dists/stable/InRelease"
    srv.add_fault("*InRelease", Fault("status", times=2, status=503, retry_after=7))
    status, _, h = await _get(s, url)
    assert (status, h["Retry-After"]) == (503, "7")
    assert (await _get(s, url))[0] == 503
    assert (await _get(s, url))[0] == 200  # times used up
    srv.add_fault("*", Fault("status", status=404))
    assert (await _get(s, url))[0] == 404
    assert (await _get(s, url))[0] == 404  # times=None: every time
    srv.clear_faults()
    assert (await _get(s, url))[0] == 200
    assert [r.fault for r in srv.requests] == ["status", "status", None, "status", "status", None]


async def test_body_faults(served: tuple[FakeUpstream, aiohttp.ClientSession]) -> None:
    srv, s = served
    url = srv.url + "dists/stable/InRelease"
    for kind in ("reset", "truncate", "wrong_length"):
        srv.add_fault("*", Fault(kind, times=1, after_bytes=1000))
        with pytest.raises(aiohttp.ClientPayloadError):
            await _get(s, url)
    srv.add_fault("*", Fault("corrupt", times=1))
    status, body, _ = await _get(s, url)
    assert status == 200 and len(body) == len(BODY) and body != BODY
    assert sum(a != b for a, b in zip(body, BODY, strict=True)) == 1
    srv.add_fault("*", Fault("ignore_range", times=1))
    status, body, _ = await _get(s, url, Range="bytes=10-")
    assert (status, body) == (200, BODY)
    srv.add_fault("*", Fault("html", times=1))
    status, body, h = await _get(s, url)
    assert status == 200 and h["Content-Type"].startswith("text/html") and b"<html>" in body
    assert (await _get(s, url))[1] == BODY


async def test_stall_is_cut_short_by_stop(tree: Path) -> None:
    srv = FakeUpstream(tree)
    await srv.start()
    srv.add_fault("*", Fault("stall", seconds=3600))
    async with aiohttp.ClientSession() as s, s.get(srv.url + "dists/stable/InRelease") as r:
        assert r.status == 200  # headers arrive, the body stalls
        reader = asyncio.create_task(r.read())
        await asyncio.sleep(0)
        assert not reader.done()
        await asyncio.wait_for(srv.stop(), 5)  # wakes the stalled handler at once
        assert await asyncio.wait_for(reader, 5) == BODY


async def test_basic_auth(tree: Path) -> None:
    async with FakeUpstream(tree, auth=("u", "p")) as srv, aiohttp.ClientSession() as s:
        url = srv.url + "dists/stable/InRelease"
        assert (await _get(s, url))[0] == 401
        good = "Basic " + base64.b64encode(b"u:p").decode()
        assert (await _get(s, url, Authorization=good))[0] == 200
        bad = "Basic " + base64.b64encode(b"u:x").decode()
        assert (await _get(s, url, Authorization=bad))[0] == 401


async def test_hook_runs_before_serving(
    served: tuple[FakeUpstream, aiohttp.ClientSession], tree: Path
) -> None:
    srv, s = served
    srv.add_hook("*/InRelease", lambda path: (tree / "dists/stable/InRelease").write_bytes(b"new"))
    assert (await _get(s, srv.url + "dists/stable/InRelease"))[1] == b"new"


def test_threaded_upstream(tree: Path) -> None:
    with ThreadedUpstream(tree) as srv:
        with urllib.request.urlopen(srv.url + "dists/stable/InRelease") as r:
            assert r.read() == BODY
        srv.add_fault("*", Fault("status", times=1, status=500))
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + "dists/stable/InRelease")
        assert err.value.code == 500
        assert srv.count("/dists/*") == 2
        url = srv.url
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "dists/stable/InRelease", timeout=2)
