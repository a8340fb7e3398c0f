"""Transfer settings (issue 4): parsing, wiring into the Fetcher/transport, pool order, clean."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest

from aptmirror.config.settings import build_settings, default_variables
from aptmirror.config.variables import resolve_all
from aptmirror.errors import ConfigError
from aptmirror.fetch.batch import small_worker_count
from aptmirror.fetch.fetcher import FetchRequest, FetchResult, Outcome
from aptmirror.fetch.setup import make_fetcher, transport_options
from aptmirror.fetch.transport import HttpTransport
from aptmirror.model import Location, Settings
from aptmirror.storage.clean import plan_clean
from aptmirror.sync.context import RunContext
from aptmirror.sync.jobs import RepoJob
from aptmirror.sync.pool import Download, PoolDownloads, PoolPlan


def settings_from(sets: dict[str, str]) -> Settings:
    namespace = default_variables("amd64")
    namespace.update(sets)
    locations = {key: Location("m.list", n) for n, key in enumerate(sets, start=1)}
    resolved, _ = resolve_all(namespace, locations)
    return build_settings(resolved, locations)[0]


def test_defaults() -> None:
    s = settings_from({})
    assert (s.retry_attempts, s.retry_delay, s.resume_partial_downloads) == (5, 2.0, True)
    assert (s.connect_timeout, s.read_timeout) == (30.0, 60.0)
    assert (s.slow_rate_protection, s.slow_rate_startup, s.slow_rate) == (True, 15.0, 102400)
    assert s.max_connections_per_host == 8
    assert (s.etc_netrc, s.https_only) == ("/etc/apt/auth.conf", False)
    assert s.limit_rate == 100 * 1024 * 1024  # the Perl default, now one global limit
    assert s == Settings(**{**{f: getattr(s, f) for f in Settings.__dataclass_fields__}})


def test_values_parsed() -> None:
    s = settings_from(
        {
            "retry_attempts": "2",
            "retry_delay": "0.5",
            "resume_partial_downloads": "off",
            "connect_timeout": "5",
            "read_timeout": "7.5",
            "slow_rate_protection": "off",
            "slow_rate_startup": "30",
            "slow_rate": "1m",
            "max_connections_per_host": "0",
            "limit_rate": "2m",
        }
    )
    assert (s.retry_attempts, s.retry_delay, s.resume_partial_downloads) == (2, 0.5, False)
    assert (s.connect_timeout, s.read_timeout) == (5.0, 7.5)
    assert (s.slow_rate_protection, s.slow_rate_startup, s.slow_rate) == (False, 30.0, 1 << 20)
    assert (s.max_connections_per_host, s.limit_rate) == (0, 2 << 20)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retry_attempts", "0"),
        ("retry_attempts", "many"),
        ("retry_delay", "-1"),
        ("resume_partial_downloads", "maybe"),
        ("read_timeout", "0"),
        ("connect_timeout", "nan"),
        ("slow_rate", "fast"),
        ("max_connections_per_host", "-1"),
        ("https_only", "sometimes"),
    ],
)
def test_bad_values_name_the_line(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"m.list:1: invalid value for '{key}'"):
        settings_from({key: value})


async def test_settings_reach_the_fetcher_and_transport() -> None:
    s = settings_from(
        {
            "retry_attempts": "3",
            "retry_delay": "0.25",
            "limit_rate": "500k",
            "slow_rate": "10k",
            "slow_rate_startup": "4",
            "resume_partial_downloads": "off",
            "max_connections_per_host": "3",
            "read_timeout": "9",
            "connect_timeout": "4",
        }
    )
    opts = transport_options(s)
    assert (opts.max_connections_per_host, opts.read_timeout, opts.connect_timeout) == (3, 9, 4)
    async with HttpTransport(opts) as t:
        f = make_fetcher(t, s)
        assert (f._attempts, f._base_delay, f._resume) == (3, 0.25, False)
        assert f._limiter is not None and f._limiter.rate == 500 * 1024
        assert f._slow is not None and (f._slow.bytes_per_second, f._slow.startup) == (10240, 4)
        off = make_fetcher(t, settings_from({"slow_rate_protection": "off", "limit_rate": "0"}))
        assert off._slow is None and off._limiter is not None and off._limiter.rate is None


# --------------------------------------------------------------------------- pool priorities


class _FakeFetcher:
    """Each file takes size/1000 s of (virtual) transfer; records start and end order."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.finished: list[str] = []

    async def fetch(self, req: FetchRequest, lane: object = None) -> FetchResult:
        name = os.path.basename(req.dest)
        self.started.append(name)
        assert req.expected is not None
        await asyncio.sleep(req.expected.size / 1_000_000)
        self.finished.append(name)
        return FetchResult(req, Outcome.DOWNLOADED, req.expected.size)


JOB = RepoJob("http://h/", "stable", ("main",), ("all",), True, False, (), ())


def _plan(sizes: dict[str, int]) -> PoolPlan:
    plan = PoolPlan()
    for name, size in sizes.items():
        plan.todo[f"h/pool/{name}"] = Download(JOB, size, "SHA256", "0" * 64)
    return plan


def test_small_worker_count() -> None:
    assert [small_worker_count(n) for n in (1, 2, 3, 4, 8, 20)] == [0, 1, 1, 1, 2, 5]


async def test_small_files_are_not_starved_behind_huge_ones() -> None:
    sizes = {"huge-a.deb": 300_000, "huge-b.deb": 250_000, "huge-c.deb": 200_000}
    sizes |= {f"small-{i:02}.deb": 1_000 + i for i in range(30)}
    fetcher = _FakeFetcher()
    ctx = RunContext(Settings(nthreads=4), fetcher, io.StringIO(), "stamp")  # type: ignore[arg-type]
    downloads = PoolDownloads(ctx, 1)
    for rel, item in _plan(sizes).todo.items():
        downloads.add(rel, item)
    await downloads.finish()
    assert sorted(fetcher.finished) == sorted(sizes)
    assert fetcher.started[:3] == ["small-00.deb", "huge-a.deb", "huge-b.deb"]
    # every small file is done while the huge ones still run (one worker keeps serving them)
    last_small = max(fetcher.finished.index(n) for n in sizes if n.startswith("small"))
    assert last_small < fetcher.finished.index("huge-c.deb")


# --------------------------------------------------------------------------- cleaning


def test_clean_keeps_partial_files_and_their_sidecars(tmp_path: Path) -> None:
    """... while the file they would become is referenced (planned, not there yet)."""
    root = "h/debian"
    pool = tmp_path / root / "pool/main/a"
    pool.mkdir(parents=True)
    partials = (".a.deb.aptmirror-partial", ".a.deb.aptmirror-partial.meta")
    for name in (*partials, "gone.deb"):
        (pool / name).write_bytes(b"x")
    plan = plan_clean(tmp_path, [root], {f"{root}/pool/main/a/a.deb"})
    assert list(plan.files) == [f"{root}/pool/main/a/gone.deb"]
    orphaned = plan_clean(tmp_path, [root], set())  # a.deb no longer referenced
    assert sorted(orphaned.files) == sorted(
        f"{root}/pool/main/a/{n}" for n in (*partials, "gone.deb")
    )
