"""One global bandwidth limit shared by every transfer of a run (``limit_rate``).

The Perl tool passed ``--limit-rate`` to each of its wget processes, so its real cap was
``nthreads`` times the setting; here the setting is the cap for the whole run. A transfer
reserves time for each chunk it received (virtual-clock scheduling: no lock, no polling) and
sleeps when it ran ahead; up to one second of burst is allowed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class RateLimiter:
    def __init__(
        self,
        bytes_per_second: int | None,
        *,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = bytes_per_second if bytes_per_second and bytes_per_second > 0 else None
        self._burst = burst_seconds
        self._clock = clock
        self._sleep = sleep
        self._next = clock()

    async def consume(self, nbytes: int) -> None:
        """Account for ``nbytes`` just received; sleep if the run is over its budget."""
        if self.rate is None or nbytes <= 0:
            return
        now = self._clock()
        self._next = max(self._next, now - self._burst) + nbytes / self.rate
        delay = self._next - now - self._burst
        if delay > 0:
            await self._sleep(delay)
