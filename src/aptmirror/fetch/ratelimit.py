"""One global bandwidth limit shared by every transfer of a run (``limit_rate``).

The Perl tool passed ``--limit-rate`` to each of its wget processes, so its real cap was
``nthreads`` times the setting; here the setting is the cap for the whole run. A transfer
reserves time for each chunk it received (virtual-clock scheduling: no polling) and sleeps
when it ran ahead; up to one second of burst is allowed.

With pool worker processes the virtual clock lives in memory shared with them
(:meth:`RateLimiter.shared_fd`): every process draws on the one budget, so a process that
runs out of files leaves its part of the rate to the others instead of to no one.
"""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import struct
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable

_CELL = struct.Struct("d")  # the virtual clock: when the budget spent so far runs out


class _SharedClock:
    """A virtual clock in a memfd mapped by several processes, advanced under a POSIX record
    lock (per process, released if its holder dies; 2 µs a chunk)."""

    def __init__(self, fd: int, *, owned: bool = False) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, _CELL.size)
        if owned:
            weakref.finalize(self, os.close, fd)

    @classmethod
    def create(cls, value: float) -> _SharedClock:
        try:
            fd = os.memfd_create("aptmirror-limit-rate")  # close-on-exec: passed by pass_fds
        except (AttributeError, OSError):  # no memfd (a seccomp filter): an unlinked file
            fd, path = tempfile.mkstemp(prefix="aptmirror-limit-rate-")
            os.unlink(path)
        try:
            os.ftruncate(fd, _CELL.size)
            clock = cls(fd, owned=True)
        except BaseException:
            os.close(fd)
            raise
        _CELL.pack_into(clock._map, 0, value)
        return clock

    def advance(self, floor: float, cost: float) -> float:
        """Move the clock to ``max(clock, floor) + cost``; the new value."""
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            value: float = max(_CELL.unpack_from(self._map)[0], floor) + cost
            _CELL.pack_into(self._map, 0, value)
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)
        return value


class RateLimiter:
    def __init__(
        self,
        bytes_per_second: int | None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared_fd: int | None = None,
    ) -> None:
        """``shared_fd``: another process's :meth:`shared_fd` (inherited): draw on its budget.
        ``clock`` must then be the system-wide ``time.monotonic`` there and here."""
        self.rate = bytes_per_second if bytes_per_second and bytes_per_second > 0 else None
        self._burst = burst_seconds
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._shared = None if shared_fd is None else _SharedClock(shared_fd)

    def shared_fd(self) -> int:
        """A descriptor of this limiter's clock in shared memory, for the limiters of other
        processes (``RateLimiter(rate, shared_fd=…)``, the descriptor passed on to them) to
        share its budget; made on the first call, closed once this limiter is dropped."""
        if self._shared is None:
            self._shared = _SharedClock.create(self._next)
        return self._shared.fd

    async def consume(self, nbytes: int) -> None:
        """Account for ``nbytes`` just received; sleep if the run is over its budget."""
        if self.rate is None or nbytes <= 0:
            return
        now = self._clock()
        # the clock never lags behind now (an idle budget is not saved up): it may run
        # ahead of now by the burst before a transfer has to wait
        if self._shared is None:
            self._next = max(self._next, now) + nbytes / self.rate
            due = self._next
        else:
            due = self._shared.advance(now, nbytes / self.rate)
        delay = due - now - self._burst
        if delay > 0:
            await self._sleep(delay)
