"""Live state of the current run, built from events: stage, files/bytes done and total,
speed, ETA, active transfers. Progress displays and the metrics read it.

The ticker thread of a session reads it while the event loop updates it, so every access
holds one lock. Imports only ``observe.events``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aptmirror.frozen import frozen
from aptmirror.observe.events import (
    Event,
    FileDone,
    FileFailed,
    FileProgress,
    FileSkipped,
    FileStarted,
    RunFailure,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    SuitePublished,
)

SPEED_WINDOW = 10.0  # seconds the current speed is averaged over
# progress within this many seconds is one sample: the window holds at most ~100 of them,
# however many transfers report (a run of tiny files reports tens of thousands a second)
SAMPLE_STEP = 0.1


@dataclass(slots=True)
class Transfer:
    url: str
    size: int | None
    done: int = 0


@frozen
class StageView:
    """A consistent copy of the progress of one stage."""

    stage: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    speed: float  # bytes per second over the last SPEED_WINDOW seconds
    elapsed: float
    failed: int
    active: tuple[tuple[str, int, int | None], ...] = ()  # (url, done, size), largest first
    finished: bool = False

    @property
    def fraction(self) -> float | None:
        if self.bytes_total > 0:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.files_total > 0:
            return min(1.0, self.files_done / self.files_total)
        return None

    @property
    def eta(self) -> float | None:
        if self.bytes_total > 0 and self.speed > 0:
            return max(0.0, (self.bytes_total - self.bytes_done) / self.speed)
        return None


@dataclass(slots=True)
class _Stage:
    name: str
    files_total: int
    bytes_total: int
    started: float
    files_done: int = 0
    bytes_done: int = 0
    failed: int = 0
    finished: float | None = None


@dataclass(slots=True)
class RunTracker:
    """Subscriber: ``bus.subscribe(tracker)``."""

    clock: Callable[[], float] = time.monotonic
    run_id: str = ""
    started: float | None = None  # wall clock (time.time) of RunStarted
    finished: RunFinished | None = None
    files: int = 0
    bytes: int = 0
    failures: dict[str, int] = field(default_factory=dict)  # reason kind -> count (final)
    stages: list[_Stage] = field(default_factory=list)
    _active: dict[str, Transfer] = field(default_factory=dict)
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    classify: Callable[[str], str] = field(default=lambda reason: "other")

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._apply(event)

    def _apply(self, event: Event) -> None:
        stage = self.stages[-1] if self.stages and self.stages[-1].finished is None else None
        if isinstance(event, FileProgress):
            t = self._active.get(event.url)
            if t is not None:
                t.done += event.bytes
            if stage is not None:
                stage.bytes_done += event.bytes
            self._sample(event.bytes)
        elif isinstance(event, FileStarted):
            self._active[event.url] = Transfer(event.url, event.size)
        elif isinstance(event, FileDone):
            self._active.pop(event.url, None)
            self.files += 1
            self.bytes += event.bytes
            if stage is not None:
                stage.files_done += 1
            if event.started is not None:  # no FileProgress came: its bytes count now
                if stage is not None:
                    stage.bytes_done += event.bytes
                self._sample(event.bytes)
        elif isinstance(event, FileSkipped):
            self._active.pop(event.url, None)
            if stage is not None:
                stage.files_done += 1
        elif isinstance(event, FileFailed):
            t = self._active.pop(event.url, None)
            if stage is not None and t is not None:
                stage.bytes_done -= t.done  # the retry sends them again
            if event.final and stage is not None:
                stage.files_done += 1
                stage.failed += 1
        elif isinstance(event, StageStarted):
            self.stages.append(_Stage(event.stage, event.files, event.bytes, self.clock()))
        elif isinstance(event, StageFinished):
            if stage is not None:
                stage.finished = self.clock()
        elif isinstance(event, SuitePublished):
            if stage is not None:
                stage.files_done += 1
        elif isinstance(event, RunFailure):
            kind = self.classify(event.reason)
            self.failures[kind] = self.failures.get(kind, 0) + 1
        elif isinstance(event, RunStarted):
            self.run_id, self.started = event.run_id, event.at
        elif isinstance(event, RunFinished):
            self.finished = event

    def _sample(self, n: int) -> None:
        now = self.clock()
        samples = self._samples
        if samples and now - samples[-1][0] < SAMPLE_STEP:
            samples[-1] = (samples[-1][0], samples[-1][1] + n)
        else:
            samples.append((now, n))
            while samples[0][0] < now - SPEED_WINDOW:
                samples.popleft()

    def _speed(self) -> float:
        if not self._samples:
            return 0.0
        now = self.clock()
        total = sum(n for t, n in self._samples if t >= now - SPEED_WINDOW)
        span = min(SPEED_WINDOW, max(1.0, now - self._samples[0][0]))
        return total / span

    def _view(self, s: _Stage) -> StageView:
        end = s.finished if s.finished is not None else self.clock()
        active: tuple[tuple[str, int, int | None], ...] = ()
        speed = 0.0
        if s.finished is None:
            ordered = sorted(self._active.values(), key=lambda t: -(t.size or 0))
            active = tuple((t.url, t.done, t.size) for t in ordered)
            speed = self._speed()
        elif end > s.started:
            speed = s.bytes_done / (end - s.started)
        return StageView(
            s.name, s.files_done, s.files_total, s.bytes_done, s.bytes_total, speed,
            end - s.started, s.failed, active, s.finished is not None,
        )  # fmt: skip

    def current(self) -> StageView | None:
        """The running stage, or None between stages."""
        with self._lock:
            if self.stages and self.stages[-1].finished is None:
                return self._view(self.stages[-1])
            return None

    def all_stages(self) -> list[StageView]:
        with self._lock:
            return [self._view(s) for s in self.stages]

    def totals(self) -> tuple[int, int, dict[str, int], RunFinished | None]:
        """(files, bytes, failures by kind, RunFinished or None) of the run so far."""
        with self._lock:
            return self.files, self.bytes, dict(self.failures), self.finished
