"""sync.pool_procs / sync.pool_worker pieces: how many workers, the shared size-ordered
queue and how workers are fed from it, the settings share, and the report frames (order
kept, progress merged)."""

from __future__ import annotations

import asyncio
import io
import pickle
import random
from pathlib import Path

from aptmirror.errors import FetchError
from aptmirror.fetch.batch import SizeQueue
from aptmirror.fetch.fetcher import FetchRequest, FetchStats
from aptmirror.model import Checksums, Settings
from aptmirror.observe.events import FileDone, FileProgress, FileStarted
from aptmirror.sync.pool_procs import (
    AUTO_MIN_FILES,
    STREAM_MIN_INDEX_BYTES,
    _batch,
    _Worker,
    process_count,
    share_of,
    streaming_process_count,
)
from aptmirror.sync.pool_worker import (
    FEED_PER_TRANSFER,
    FRAME_HEADER,
    Outbox,
    WorkerBatch,
    WorkerReport,
    frame_length,
)


def test_process_count() -> None:
    assert process_count(0, AUTO_MIN_FILES - 1, cpus=8) == 1  # small batch: in-process
    assert process_count(0, AUTO_MIN_FILES, cpus=2) == 2
    assert process_count(0, 100_000, cpus=64) == 4  # auto caps at 4
    assert process_count(0, 100_000, cpus=1) == 1
    assert process_count(1, 100_000, cpus=8) == 1  # pool_processes 1: never
    assert process_count(3, 10, cpus=1) == 3  # an explicit count is obeyed
    assert process_count(3, 2, cpus=8) == 2  # but not more workers than files
    assert process_count(3, 0, cpus=8) == 1


def test_streaming_process_count() -> None:
    big = STREAM_MIN_INDEX_BYTES
    assert streaming_process_count(0, big - 1, cpus=8) == 1  # planned before a worker is up
    assert streaming_process_count(0, big, cpus=2) == 2
    assert streaming_process_count(0, big, cpus=64) == 4
    assert streaming_process_count(0, big, cpus=1) == 1
    assert streaming_process_count(1, big, cpus=8) == 1
    assert streaming_process_count(3, big, cpus=1) == 3
    assert streaming_process_count(3, 0, cpus=8) == 1  # small: decided after planning


def test_size_queue_gives_either_end() -> None:
    q = SizeQueue([30, 10, 50, 20, 40])
    assert q.closed and len(q) == 5
    assert [q.take(smallest=True), q.take(smallest=False), q.take(smallest=True)] == [1, 2, 3]
    assert len(q) == 2
    assert [q.take(smallest=False), q.take(smallest=False), q.take(smallest=True)] == [4, 0, None]
    assert len(SizeQueue([])) == 0 and SizeQueue([]).closed  # nothing to wait for


def test_size_queue_orders_sizes_beyond_32_bits_and_ties_by_position() -> None:
    q = SizeQueue([5 << 33, 0, 3 << 32, 7, 7])
    assert [q.take(smallest=True) for _ in range(5)] == [1, 3, 4, 2, 0]
    q = SizeQueue()
    q.put([(70_000, 1 << 40), (3, 1 << 40), (9, 2)])
    assert [q.take(smallest=False) for _ in range(3)] == [70_000, 3, 9]


async def test_an_open_size_queue_waits_for_more() -> None:
    q = SizeQueue()
    taken: list[int | None] = []

    async def taker() -> None:
        while (i := await q.next(smallest=False)) is not None:
            taken.append(i)

    task = asyncio.create_task(taker())
    await asyncio.sleep(0.01)
    assert taken == [] and not task.done()  # open and empty: waits
    q.put([(7, 700), (8, 100), (9, 900)])
    await asyncio.sleep(0.01)
    assert taken == [9, 7, 8]  # largest first
    q.put([(3, 5)])
    q.close()
    await asyncio.wait_for(task, 1)
    assert taken == [9, 7, 8, 3]


def test_an_open_size_queue_loses_nothing_over_thousands_of_takes() -> None:
    q = SizeQueue()
    q.put((i, i % 997) for i in range(5000))
    taken = [q.take(smallest=k % 2 == 0) for k in range(3000)]
    small = taken[0::2]
    assert [s % 997 for s in small] == sorted(s % 997 for s in small)  # still in size order
    q.put((i, i % 997) for i in range(5000, 6000))
    q.close()
    while (i := q.take(smallest=True)) is not None:
        taken.append(i)
    assert sorted(t for t in taken if t is not None) == list(range(6000))


def test_single_puts_between_takes_keep_the_size_order() -> None:
    q = SizeQueue()  # as while planning: one put per file, a batch taken now and then
    rng = random.Random(7)
    present: dict[int, int] = {}
    for i in range(3000):
        size = rng.randrange(10_000)
        q.put(((i, size),))
        present[i] = size
        if i % 97 == 0:
            smallest = q.take(smallest=True)
            assert smallest is not None
            assert present.pop(smallest) <= min(present.values(), default=10**9)
            largest = q.take(smallest=False)
            if largest is not None:
                assert present.pop(largest) >= max(present.values(), default=0)
    assert len(q) == len(present)


def _frames(data: bytes) -> list[object]:
    out = []
    while data:
        n = frame_length(data[:FRAME_HEADER])
        out.append(pickle.loads(data[FRAME_HEADER : FRAME_HEADER + n]))
        data = data[FRAME_HEADER + n :]
    return out


def test_a_worker_is_topped_up_from_both_ends_until_the_queue_is_empty() -> None:
    sizes = list(range(1000, 1100))
    queue = SizeQueue(sizes)
    share = Settings(nthreads=2)
    want = 2 * FEED_PER_TRANSFER

    def request(i: int) -> FetchRequest:
        return FetchRequest(f"http://h/{i}", Path(f"/m/{i}"), Checksums(sizes[i], ()))

    w = _Worker()
    (first,) = _frames(_batch(w, share, queue, request))
    assert isinstance(first, WorkerBatch) and not first.last
    got = [i for i, _ in first.requests]
    assert len(got) == want and w.open == set(got)
    # three of every four from the large end, one from the small end
    assert got[:4] == [99, 98, 97, 0] and got[4:8] == [96, 95, 94, 1]
    assert all(req.url == f"http://h/{i}" for i, req in first.requests)
    assert _batch(w, share, queue, request) == b""  # it has enough
    w.open -= set(got[:5])  # five done: five more
    (more,) = _frames(_batch(w, share, queue, request))
    assert isinstance(more, WorkerBatch) and len(more.requests) == 5
    while len(queue) > 0:  # others take the rest
        queue.take(smallest=True)
    w.open.clear()
    (end,) = _frames(_batch(w, share, queue, request))
    assert isinstance(end, WorkerBatch) and end.last and end.requests == ()
    assert _batch(w, share, queue, request) == b""  # "last" goes out once


def test_share_keeps_the_run_totals() -> None:
    s = Settings(nthreads=20, limit_rate=1000, max_connections_per_host=8)
    share = share_of(s, 3)
    # limit_rate whole: every process draws on the run's one budget (a shared clock)
    assert (share.nthreads, share.limit_rate, share.max_connections_per_host) == (7, 1000, 3)
    unlimited = share_of(Settings(nthreads=1, limit_rate=None, max_connections_per_host=0), 2)
    assert (unlimited.nthreads, unlimited.limit_rate, unlimited.max_connections_per_host) == (
        1,
        None,
        0,
    )


def test_outbox_merges_progress_and_keeps_the_order() -> None:
    buf = io.BytesIO()
    box = Outbox(buf)
    box.emit(FileStarted("u1", "/p1", 30))
    for n in (10, 10, 10):
        box.emit(FileProgress("u1", n))
    box.emit(FileDone("u1", "/p1", 30, 30, "h", 1))
    box.emit(FileProgress("u1", 5))  # after done: a new entry, not merged backwards
    box.done(0)
    box.error(1, FetchError("u2", "HTTP 404"))
    box.flush()
    stats = FetchStats(requests=2, files=1, bytes=30)
    box.flush(stats)
    box.flush()  # nothing new: no frame
    first, last = _frames(buf.getvalue())
    assert isinstance(first, WorkerReport) and isinstance(last, WorkerReport)
    kinds = [(type(e).__name__, getattr(e, "bytes", None)) for e in first.events]
    assert kinds == [
        ("FileStarted", None),
        ("FileProgress", 30),
        ("FileDone", 30),
        ("FileProgress", 5),
    ]
    assert first.done == [0] and first.errors == [(1, "u2", "HTTP 404")]
    assert last.events == [] and last.stats == stats


def test_stats_add() -> None:
    run = FetchStats(requests=1, files=1, bytes=10, retries=1)
    run.add(FetchStats(requests=2, files=2, bytes=5, failures=1, resumed=1, resumed_bytes=3))
    assert run == FetchStats(
        requests=3, files=3, bytes=15, retries=1, failures=1, resumed=1, resumed_bytes=3
    )
