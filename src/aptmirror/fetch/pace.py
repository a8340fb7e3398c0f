"""Slow-rate protection: when a transfer is too slow to wait for.

A transfer whose average rate over a ``startup``-second window (the first window is the
start-up grace) is below the floor (:func:`slow_floor`: ``slow_rate``, at most half its fair
share of the run's throughput) is aborted and retried. Used by both ways a file is received
(:mod:`aptmirror.fetch.fetcher` and :mod:`aptmirror.fetch.direct`).

Imports nothing from aptmirror but ``aptmirror.frozen``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aptmirror.frozen import frozen


@frozen
class SlowRate:
    """Abort a transfer slower than ``bytes_per_second`` over ``startup``-second windows."""

    bytes_per_second: int
    startup: float = 15.0


@dataclass(slots=True)
class Traffic:
    """What every transfer of one fetcher receives: the fair share's measure."""

    received: int = 0  # body bytes received by every transfer
    streaming: int = 0  # transfers receiving a body right now


def slow_floor(slow_rate: int, run_rate: float, streaming: int) -> float:
    """The rate below which a transfer is aborted: ``slow_rate``, but never more than half
    of its fair share of what the whole run receives — when the link itself is the limit
    (many transfers sharing a slow line) nothing is aborted; a transfer that lags far behind
    the others (a stuck connection, a slow server) is."""
    return min(float(slow_rate), run_rate / max(1, streaming) / 2.0)


class SlowWindow:
    """One transfer's current window. :meth:`check` after each piece of its body (counted in
    ``traffic.received`` already); ``paused`` is time spent in the run's own rate limit
    during the window, which does not count against the transfer."""

    __slots__ = ("_bytes", "_clock", "_run", "_slow", "_start", "_traffic", "paused")

    def __init__(self, slow: SlowRate, traffic: Traffic, clock: Callable[[], float]) -> None:
        self._slow, self._traffic, self._clock = slow, traffic, clock
        self._start = clock()
        self._bytes = 0
        self._run = traffic.received  # every transfer's bytes at the window's start
        self.paused = 0.0

    def check(self, n: int) -> str | None:
        """Why the transfer is too slow after ``n`` more bytes, or None."""
        self._bytes += n
        elapsed = self._clock() - self._start - self.paused
        if elapsed < self._slow.startup:
            return None
        rate = self._bytes / elapsed
        traffic = self._traffic
        floor = slow_floor(
            self._slow.bytes_per_second, (traffic.received - self._run) / elapsed, traffic.streaming
        )
        if rate < floor:
            return (
                f"too slow: {rate:.0f} B/s over {elapsed:.0f} s "
                f"(slow_rate {self._slow.bytes_per_second} B/s)"
            )
        self._start, self._bytes, self.paused = self._clock(), 0, 0.0
        self._run = traffic.received
        return None
