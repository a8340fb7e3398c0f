"""aptmirror.fetch.fetcher against the fake upstream: retries, Retry-After, resume, pacing.

Every test injects the sleep (recorded, never slept) unless it measures real time.
"""

from __future__ import annotations

import asyncio
import email.utils
import gc
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from aptmirror.errors import FetchError
from aptmirror.fetch.body import meta_path, partial_path
from aptmirror.fetch.fetcher import Fetcher, FetchRequest, Outcome, parse_retry_after
from aptmirror.fetch.pace import SlowRate, slow_floor
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.fetch.transport import HttpTransport, TransportOptions
from aptmirror.model import Checksums
from aptmirror.testing import FakeUpstream, Fault

BODY = os.urandom(1024 * 1024 + 123)  # several 256 KiB chunks
SMALL = b"small file\n" * 10


def checksums(data: bytes) -> Checksums:
    return Checksums(len(data), (("SHA256", hashlib.sha256(data).hexdigest()),))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "up"
    (root / "pool").mkdir(parents=True)
    (root / "pool/big.deb").write_bytes(BODY)
    (root / "pool/small.deb").write_bytes(SMALL)
    return root


@pytest.fixture
async def up(tree: Path) -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(tree) as srv:
        yield srv


class Sleeps:
    """An injected sleep: records the delays, yields to the loop, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


Make = Callable[..., Fetcher]


@pytest.fixture
async def transport() -> AsyncIterator[HttpTransport]:
    async with HttpTransport(TransportOptions(read_timeout=5)) as t:
        yield t


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make(transport: HttpTransport, sleeps: Sleeps) -> Make:
    def _make(**kw: object) -> Fetcher:
        kw.setdefault("sleep", sleeps)
        kw.setdefault("resume_min_size", 0)  # the test bodies are small: resume them too
        return Fetcher(transport, **kw)  # type: ignore[arg-type]

    return _make


def req(up: FakeUpstream, dest: Path, name: str = "big.deb", **kw: object) -> FetchRequest:
    data = BODY if name == "big.deb" else SMALL
    return FetchRequest(f"{up.url}pool/{name}", dest, checksums(data), **kw)  # type: ignore[arg-type]


def gets(up: FakeUpstream, path: str = "/pool/big.deb") -> list[tuple[int, str | None]]:
    return [(r.status, r.range_header) for r in up.requests if r.path == path]


# --------------------------------------------------------------------------- retries


async def test_5xx_burst_retried_with_backoff(up: FakeUpstream, make: Make, tmp_path: Path) -> None:
    up.add_fault("/pool/small.deb", Fault("status", status=503, times=2))
    sleeps = Sleeps()
    f = make(sleep=sleeps, base_delay=2.0)
    res = await f.fetch(req(up, tmp_path / "s.deb", "small.deb"))
    assert res.outcome is Outcome.DOWNLOADED
    assert (tmp_path / "s.deb").read_bytes() == SMALL
    assert [s for s, _ in gets(up, "/pool/small.deb")] == [503, 503, 200]
    assert len(sleeps.delays) == 2 and f.stats.retries == 2
    assert 1.0 <= sleeps.delays[0] <= 3.0 and 2.0 <= sleeps.delays[1] <= 6.0  # 2 s, 4 s ± 50 %


def test_backoff_doubles_is_jittered_and_capped(transport: HttpTransport) -> None:
    f = Fetcher(transport, base_delay=2.0, max_delay=10.0, max_retry_after=30.0)
    for attempt, nominal in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (9, 10.0)):
        values = {f.backoff(attempt) for _ in range(50)}
        assert all(0.5 * nominal <= v <= 1.5 * nominal for v in values)
        assert len(values) > 1  # jitter
    assert f.backoff(1, retry_after=20) == 20  # Retry-After wins over a shorter backoff
    assert f.backoff(1, retry_after=10_000) == 30  # ... capped


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses(
    up: FakeUpstream, make: Make, tmp_path: Path, status: int
) -> None:
    up.add_fault("/pool/small.deb", Fault("status", status=status, times=1))
    res = await make().fetch(req(up, tmp_path / "s.deb", "small.deb"))
    assert res.outcome is Outcome.DOWNLOADED


@pytest.mark.parametrize(
    ("retry_after", "low", "high"),
    [(7, 7.0, 7.0), (100_000, 120.0, 120.0), ("date+30", 25.0, 31.0), ("garbage", 0.5, 1.5)],
)
async def test_retry_after_honoured_and_capped(
    up: FakeUpstream, make: Make, tmp_path: Path, retry_after: object, low: float, high: float
) -> None:
    if retry_after == "date+30":
        retry_after = email.utils.formatdate(time.time() + 30, usegmt=True)
    fault = Fault("status", status=429, times=1, retry_after=retry_after)  # type: ignore[arg-type]
    up.add_fault("/pool/small.deb", fault)
    sleeps = Sleeps()
    await make(sleep=sleeps, base_delay=1.0, max_retry_after=120.0).fetch(
        req(up, tmp_path / "s.deb", "small.deb")
    )
    assert len(sleeps.delays) == 1 and low <= sleeps.delays[0] <= high


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 60, usegmt=True), now) == 60.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0.0


async def test_404_optional_is_an_outcome_never_retried(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    f = make()
    url = f"{up.url}pool/missing.deb"
    res = await f.fetch(FetchRequest(url, tmp_path / "m", checksums(b"x"), optional=True))
    assert res.outcome is Outcome.NOT_FOUND and up.count("/pool/missing.deb") == 1
    with pytest.raises(FetchError) as info:
        await f.fetch(FetchRequest(url, tmp_path / "m", checksums(b"x")))
    assert up.count("/pool/missing.deb") == 2  # required: final at once
    assert info.value.reason == "attempt 1: HTTP 404 (last HTTP status 404)"


async def test_give_up_names_url_every_cause_and_last_status(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    up.add_fault("/pool/small.deb", Fault("status", status=500, times=1))
    up.add_fault("/pool/small.deb", Fault("corrupt", times=1))
    up.add_fault("/pool/small.deb", Fault("status", status=503))
    f = make(attempts=3)
    with pytest.raises(FetchError) as info:
        await f.fetch(req(up, tmp_path / "s.deb", "small.deb"))
    err = info.value
    assert err.url == f"{up.url}pool/small.deb" and str(err).startswith(err.url)
    assert err.reason.startswith("attempt 1: HTTP 500; attempt 2: SHA256 mismatch")
    assert err.reason.endswith("; attempt 3: HTTP 503 (last HTTP status 503)")
    assert f.stats.failures == 1 and not (tmp_path / "s.deb").exists()


async def test_connection_refused_is_retried(make: Make, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    f = make(attempts=3)
    url = f"http://127.0.0.1:{port}/x.deb"
    with pytest.raises(FetchError) as info:
        await f.fetch(FetchRequest(url, tmp_path / "x", checksums(b"x")))
    assert info.value.reason.count("attempt") == 3 and "last HTTP status" not in info.value.reason
    assert f.stats.retries == 2


async def test_read_timeout_on_a_stall_is_retried(up: FakeUpstream, tmp_path: Path) -> None:
    up.add_fault("/pool/small.deb", Fault("stall", seconds=5, times=1))
    sleeps = Sleeps()
    async with HttpTransport(TransportOptions(read_timeout=0.3)) as t:
        started = time.monotonic()
        res = await Fetcher(t, sleep=sleeps).fetch(req(up, tmp_path / "s.deb", "small.deb"))
    assert res.outcome is Outcome.DOWNLOADED and time.monotonic() - started < 3
    assert len(sleeps.delays) == 1


# --------------------------------------------------------------------------- resume


def _range_start(header: str | None) -> int:
    assert header is not None and header.startswith("bytes=") and header.endswith("-")
    return int(header[len("bytes=") : -1])


async def test_small_file_cut_off_is_resumed_in_the_same_run(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """Below resume_min_size no sidecar is written up front, but a cut-off body is kept."""
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=600_000, times=1))
    dest = tmp_path / "pool/big.deb"
    f = make(resume_min_size=len(BODY) + 1)
    res = await f.fetch(req(up, dest))
    assert dest.read_bytes() == BODY and res.sha256 == hashlib.sha256(BODY).hexdigest()
    (s1, r1), (s2, r2) = gets(up)
    assert (s1, r1, s2) == (200, None, 206)
    assert 0 < _range_start(r2) <= 600_000
    assert f.stats.resumed == 1
    assert not partial_path(dest).exists() and not meta_path(partial_path(dest)).exists()


async def test_fresh_request_skips_the_partial_file_only_on_its_first_attempt(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """``fresh``: the planner saw no directory, so no partial file is looked for up front;
    one the first attempt leaves behind is still resumed by the retry."""
    dest = tmp_path / "pool/big.deb"
    tmp = partial_path(dest)
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(BODY[:1000])  # would be resumed without ``fresh``
    meta_path(tmp).write_text(json.dumps({"url": f"{up.url}pool/big.deb", "validator": "x"}))
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=600_000, times=1))
    f = make()
    await f.fetch(req(up, dest, fresh=True))
    assert dest.read_bytes() == BODY
    (s1, r1), (s2, r2) = gets(up)
    assert (s1, r1, s2) == (200, None, 206)  # no Range on the first attempt
    assert 1000 < _range_start(r2) <= 600_000  # the retry continued what attempt 1 wrote


async def test_reset_mid_body_resumes_with_range(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=600_000, times=1))
    dest = tmp_path / "pool/big.deb"
    f = make()
    res = await f.fetch(req(up, dest))
    assert dest.read_bytes() == BODY and res.sha256 == hashlib.sha256(BODY).hexdigest()
    (s1, r1), (s2, r2) = gets(up)
    assert (s1, r1, s2) == (200, None, 206)
    assert 0 < _range_start(r2) <= 600_000
    assert f.stats.resumed == 1 and f.stats.resumed_bytes == _range_start(r2)
    assert f.stats.bytes == len(BODY) - _range_start(r2)  # only the rest came over the wire
    assert not partial_path(dest).exists() and not meta_path(partial_path(dest)).exists()


async def test_resume_across_runs_from_partial_and_sidecar(
    up: FakeUpstream, transport: HttpTransport, tmp_path: Path
) -> None:
    """A run gives up mid-body; the next run (a new Fetcher) continues the partial file."""
    up.add_fault("/pool/big.deb", Fault("truncate", after_bytes=300_000, times=1))
    dest = tmp_path / "big.deb"
    with pytest.raises(FetchError):
        await Fetcher(transport, attempts=1, sleep=Sleeps(), resume_min_size=0).fetch(req(up, dest))
    tmp = partial_path(dest)
    kept = tmp.stat().st_size
    assert 0 < kept <= 300_000
    meta = json.loads(meta_path(tmp).read_text())
    assert meta["url"] == f"{up.url}pool/big.deb" and meta["validator"].startswith('"')
    second = Fetcher(transport, sleep=Sleeps(), resume_min_size=0)
    await second.fetch(req(up, dest))
    assert dest.read_bytes() == BODY
    assert gets(up)[-1] == (206, f"bytes={kept}-")
    assert second.stats.resumed == 1


async def test_server_ignoring_range_restarts_cleanly(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=500_000, times=1))
    up.add_fault("/pool/big.deb", Fault("ignore_range", times=1))
    dest = tmp_path / "big.deb"
    f = make()
    await f.fetch(req(up, dest))
    assert dest.read_bytes() == BODY
    (_, r1), (s2, r2) = gets(up)
    assert r1 is None and s2 == 200 and r2 is not None  # asked for a range, got the whole file
    assert f.stats.resumed == 0 and f.stats.bytes == len(BODY)


async def test_changed_validator_restarts_cleanly(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    dest = tmp_path / "big.deb"
    tmp = partial_path(dest)
    tmp.write_bytes(b"\0" * 1000)  # bytes of an older version of the file
    meta_path(tmp).write_text(json.dumps({"url": f"{up.url}pool/big.deb", "validator": '"old"'}))
    await make().fetch(req(up, dest))
    assert dest.read_bytes() == BODY
    assert gets(up) == [(200, "bytes=1000-")]  # If-Range did not match: full body


async def test_bad_prefix_is_caught_by_the_whole_file_hash(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """The server accepts the Range, but the kept prefix is wrong: discard and restart."""
    dest = tmp_path / "big.deb"
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=400_000, times=1))
    with pytest.raises(FetchError):
        await make(attempts=1).fetch(req(up, dest))
    tmp = partial_path(dest)
    data = bytearray(tmp.read_bytes())
    data[10] ^= 0xFF
    tmp.write_bytes(bytes(data))
    f = make()
    await f.fetch(req(up, dest))
    assert dest.read_bytes() == BODY
    statuses = [(s, r is not None) for s, r in gets(up)]
    assert statuses == [(200, False), (206, True), (200, False)]
    assert "SHA256 mismatch" not in str(f.stats)  # retried, not failed
    assert f.stats.failures == 0 and f.stats.retries == 1


async def test_partial_for_another_url_is_not_resumed(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    dest = tmp_path / "big.deb"
    tmp = partial_path(dest)
    tmp.write_bytes(BODY[:1000])
    meta_path(tmp).write_text(json.dumps({"url": "http://elsewhere/big.deb", "validator": "x"}))
    await make().fetch(req(up, dest))
    assert gets(up) == [(200, None)] and dest.read_bytes() == BODY
    assert not meta_path(tmp).exists()


async def test_a_sidecar_without_its_partial_file_goes_with_the_fresh_download(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """A disk full as an earlier transfer began: its sidecar was written, its partial file
    was not. The file is fetched afresh (too small to resume) and the sidecar removed."""
    dest = tmp_path / "s.deb"
    tmp = partial_path(dest)
    meta_path(tmp).write_text(json.dumps({"url": f"{up.url}pool/small.deb", "validator": "x"}))
    await make(resume_min_size=1 << 20).fetch(req(up, dest, "small.deb"))
    assert dest.read_bytes() == SMALL and gets(up, "/pool/small.deb") == [(200, None)]
    assert not meta_path(tmp).exists() and not tmp.exists()


async def test_resume_off_restarts_from_zero(up: FakeUpstream, make: Make, tmp_path: Path) -> None:
    up.add_fault("/pool/big.deb", Fault("reset", after_bytes=500_000, times=1))
    dest = tmp_path / "big.deb"
    await make(resume=False).fetch(req(up, dest))
    assert dest.read_bytes() == BODY
    assert [r for _, r in gets(up)] == [None, None]
    assert not meta_path(partial_path(dest)).exists()


async def test_wrong_content_length_is_resumed(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """A Content-Length too large and an early close: the body so far is kept and resumed."""
    up.add_fault("/pool/small.deb", Fault("wrong_length", extra_length=10, times=1))
    dest = tmp_path / "s.deb"
    f = make()
    with pytest.raises(FetchError, match="server announces"):
        await make(attempts=1).fetch(req(up, dest, "small.deb"))
    await f.fetch(req(up, dest, "small.deb"))
    assert dest.read_bytes() == SMALL


# --------------------------------------------------------------------------- pacing


async def test_global_rate_limit_bounds_throughput(up: FakeUpstream, tmp_path: Path) -> None:
    """Two transfers at once share ONE 1 MiB/s budget: 2 MiB take ~2 s (1 s if per transfer)."""
    rate = 1024 * 1024
    limiter = RateLimiter(rate, burst_seconds=0.1)
    async with HttpTransport(TransportOptions()) as t:
        f = Fetcher(t, limiter=limiter)
        started = time.monotonic()
        await asyncio.gather(
            *(
                f.fetch(FetchRequest(f"{up.url}pool/big.deb", tmp_path / n, checksums(BODY)))
                for n in ("a", "b")
            )
        )
        elapsed = time.monotonic() - started
    assert (tmp_path / "a").read_bytes() == BODY == (tmp_path / "b").read_bytes()
    expected = 2 * len(BODY) / rate - 0.1
    assert expected * 0.9 <= elapsed < expected + 1.0, elapsed


class _FakeTime:
    """A clock that only the limiter's sleeps move (and :attr:`now` set by the test)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def limiter(self, shared_fd: int | None = None) -> RateLimiter:
        """1000 B/s, 1 s of burst."""
        return RateLimiter(
            1000, burst_seconds=1.0, clock=lambda: self.now, sleep=self.sleep, shared_fd=shared_fd
        )


async def test_rate_limiter_virtual_clock() -> None:
    fake = _FakeTime()
    lim = fake.limiter()
    for _ in range(10):
        await lim.consume(500)  # 5000 bytes at 1000 B/s, 1 s burst → 4 s of waiting
    assert sum(fake.slept) == pytest.approx(4.0)
    fake.slept.clear()
    fake.now += 60  # idle for a minute: the budget is not saved up beyond the burst
    for _ in range(6):
        await lim.consume(500)
    assert sum(fake.slept) == pytest.approx(2.0)
    assert RateLimiter(None).rate is None and RateLimiter(0).rate is None


@pytest.fixture(params=[True, False], ids=["memfd", "no-memfd"])
def memfd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Shared clocks in a memfd, or (as under a seccomp filter without memfd_create) in an
    unlinked temporary file."""
    if not request.param:
        monkeypatch.delattr(os, "memfd_create")
    return bool(request.param)


async def test_limiters_sharing_a_clock_draw_on_one_budget(memfd: bool) -> None:
    fake = _FakeTime()
    first = fake.limiter()
    await first.consume(500)  # spent before it is shared: still counts
    second = fake.limiter(shared_fd=first.shared_fd())
    for limiter in (first, second) * 4 + (first,):
        await limiter.consume(500)  # 5000 bytes at 1000 B/s between them → 4 s of waiting
    assert sum(fake.slept) == pytest.approx(4.0)


async def test_a_shared_rate_limit_spans_processes(memfd: bool) -> None:
    """Another process (as a pool worker) spends 2 s of a 1000 B/s budget: this process's
    next 1000 bytes wait for the rest of those 2 s plus their own 1 s (1 s alone)."""
    slept: list[float] = []

    async def sleep(d: float) -> None:
        slept.append(d)

    limiter = RateLimiter(1000, burst_seconds=0.0, sleep=sleep)
    fd = limiter.shared_fd()
    child = (
        "import asyncio, sys\n"
        "from aptmirror.fetch.ratelimit import RateLimiter\n"
        "async def nap(d): pass\n"
        "asyncio.run(RateLimiter(1000, burst_seconds=0.0, sleep=nap,"
        " shared_fd=int(sys.argv[1])).consume(2000))\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", child, str(fd)], check=True, pass_fds=(fd,))
    await limiter.consume(1000)
    elapsed = time.monotonic() - started
    assert len(slept) == 1 and 3.0 - elapsed <= slept[0] <= 3.0, (slept, elapsed)
    assert slept[0] > 1.5  # not this process's 1 s alone


def test_a_shared_clock_is_closed_with_its_limiter(memfd: bool) -> None:
    limiter = RateLimiter(1000)
    fd = limiter.shared_fd()
    assert os.fstat(fd).st_nlink == 0  # nothing left behind on disk
    assert limiter.shared_fd() == fd  # made once
    os.fstat(fd)
    del limiter
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_slow_floor_is_capped_by_the_fair_share() -> None:
    assert slow_floor(100_000, run_rate=10_000_000, streaming=4) == 100_000  # others are fast
    assert slow_floor(100_000, run_rate=400_000, streaming=8) == 25_000  # a saturated link
    assert slow_floor(100_000, run_rate=50_000, streaming=1) == 25_000  # alone: only itself


async def test_transfer_lagging_behind_the_others_is_aborted_and_resumed(
    up: FakeUpstream, make: Make, tree: Path, tmp_path: Path
) -> None:
    """A stuck transfer (50 bytes, then 0.6 s of nothing) while another one runs fast."""
    (tree / "pool/stuck.deb").write_bytes(BODY)
    up.add_fault("/pool/stuck.deb", Fault("stall", after_bytes=50, seconds=0.6, times=1))
    events: list[object] = []
    f = make(slow_rate=SlowRate(10 * 1024 * 1024, startup=0.2), emit=events.append)
    stuck = FetchRequest(f"{up.url}pool/stuck.deb", tmp_path / "stuck.deb", checksums(BODY))
    await asyncio.gather(f.fetch(stuck), f.fetch(req(up, tmp_path / "big.deb")))
    assert (tmp_path / "stuck.deb").read_bytes() == BODY
    (s1, r1), (s2, r2) = gets(up, "/pool/stuck.deb")
    assert (s1, r1, s2) == (200, None, 206) and 50 <= _range_start(r2) < len(BODY)
    assert f.stats.retries == 1 and f.stats.resumed == 1
    failed = [e for e in events if type(e).__name__ == "FileFailed"]
    assert len(failed) == 1 and "too slow" in str(failed[0])
    assert "(slow_rate 10485760 B/s)" in str(failed[0])


async def test_lone_slow_transfer_is_not_aborted(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """Nothing else runs: the link may be the limit, so no abort (the read timeout remains)."""
    up.add_fault("/pool/big.deb", Fault("stall", after_bytes=50, seconds=0.4, times=1))
    f = make(slow_rate=SlowRate(10 * 1024 * 1024, startup=0.1))
    await f.fetch(req(up, tmp_path / "big.deb"))
    assert gets(up) == [(200, None)] and f.stats.retries == 0


async def test_slow_rate_does_not_count_our_own_rate_limit(
    up: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    """Waiting in the global limiter is not the upstream being slow."""
    now = [0.0]

    async def sleep(d: float) -> None:
        now[0] += d

    limiter = RateLimiter(64 * 1024, burst_seconds=0.0, clock=lambda: now[0], sleep=sleep)
    f = make(limiter=limiter, slow_rate=SlowRate(1024 * 1024, startup=1.0), clock=lambda: now[0])
    await f.fetch(req(up, tmp_path / "big.deb"))  # 16 s of virtual limiter time, no abort
    assert (tmp_path / "big.deb").read_bytes() == BODY
    assert now[0] >= 15.0


# --------------------------------------------------------------------------- connections


async def test_per_host_connection_limit(up: FakeUpstream, tmp_path: Path) -> None:
    up.add_fault("/pool/*", Fault("stall", seconds=0.3))
    options = TransportOptions(max_connections=10, max_connections_per_host=2)
    async with HttpTransport(options) as t:
        f = Fetcher(t, sleep=Sleeps())
        started = time.monotonic()
        await asyncio.gather(
            *(
                f.fetch(
                    FetchRequest(f"{up.url}pool/small.deb", tmp_path / f"{i}", checksums(SMALL))
                )
                for i in range(6)
            )
        )
        elapsed = time.monotonic() - started
    assert elapsed >= 0.85  # 6 stalled requests, 2 at a time: 3 rounds of 0.3 s


# --------------------------------------------------------------------------- several sources


@pytest.fixture
async def up2(tree: Path) -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream(tree) as srv:
        yield srv


def _many(tree: Path, n: int) -> list[str]:
    names = []
    for i in range(n):
        name = f"f{i}.deb"
        (tree / "pool" / name).write_bytes(SMALL + bytes([i]))
        names.append(name)
    return names


def _mreq(a: FakeUpstream, b: FakeUpstream, dest: Path, name: str, data: bytes) -> FetchRequest:
    return FetchRequest(
        f"{a.url}pool/{name}", dest, checksums(data), mirrors=(f"{b.url}pool/{name}",)
    )


async def test_files_are_spread_over_sources(
    up: FakeUpstream, up2: FakeUpstream, tree: Path, make: Make, tmp_path: Path
) -> None:
    names = _many(tree, 8)
    f = make()
    await asyncio.gather(
        *(f.fetch(_mreq(up, up2, tmp_path / n, n, SMALL + bytes([i]))) for i, n in enumerate(names))
    )
    assert all((tmp_path / n).read_bytes() == SMALL + bytes([i]) for i, n in enumerate(names))
    assert up.count("/pool/f*") == 4 and up2.count("/pool/f*") == 4  # equal sources: half each


async def test_failing_source_is_penalised_and_others_take_over(
    up: FakeUpstream, up2: FakeUpstream, tree: Path, make: Make, tmp_path: Path
) -> None:
    names = _many(tree, 12)
    up2.add_fault("/pool/*", Fault("status", status=503))
    sleeps = Sleeps()
    f = make(sleep=sleeps)

    async def batch(part: list[str]) -> None:
        results = await asyncio.gather(
            *(
                f.fetch(_mreq(up, up2, tmp_path / n, n, SMALL + bytes([names.index(n)])))
                for n in part
            )
        )
        assert all(r.outcome is Outcome.DOWNLOADED for r in results)

    await batch(names[:6])  # spread: half of them hit the failing source, then retried on up
    assert up2.count("/pool/f*") == 3 and up.count("/pool/f*") == 6
    await batch(names[6:])  # now penalised: everything goes to the healthy source
    assert up2.count("/pool/f*") == 3 and up.count("/pool/f*") == 12
    assert sleeps.delays == []  # switching to a healthy source needs no backoff


async def test_source_serving_bad_data_is_penalised(
    up: FakeUpstream, up2: FakeUpstream, tree: Path, make: Make, tmp_path: Path
) -> None:
    names = _many(tree, 6)
    up.add_fault("/pool/*", Fault("corrupt"))
    f = make()
    for i, n in enumerate(names):
        await f.fetch(_mreq(up, up2, tmp_path / n, n, SMALL + bytes([i])))
        assert (tmp_path / n).read_bytes() == SMALL + bytes([i])
    assert up.count("/pool/f*") == 1 and up2.count("/pool/f*") == 6


async def test_give_up_lists_every_source(
    up: FakeUpstream, up2: FakeUpstream, make: Make, tmp_path: Path
) -> None:
    up.add_fault("/pool/small.deb", Fault("status", status=503))
    f = make(attempts=3)
    req_ = FetchRequest(
        f"{up.url}pool/small.deb",
        tmp_path / "s",
        checksums(SMALL),
        mirrors=(f"{up2.url}pool/missing.deb",),
    )
    with pytest.raises(FetchError) as info:
        await f.fetch(req_)
    reason = info.value.reason
    assert f"(http://127.0.0.1:{up.port}): HTTP 503" in reason
    assert f"(http://127.0.0.1:{up2.port}): HTTP 404" in reason
    assert up2.count("/pool/missing.deb") == 1  # a 404 there is final for that source
    assert info.value.url == f"{up.url}pool/small.deb"


async def test_optional_file_missing_on_a_secondary_source_comes_from_the_primary(
    up: FakeUpstream, up2: FakeUpstream, tree: Path, make: Make, tmp_path: Path
) -> None:
    f = make()
    req_ = FetchRequest(
        f"{up.url}pool/small.deb",
        tmp_path / "s",
        checksums(SMALL),
        optional=True,
        mirrors=(f"{up2.url}pool/nothere.deb",),
    )
    # make the secondary look better so it is picked first
    f._sources.end(f"{up.url}x", ok=False)
    res = await f.fetch(req_)
    assert res.outcome is Outcome.DOWNLOADED and up2.count("/pool/nothere.deb") == 1
    primary_missing = FetchRequest(
        f"{up.url}pool/gone.deb",
        tmp_path / "g",
        checksums(SMALL),
        optional=True,
        mirrors=(f"{up2.url}pool/small.deb",),
    )
    assert (await f.fetch(primary_missing)).outcome is Outcome.NOT_FOUND


def test_source_balancer_weights() -> None:
    from aptmirror.fetch.sources import SourceBalancer

    b = SourceBalancer()
    a, c = "http://a/x", "http://c/x"
    assert b.pick([a, c]) == a  # equal: first listed
    b.begin(a)
    assert b.pick([a, c]) == c  # less loaded
    b.end(a, ok=True, nbytes=10_000_000, seconds=1.0)  # a is faster
    b.begin(a)
    b.begin(a)
    assert b.pick([a, c]) == a  # 3.7x faster: (2 + 1) / 3.7 < (0 + 1) / 1
    b.end(a, ok=False, bad_data=True)
    assert b.weight(a) < b.weight(c) * 2


async def test_sidecar_never_holds_credentials(tree: Path, make: Make, tmp_path: Path) -> None:
    async with FakeUpstream(tree, auth=("user", "s3cret")) as srv:
        srv.add_fault("/pool/big.deb", Fault("truncate", after_bytes=300_000, times=1))
        url = f"http://user:s3cret@127.0.0.1:{srv.port}/pool/big.deb"
        dest = tmp_path / "big.deb"
        with pytest.raises(FetchError):
            await make(attempts=1).fetch(FetchRequest(url, dest, checksums(BODY)))
        meta = meta_path(partial_path(dest)).read_text()
        assert "s3cret" not in meta and "user@" not in meta
        await make().fetch(FetchRequest(url, dest, checksums(BODY)))  # still resumes
        assert dest.read_bytes() == BODY
        assert [r.range_header is not None for r in srv.requests] == [False, True]
