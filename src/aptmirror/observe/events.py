"""The typed events a run emits, and the bus subscribers listen on.

The fetcher and ``sync/run.py`` emit; progress, logs, metrics and the state DB subscribe
("events, not scattered counters"). Events are small frozen values; a subscriber must be
quick (it runs inline, in the event loop). Imports nothing from aptmirror.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import field

from aptmirror.errors import AptMirrorError
from aptmirror.frozen import frozen


def _now() -> float:
    return time.time()


@frozen
class RunStarted:
    run_id: str
    # (repository, suite) of every job; repository is the local root, host[:port]/path
    suites: tuple[tuple[str, str], ...] = ()
    at: float = field(default_factory=_now)
    # (upstream base URI, repository, suite) for every source of every job: a repository
    # stored under a ``mirror_path`` is not where its URLs would put it
    sources: tuple[tuple[str, str, str], ...] = ()


@frozen
class RunFinished:
    run_id: str
    exit_code: int
    files: int
    bytes: int
    failures: int
    at: float = field(default_factory=_now)
    # stopped by SIGINT (exit status 130) or SIGTERM (143) before its end: the suites not
    # published by then keep their previous state
    interrupted: bool = False


@frozen
class StageStarted:
    stage: str  # release, index, archive, publish, clean
    files: int = 0
    bytes: int = 0  # 0 when unknown in advance
    at: float = field(default_factory=_now)


@frozen
class StageFinished:
    stage: str
    at: float = field(default_factory=_now)


@frozen
class FileStarted:
    url: str
    path: str
    size: int | None  # expected size, when known
    offset: int = 0  # bytes already present (a Range resume)
    at: float = field(default_factory=_now)

    def __reduce__(
        self,
    ) -> tuple[type, tuple[object, ...]]:  # pool worker processes send these by the thousand:
        # a constructor call pickles several times faster than dataclass state
        return (FileStarted, (self.url, self.path, self.size, self.offset, self.at))


@frozen
class FileProgress:
    url: str
    bytes: int  # received since the previous FileProgress of this URL

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (FileProgress, (self.url, self.bytes))


@frozen
class FileDone:
    url: str
    path: str
    size: int  # whole file
    bytes: int  # transferred in this run (size minus a resumed prefix)
    sha256: str | None
    attempt: int
    at: float = field(default_factory=_now)
    # set (to when it started) when no FileStarted or FileProgress came for this file: its
    # whole body arrived at once (most small files, see fetch.direct), and this one event
    # stands for all three
    started: float | None = None

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        args = (
            self.url, self.path, self.size, self.bytes, self.sha256, self.attempt, self.at,
            self.started,
        )  # fmt: skip
        return (FileDone, args)


@frozen
class FileFailed:
    url: str
    reason: str
    attempt: int
    status: int | None = None  # last HTTP status, when there was one
    final: bool = False  # True: given up (no more attempts)
    at: float = field(default_factory=_now)


@frozen
class FileSkipped:
    """An optional file upstream does not have (404/410)."""

    url: str
    at: float = field(default_factory=_now)


@frozen
class SuitePublished:
    repository: str  # local root, host[:port]/path
    suite: str
    path: str  # the published suite directory, relative to mirror_path
    at: float = field(default_factory=_now)


@frozen
class SuiteResult:
    """End of one (repository, suite) job: published or not, and its required failures."""

    repository: str
    suite: str
    published: bool
    errors: tuple[str, ...] = ()  # "URL: reason"
    at: float = field(default_factory=_now)


@frozen
class RunFailure:
    """Something required that failed (a final download failure, a bad signature...)."""

    repository: str | None
    target: str  # URL or path
    reason: str
    at: float = field(default_factory=_now)


@frozen
class Message:
    """A console line (the Perl-style output), for logs."""

    text: str
    level: str = "info"  # info | warning | error
    at: float = field(default_factory=_now)


Event = (
    RunStarted
    | RunFinished
    | StageStarted
    | StageFinished
    | FileStarted
    | FileProgress
    | FileDone
    | FileFailed
    | FileSkipped
    | SuitePublished
    | SuiteResult
    | RunFailure
    | Message
)
Emit = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The emit of a run nobody observes."""


class EventBus:
    """Calls every subscriber, in subscription order, for every event it handles.

    A subscriber may declare the event classes it handles in a ``handles`` attribute (a
    frozenset); it then gets only those. Per-file events come by the thousand a second, and
    most observers ignore them: they are not even called.

    A failing subscriber must not stop a mirror run: its exception is reported once on
    stderr and it is unsubscribed.
    """

    def __init__(self) -> None:
        self._subscribers: list[Emit] = []
        self._routes: dict[type, tuple[Emit, ...]] = {}  # event class -> its subscribers

    def subscribe(self, fn: Emit) -> None:
        self._subscribers.append(fn)
        self._routes.clear()

    def unsubscribe(self, fn: Emit) -> None:
        if fn in self._subscribers:
            self._subscribers.remove(fn)
            self._routes.clear()

    def _route(self, kind: type) -> tuple[Emit, ...]:
        found = self._routes[kind] = tuple(
            fn
            for fn in self._subscribers
            if (handles := getattr(fn, "handles", None)) is None or kind in handles
        )
        return found

    def emit(self, event: Event) -> None:
        subscribers = self._routes.get(type(event))
        if subscribers is None:
            subscribers = self._route(type(event))
        for fn in subscribers:
            try:
                fn(event)
            except Exception as exc:  # a broken observer never breaks the mirror
                self.unsubscribe(fn)
                name = getattr(fn, "__qualname__", None) or type(fn).__name__
                print(
                    f"apt-mirror: warning: observer {name} failed and was disabled: "
                    f"{exc if isinstance(exc, AptMirrorError | OSError) else repr(exc)}",
                    file=sys.stderr,
                )

    __call__ = emit
