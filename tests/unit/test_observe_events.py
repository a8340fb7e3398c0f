"""observe.events: the bus, and the events the fetcher emits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mypy import api as mypy_api

from aptmirror.errors import FetchError, StorageError
from aptmirror.fetch.fetcher import Fetcher, FetchRequest
from aptmirror.fetch.transport import HttpTransport, TransportOptions
from aptmirror.model import Checksums
from aptmirror.observe.events import (
    Event,
    EventBus,
    FileDone,
    FileFailed,
    FileProgress,
    FileSkipped,
    FileStarted,
    Message,
    StageStarted,
)
from aptmirror.testing import FakeUpstream, Fault

BODY = b"x" * 300_000


def test_bus_calls_subscribers_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, Event]] = []
    bus.subscribe(lambda e: seen.append(("a", e)))
    bus.subscribe(lambda e: seen.append(("b", e)))
    ev = StageStarted("archive", 3, 100)
    bus.emit(ev)
    assert seen == [("a", ev), ("b", ev)]


def test_broken_subscriber_is_disabled_not_fatal(capsys: pytest.CaptureFixture[str]) -> None:
    bus = EventBus()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.emit(Message("one"))
    bus.emit(Message("two"))
    assert [m.text for m in seen if isinstance(m, Message)] == ["one", "two"]
    assert capsys.readouterr().err.count("boom") == 1


def test_a_disabled_subscriber_is_named_by_its_class(capsys: pytest.CaptureFixture[str]) -> None:
    class StateKeeper:
        def __call__(self, event: Event) -> None:
            raise StorageError("state database /x/aptmirror.db: database or disk is full")

    bus = EventBus()
    bus.subscribe(StateKeeper())
    bus.emit(Message("one"))
    assert capsys.readouterr().err == (
        "apt-mirror: warning: observer StateKeeper failed and was disabled:"
        " state database /x/aptmirror.db: database or disk is full\n"
    )


def test_a_subscriber_gets_only_the_events_it_handles() -> None:
    class OnlyMessages:
        handles = frozenset({Message})

        def __init__(self) -> None:
            self.seen: list[Event] = []

        def __call__(self, event: Event) -> None:
            self.seen.append(event)

    bus = EventBus()
    picky, everything = OnlyMessages(), list[Event]()
    bus.subscribe(picky)
    bus.emit(FileProgress("u", 1))
    bus.emit(Message("one"))
    bus.subscribe(everything.append)  # added after routes were worked out
    bus.emit(FileProgress("u", 2))
    bus.emit(Message("two"))
    assert [m.text for m in picky.seen if isinstance(m, Message)] == ["one", "two"]
    assert len(picky.seen) == 2
    assert [type(e).__name__ for e in everything] == ["FileProgress", "Message"]
    bus.unsubscribe(picky)
    bus.emit(Message("three"))
    assert len(picky.seen) == 2 and len(everything) == 3


def test_events_are_frozen(tmp_path: Path) -> None:
    # @frozen: the type checker refuses the assignment (see test_frozen.py)
    source = tmp_path / "mutate.py"
    source.write_text(
        "from aptmirror.observe.events import FileFailed\n"
        "ev = FileFailed('http://x/', 'HTTP 503', 1, 503)\n"
        "ev.attempt = 2\n"
    )
    cache = Path(__file__).resolve().parents[2] / ".mypy_cache"
    out, _, status = mypy_api.run(["--strict", "--cache-dir", str(cache), str(source)])
    assert status == 1 and "mutate.py:3:" in out and "read-only" in out, out
    assert {FileFailed("http://x/", "HTTP 503", 1, 503)}  # hashable, as values


async def _no_sleep(_: float) -> None:
    return None


async def test_fetcher_emits_start_progress_done_and_failures(tmp_path: Path) -> None:
    root = tmp_path / "up"
    (root / "pool").mkdir(parents=True)
    (root / "pool/a.deb").write_bytes(BODY)
    expected = Checksums(len(BODY), (("SHA256", hashlib.sha256(BODY).hexdigest()),))
    events: list[Event] = []
    async with FakeUpstream(root) as up, HttpTransport(TransportOptions()) as transport:
        up.add_fault("/pool/a.deb", Fault("status", times=1, status=503))
        base = up.url
        fetcher = Fetcher(transport, attempts=3, sleep=_no_sleep, emit=events.append)
        await fetcher.fetch(FetchRequest(up.url + "pool/a.deb", tmp_path / "a.deb", expected))
        await fetcher.fetch(FetchRequest(up.url + "pool/none", tmp_path / "n", None, optional=True))
        with pytest.raises(FetchError):
            await fetcher.fetch(FetchRequest(up.url + "pool/gone", tmp_path / "g", expected))
    failed = [e for e in events if isinstance(e, FileFailed)]
    assert failed[0].status == 503 and failed[0].attempt == 1 and not failed[0].final
    assert failed[-1].url.endswith("pool/gone") and failed[-1].final and failed[-1].status == 404
    started = [e for e in events if isinstance(e, FileStarted)]
    assert started[0].size == len(BODY)
    assert sum(e.bytes for e in events if isinstance(e, FileProgress)) == len(BODY)
    done = [e for e in events if isinstance(e, FileDone)]
    assert len(done) == 1 and done[0].attempt == 2 and done[0].bytes == len(BODY)
    assert done[0].sha256 == expected.get("SHA256")
    assert [e.url for e in events if isinstance(e, FileSkipped)] == [base + "pool/none"]
