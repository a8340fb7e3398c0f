"""Progress of a run for people: a live rich display on a terminal, plain lines otherwise.

On a terminal (:class:`~aptmirror.observe.progress_rich.RichProgress`, which alone imports
rich — a cron run does not pay for it): one bar per stage with files and bytes done/total,
percentage, current speed and ETA, plus the largest transfers in flight; the console lines
of the run are printed above it. Without a terminal (:class:`PlainProgress`, cron and
systemd): no control characters, one progress line every ``interval`` seconds and a summary
line when each stage ends. Both read the :class:`RunTracker`; the session's ticker thread
calls :meth:`tick`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from aptmirror.observe.events import Event, StageFinished
from aptmirror.observe.tracker import RunTracker, StageView
from aptmirror.units import format_size

LARGE_TRANSFER = 1024 * 1024  # transfers at least this big are shown individually
SHOWN_TRANSFERS = 4


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    total = int(seconds + 0.5)
    return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"


def progress_line(v: StageView) -> str:
    files = f"{v.files_done}/{v.files_total} files"
    if v.bytes_total:
        size = f"{format_size(v.bytes_done)}/{format_size(v.bytes_total)}"
    else:
        size = format_size(v.bytes_done)
    fraction = v.fraction
    pct = f" ({fraction * 100:.0f}%)" if fraction is not None else ""
    return (
        f"[progress] {v.stage}: {files}, {size}{pct}, {format_size(v.speed)}/s, "
        f"ETA {format_duration(v.eta)}, {len(v.active)} active"
    )


def summary_line(v: StageView) -> str:
    speed = v.bytes_done / v.elapsed if v.elapsed > 0 else 0.0
    failed = f", {v.failed} failed" if v.failed else ""
    return (
        f"[summary] {v.stage}: {v.files_done} files, {format_size(v.bytes_done)} in "
        f"{format_duration(v.elapsed)} ({format_size(speed)}/s){failed}"
    )


def fields(v: StageView) -> dict[str, str]:
    files = f"{v.files_done}/{max(v.files_total, v.files_done)} files"
    size = format_size(v.bytes_done)
    if v.bytes_total:
        size += f"/{format_size(v.bytes_total)}"
    eta = "" if v.finished else f"ETA {format_duration(v.eta)}"
    return {"files": files, "size": size, "speed": f"{format_size(v.speed)}/s", "eta": eta}


class PlainProgress:
    """Plain lines, for a log or a pipe."""

    def __init__(
        self,
        out: TextIO,
        tracker: RunTracker,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.tracker = tracker
        self.interval = interval
        self.clock = clock
        self._last = clock()
        self._lock = threading.Lock()

    handles = frozenset({StageFinished})

    def __call__(self, event: Event) -> None:
        if isinstance(event, StageFinished):
            views = [v for v in self.tracker.all_stages() if v.stage == event.stage]
            if views:
                self._print(summary_line(views[-1]))

    def tick(self) -> None:
        if self.interval <= 0 or self.clock() - self._last < self.interval:
            return
        self._last = self.clock()
        view = self.tracker.current()
        if view is not None:
            self._print(progress_line(view))

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        pass
