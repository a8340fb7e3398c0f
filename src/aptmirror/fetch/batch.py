"""Many files through one Fetcher: ``workers`` transfers at a time, ordered by size.

The files wait in a :class:`SizeQueue`. A quarter of the workers (at least one, when there
are two or more) take the smallest file left, the others the largest: huge files start
early (the run is not left waiting on one at the end) and small files never wait behind
them. (The other way round — three quarters on the small files — cut nginx's CPU when
fetching alone, but in a whole run left the biggest files, planned last, to the end: they
then finished 0.1-0.2 s after everything else, on one core.) Several takers may share one
queue: the run's own transfers and the feeders of its pool worker processes
(:mod:`aptmirror.sync.pool_procs`), which is how the work stays balanced between processes
whatever each one's speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from aptmirror.errors import FetchError
from aptmirror.fetch.direct import Lane
from aptmirror.fetch.fetcher import Fetcher, FetchRequest, FetchStats
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.fetch.setup import make_fetcher, read_auth_conf, transport_options
from aptmirror.fetch.transport import HttpTransport
from aptmirror.model import Settings
from aptmirror.observe.events import Emit


def small_worker_count(workers: int) -> int:
    """Workers that always take the smallest file left (the others take the largest)."""
    return 0 if workers < 2 else max(1, workers // 4)


def request_size(req: FetchRequest) -> int:
    return req.expected.size if req.expected is not None else 0


_POSITION_BITS = 32
_POSITION_MASK = (1 << _POSITION_BITS) - 1


class SizeQueue:
    """Positions of files, ordered by size; taken from either end.

    Made with the sizes of every position it is complete; made without, it is *open*:
    positions are added with :meth:`put` until :meth:`close`, and :meth:`next` waits for them.

    Each entry is one integer, ``size << 32 | position``, which sorts like (size, position):
    a first mirror of a whole Debian queues a hundred thousand files, and a tuple each (with
    its position's own int) took twice the memory.
    """

    def __init__(self, sizes: Sequence[int] | None = None) -> None:
        self._items = sorted(size << _POSITION_BITS | i for i, size in enumerate(sizes or ()))
        self._lo = 0  # taken from the small end so far
        # put but not sorted in yet: thousands of single puts (a plan streaming in) cost one
        # sort at the next take instead of an insertion each
        self._pending: list[int] = []
        self.closed = sizes is not None
        self._added = None if self.closed else asyncio.Event()

    def __len__(self) -> int:
        return len(self._items) - self._lo + len(self._pending)

    def put(self, items: Iterable[tuple[int, int]]) -> None:
        """Add (position, size) pairs (positions below 2**32)."""
        self._pending.extend(size << _POSITION_BITS | i for i, size in items)
        if self._added is not None:
            self._added.set()

    def _sort_in(self) -> None:
        items = self._items[self._lo :] if self._lo else self._items
        items += self._pending  # two sorted runs, or one and a few: cheap for timsort
        items.sort()
        self._items, self._lo, self._pending = items, 0, []

    def close(self) -> None:
        """Nothing more will be added."""
        self.closed = True
        if self._added is not None:
            self._added.set()

    def take(self, smallest: bool) -> int | None:
        """The position of the smallest (or largest) file left, or None when empty."""
        if self._pending:
            self._sort_in()
        if self._lo == len(self._items):
            return None
        if smallest:
            i = self._items[self._lo] & _POSITION_MASK
            self._lo += 1
            if self._lo >= 1024 and self._added is not None:  # an open queue: drop them
                del self._items[: self._lo]
                self._lo = 0
            return i
        return self._items.pop() & _POSITION_MASK

    async def next(self, smallest: bool) -> int | None:
        """Like :meth:`take`, waiting for more while the queue is open; None at the end."""
        while True:
            i = self.take(smallest)
            if i is not None or self.closed or self._added is None:
                return i
            self._added.clear()
            await self._added.wait()


async def fetch_all(
    fetcher: Fetcher,
    queue: SizeQueue,
    request: Callable[[int], FetchRequest],
    workers: int,
    on_error: Callable[[int, FetchError], None],
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Fetch ``request(i)`` for every position ``i`` taken from ``queue`` (made when its turn
    comes: a first mirror does not hold a request per file); ``on_error(i, exc)`` for each
    one that failed for good, ``on_done(i)`` for each one that is in place."""

    async def worker(smallest_first: bool) -> None:
        lane = Lane()  # the connection its small files go through, one after the other
        try:
            while True:
                i = queue.take(smallest_first)
                if i is None:
                    lane.release()  # not kept while waiting
                    i = await queue.next(smallest_first)
                    if i is None:
                        return
                try:
                    await fetcher.fetch(request(i), lane)
                except FetchError as exc:
                    on_error(i, exc)
                    continue
                if on_done is not None:
                    on_done(i)
        finally:
            lane.release()

    count = max(1, workers if not queue.closed else min(workers, len(queue)))
    small = small_worker_count(count)
    await asyncio.gather(*(worker(n < small) for n in range(count)))


async def fetch_share(
    settings: Settings,
    queue: SizeQueue,
    request: Callable[[int], FetchRequest],
    emit: Emit,
    on_error: Callable[[int, FetchError], None],
    on_done: Callable[[int], None] | None = None,
    limiter: RateLimiter | None = None,
) -> FetchStats:
    """:func:`fetch_all` through a connection pool and fetcher of its own, made from
    ``settings`` (one share's: nthreads, per-host connections) and drawing on ``limiter``'s
    budget (else ``limit_rate`` of its own); its counters."""
    credentials, _ = read_auth_conf(settings.etc_netrc)  # problems were reported by the run
    async with HttpTransport(transport_options(settings, credentials)) as transport:
        fetcher = make_fetcher(transport, settings, emit, limiter)
        await fetch_all(fetcher, queue, request, settings.nthreads, on_error, on_done)
    return fetcher.stats
