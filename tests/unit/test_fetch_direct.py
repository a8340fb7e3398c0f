"""aptmirror.fetch.direct: small files' first attempt, taken in the connection's callbacks.

Each test first fetches one file through the general path (which teaches the transport the
origin's plain request form), then checks that the next small files go the direct way and
behave exactly as the general path would: same events, same retries and error messages,
nothing half-written left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web

from aptmirror.errors import FetchError
from aptmirror.fetch.batch import SizeQueue, fetch_all
from aptmirror.fetch.body import meta_path, partial_path
from aptmirror.fetch.fetcher import Fetcher, FetchRequest, Outcome
from aptmirror.fetch.pace import SlowRate
from aptmirror.fetch.transport import HttpTransport, TransportOptions
from aptmirror.model import Checksums
from aptmirror.observe.events import Event, FileDone, FileFailed, FileProgress, FileStarted
from aptmirror.testing import FakeUpstream, Fault

NAMES = [f"f{i}.deb" for i in range(8)]
LARGER = "larger.deb"  # still below resume_min_size, but sent in several pieces


def content(name: str) -> bytes:
    times = 28_000 if name == LARGER else 700  # 875 KiB, 22 KiB
    return hashlib.sha256(name.encode()).digest() * times


def checksums(data: bytes) -> Checksums:
    return Checksums(len(data), (("SHA256", hashlib.sha256(data).hexdigest()),))


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[FakeUpstream]:
    root = tmp_path / "up"
    (root / "pool").mkdir(parents=True)
    for name in [*NAMES, LARGER]:
        (root / "pool" / name).write_bytes(content(name))
    async with FakeUpstream(root) as srv:
        yield srv


class Counted:
    """A fetcher whose general attempts are counted (the direct ones are not)."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.general = 0
        attempt = fetcher._attempt

        async def counted(req: FetchRequest, *sources: tuple[str, ...]) -> object:
            self.general += 1
            return await attempt(req, *sources)

        fetcher._attempt = counted  # type: ignore[method-assign,assignment]


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


Setup = Callable[..., "asyncio.Future[tuple[Fetcher, Counted, list[Event]]]"]


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    async with HttpTransport(TransportOptions(read_timeout=5)) as t:
        yield t


async def warmed(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path, **kw: object
) -> tuple[Fetcher, Counted, list[Event]]:
    """A fetcher that fetched f0.deb (general path); its events from then on."""
    events: list[Event] = []
    kw.setdefault("sleep", _no_sleep)
    fetcher = Fetcher(transport, emit=events.append, **kw)  # type: ignore[arg-type]
    counted = Counted(fetcher)
    await fetcher.fetch(request(up, tmp_path, "f0.deb"))
    assert counted.general == 1
    events.clear()
    up.reset_log()
    return fetcher, counted, events


def request(up: FakeUpstream, tmp_path: Path, name: str, **kw: object) -> FetchRequest:
    dest = tmp_path / "mirror" / "pool" / name
    return FetchRequest(f"{up.url}pool/{name}", str(dest), checksums(content(name)), **kw)  # type: ignore[arg-type]


def leftovers(tmp_path: Path) -> list[str]:
    pool = tmp_path / "mirror" / "pool"
    return sorted(p.name for p in pool.iterdir() if p.name.startswith("."))


async def test_small_files_go_directly_told_by_one_event_each(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    fetcher, counted, events = await warmed(up, transport, tmp_path)
    before = time.time()
    for name in NAMES[1:4]:
        res = await fetcher.fetch(request(up, tmp_path, name))
        assert res.outcome is Outcome.DOWNLOADED and res.size == len(content(name))
        assert res.sha256 == hashlib.sha256(content(name)).hexdigest()
        assert (tmp_path / "mirror/pool" / name).read_bytes() == content(name)
    assert counted.general == 1  # none of them took the general path
    assert fetcher.stats.files == 4 and fetcher.stats.requests == 4
    # each body came whole: its FileDone stands for FileStarted and FileProgress too
    assert [type(e) for e in events] == [FileDone] * 3
    done = events[0]
    assert isinstance(done, FileDone) and done.url == f"{up.url}pool/f1.deb"
    assert done.bytes == done.size == len(content("f1.deb")) and done.attempt == 1
    assert done.started is not None and before <= done.started <= done.at
    assert leftovers(tmp_path) == []


async def test_a_body_in_pieces_is_told_as_on_the_general_path(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    up.add_fault(f"/pool/{LARGER}", Fault("stall", after_bytes=1000, seconds=0.1, times=1))
    fetcher, counted, events = await warmed(up, transport, tmp_path)
    await fetcher.fetch(request(up, tmp_path, LARGER))
    assert counted.general == 1
    started, *progress, done = events
    assert isinstance(started, FileStarted) and started.size == len(content(LARGER))
    assert all(isinstance(e, FileProgress) for e in progress) and len(progress) >= 2
    assert sum(e.bytes for e in progress if isinstance(e, FileProgress)) == len(content(LARGER))
    assert isinstance(done, FileDone) and done.started is None
    assert started.at <= done.at


async def test_upstream_mtime_is_kept(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    os.utime(up.root / "pool/f1.deb", (1_500_000_000, 1_500_000_000))
    fetcher, counted, _ = await warmed(up, transport, tmp_path)
    await fetcher.fetch(request(up, tmp_path, "f1.deb"))
    assert counted.general == 1
    assert (tmp_path / "mirror/pool/f1.deb").stat().st_mtime == 1_500_000_000


async def test_a_5xx_is_the_first_attempt_of_the_retries(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    up.add_fault("/pool/f1.deb", Fault("status", status=503, times=1))
    fetcher, counted, events = await warmed(up, transport, tmp_path)
    res = await fetcher.fetch(request(up, tmp_path, "f1.deb"))
    assert res.outcome is Outcome.DOWNLOADED
    assert [r.status for r in up.requests] == [503, 200]
    assert counted.general == 1 + 1  # the retry only
    assert fetcher.stats.retries == 1
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert [(e.attempt, e.status, e.final) for e in failed] == [(1, 503, False)]
    done = [e for e in events if isinstance(e, FileDone)]
    assert [e.attempt for e in done] == [2]


async def test_a_missing_optional_file_is_one_request(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    fetcher, counted, _ = await warmed(up, transport, tmp_path)
    missing = FetchRequest(
        f"{up.url}pool/gone.deb", str(tmp_path / "mirror/pool/gone.deb"), checksums(b"x"),
        optional=True,
    )  # fmt: skip
    res = await fetcher.fetch(missing)
    assert res.outcome is Outcome.NOT_FOUND
    assert [r.status for r in up.requests] == [404] and counted.general == 1


async def test_a_missing_required_file_fails_like_the_general_path(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    fetcher, _, events = await warmed(up, transport, tmp_path)
    missing = FetchRequest(
        f"{up.url}pool/gone.deb", str(tmp_path / "mirror/pool/gone.deb"), checksums(b"x")
    )
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(missing)
    assert info.value.reason == "attempt 1: HTTP 404 (last HTTP status 404)"
    assert [r.status for r in up.requests] == [404]
    assert fetcher.stats.failures == 1
    assert [(e.attempt, e.final) for e in events if isinstance(e, FileFailed)] == [(1, True)]


@pytest.mark.parametrize(
    "fault",
    [
        Fault("reset", after_bytes=5000, times=1),
        Fault("truncate", after_bytes=5000, times=1),
        Fault("corrupt", times=1),
        Fault("html", times=1),
    ],
)
async def test_a_bad_body_is_deleted_and_fetched_whole_again(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path, fault: Fault
) -> None:
    up.add_fault("/pool/f1.deb", fault)
    fetcher, _, events = await warmed(up, transport, tmp_path)
    res = await fetcher.fetch(request(up, tmp_path, "f1.deb"))
    assert res.outcome is Outcome.DOWNLOADED
    assert (tmp_path / "mirror/pool/f1.deb").read_bytes() == content("f1.deb")
    assert [r.range_header for r in up.requests] == [None, None]  # no resume: fetched whole
    assert [e.attempt for e in events if isinstance(e, FileFailed)] == [1]
    assert leftovers(tmp_path) == []


async def test_an_announced_oversize_body_is_refused(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    up.add_fault("/pool/f1.deb", Fault("wrong_length", extra_length=10, times=1))
    fetcher, _, events = await warmed(up, transport, tmp_path)
    await fetcher.fetch(request(up, tmp_path, "f1.deb"))
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert len(failed) == 1 and "server announces" in failed[0].reason
    assert leftovers(tmp_path) == []


async def test_a_stalled_transfer_times_out_and_is_retried(
    up: FakeUpstream, tmp_path: Path
) -> None:
    up.add_fault("/pool/f1.deb", Fault("stall", after_bytes=1000, seconds=5, times=1))
    async with HttpTransport(TransportOptions(read_timeout=0.3)) as transport:
        fetcher, _, events = await warmed(up, transport, tmp_path)
        started = asyncio.get_running_loop().time()
        res = await fetcher.fetch(request(up, tmp_path, "f1.deb"))
        took = asyncio.get_running_loop().time() - started
    assert res.outcome is Outcome.DOWNLOADED
    assert 0.3 <= took < 3
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert len(failed) == 1 and "timed out" in failed[0].reason


async def test_a_transfer_lagging_behind_the_others_is_aborted(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    """As on the general path: 1000 bytes, then 0.5 s of nothing while another file runs."""
    fast = os.urandom(8 << 20)  # resumable size: the general path
    (up.root / "pool/fast.deb").write_bytes(fast)
    up.add_fault(f"/pool/{LARGER}", Fault("stall", after_bytes=1000, seconds=0.5, times=1))
    fetcher, counted, events = await warmed(
        up, transport, tmp_path, slow_rate=SlowRate(10 * 1024 * 1024, startup=0.1)
    )
    other = FetchRequest(f"{up.url}pool/fast.deb", str(tmp_path / "fast.deb"), checksums(fast))
    res, _ = await asyncio.gather(
        fetcher.fetch(request(up, tmp_path, LARGER)), fetcher.fetch(other)
    )
    assert res.outcome is Outcome.DOWNLOADED
    assert (tmp_path / "mirror/pool" / LARGER).read_bytes() == content(LARGER)
    assert counted.general == 1 + 2  # the other file, and the retry
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert len(failed) == 1 and failed[0].reason.startswith("too slow:")
    assert leftovers(tmp_path) == []


async def test_a_resumable_partial_file_goes_the_general_way(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    fetcher, counted, _ = await warmed(up, transport, tmp_path)
    req = request(up, tmp_path, "f1.deb")
    data = content("f1.deb")
    tmp = partial_path(Path(req.dest))
    tmp.write_bytes(data[:3000])
    lm = (up.root / "pool/f1.deb").stat().st_mtime
    from email.utils import formatdate

    validator = formatdate(lm, usegmt=True)
    meta_path(tmp).write_text(f'{{"url": "{req.url}", "validator": "{validator}"}}\n')
    res = await fetcher.fetch(req)
    assert res.outcome is Outcome.DOWNLOADED
    assert counted.general == 2
    assert [r.range_header for r in up.requests] == ["bytes=3000-"]
    assert Path(req.dest).read_bytes() == data


async def test_a_local_disk_error_is_final(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    fetcher, _, _ = await warmed(up, transport, tmp_path)
    (tmp_path / "mirror/pool/blocked").write_text("a file where a directory should be")
    dest = tmp_path / "mirror/pool/blocked/f1.deb"
    req = FetchRequest(f"{up.url}pool/f1.deb", str(dest), checksums(content("f1.deb")))
    with pytest.raises(FetchError, match="cannot write") as info:
        await fetcher.fetch(req)
    assert not info.value.retryable
    assert len(up.requests) == 1  # not retried


async def test_a_redirect_is_followed_by_the_general_path(tmp_path: Path) -> None:
    data = content("f1.deb")
    app = web.Application()

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(location="/pool/f1.deb")

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=data)

    app.router.add_get("/pool/moved.deb", moved)
    app.router.add_get("/pool/f1.deb", file)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}/pool/"
    try:
        async with HttpTransport(TransportOptions()) as transport:
            fetcher = Fetcher(transport)
            counted = Counted(fetcher)
            for name in ("f1.deb", "moved.deb"):
                dest = tmp_path / name
                res = await fetcher.fetch(FetchRequest(base + name, str(dest), checksums(data)))
                assert res.outcome is Outcome.DOWNLOADED and dest.read_bytes() == data
            assert counted.general == 2  # the first file, and the redirected one
            assert fetcher.stats.retries == 0 and fetcher.stats.failures == 0
    finally:
        await runner.cleanup()


async def test_workers_keep_their_connection_and_give_it_back(
    up: FakeUpstream, tmp_path: Path
) -> None:
    up.add_fault("/pool/f5.deb", Fault("status", status=503, times=1))
    async with HttpTransport(TransportOptions(max_connections=1)) as transport:
        fetcher, _, _ = await warmed(up, transport, tmp_path, base_delay=0.0)
        names = NAMES[1:]
        queue = SizeQueue([len(content(n)) for n in names])
        errors: list[FetchError] = []
        done: list[int] = []

        def req_of(i: int) -> FetchRequest:
            return request(up, tmp_path, names[i])

        # one place in the limits for two workers: each keeps it while it has files, and
        # the general path (the 503's retry) must find it free
        await asyncio.wait_for(
            fetch_all(fetcher, queue, req_of, 2, lambda i, e: errors.append(e), done.append),
            timeout=10,
        )
        assert errors == [] and sorted(done) == list(range(len(names)))
        pool = transport._pool
        assert pool is not None and pool._slots._value == 1  # given back
    for name in names:
        assert (tmp_path / "mirror/pool" / name).read_bytes() == content(name)


async def test_small_files_go_directly_over_tls(certs: dict[str, Path], tmp_path: Path) -> None:
    files = {name: content(name) for name in NAMES[:4]}
    app = web.Application()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=files[request.match_info["name"]])

    app.router.add_get("/pool/{name}", serve)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    base = f"https://127.0.0.1:{runner.addresses[0][1]}/pool/"
    try:
        options = TransportOptions(ca_certificate=str(certs["server_cert"]), https_only=True)
        async with HttpTransport(options) as transport:
            fetcher = Fetcher(transport)
            counted = Counted(fetcher)
            for name, data in files.items():
                dest = tmp_path / name
                res = await fetcher.fetch(FetchRequest(base + name, str(dest), checksums(data)))
                assert res.outcome is Outcome.DOWNLOADED and dest.read_bytes() == data
            assert counted.general == 1  # the first one only
    finally:
        await runner.cleanup()
