"""Many files through one Fetcher: ``workers`` transfers at a time, ordered by size.

The queue is sorted by size. A quarter of the workers (at least one, when there are two or
more) take the smallest file left, the others the largest: huge files start early (the run
is not left waiting on one at the end) and small files never wait behind them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from aptmirror.errors import FetchError
from aptmirror.fetch.fetcher import Fetcher, FetchRequest, FetchStats
from aptmirror.fetch.setup import make_fetcher, read_auth_conf, transport_options
from aptmirror.fetch.transport import HttpTransport
from aptmirror.model import Settings
from aptmirror.observe.events import Emit


def small_worker_count(workers: int) -> int:
    """Workers that always take the smallest file left (the others take the largest)."""
    return 0 if workers < 2 else max(1, workers // 4)


def request_size(req: FetchRequest) -> int:
    return req.expected.size if req.expected is not None else 0


async def fetch_all(
    fetcher: Fetcher,
    sizes: Sequence[int],
    request: Callable[[int], FetchRequest],
    workers: int,
    on_error: Callable[[int, FetchError], None],
    on_done: Callable[[int], None] | None = None,
) -> None:
    """Fetch ``request(i)`` for every position ``i`` of ``sizes`` (made when its turn comes:
    a first mirror does not hold a request per file); ``on_error(i, exc)`` for each one that
    failed for good, ``on_done(i)`` for each one that is in place."""
    order = deque(sorted(range(len(sizes)), key=sizes.__getitem__))

    async def worker(smallest_first: bool) -> None:
        while order:
            i = order.popleft() if smallest_first else order.pop()
            try:
                await fetcher.fetch(request(i))
            except FetchError as exc:
                on_error(i, exc)
                continue
            if on_done is not None:
                on_done(i)

    count = min(workers, max(1, len(order)))
    small = small_worker_count(count)
    await asyncio.gather(*(worker(n < small) for n in range(count)))


async def fetch_share(
    settings: Settings,
    sizes: Sequence[int],
    request: Callable[[int], FetchRequest],
    emit: Emit,
    on_error: Callable[[int, FetchError], None],
    on_done: Callable[[int], None] | None = None,
) -> FetchStats:
    """:func:`fetch_all` through a connection pool and fetcher of its own, made from
    ``settings`` (one share's: nthreads, per-host connections, limit_rate); its counters."""
    credentials, _ = read_auth_conf(settings.etc_netrc)  # problems were reported by the run
    async with HttpTransport(transport_options(settings, credentials)) as transport:
        fetcher = make_fetcher(transport, settings, emit)
        await fetch_all(fetcher, sizes, request, settings.nthreads, on_error, on_done)
    return fetcher.stats
