"""sync.pool_procs / sync.pool_worker pieces: how many workers, how files are dealt, the
settings share, and the report frames (order kept, progress merged)."""

from __future__ import annotations

import io
import pickle

from aptmirror.errors import FetchError
from aptmirror.fetch.fetcher import FetchStats
from aptmirror.model import Settings
from aptmirror.observe.events import FileDone, FileProgress, FileStarted
from aptmirror.sync.pool_procs import AUTO_MIN_FILES, FILE_COST, deal, process_count, share_of
from aptmirror.sync.pool_worker import FRAME_HEADER, Outbox, WorkerReport, frame_length


def test_process_count() -> None:
    assert process_count(0, AUTO_MIN_FILES - 1, cpus=8) == 1  # small batch: in-process
    assert process_count(0, AUTO_MIN_FILES, cpus=2) == 2
    assert process_count(0, 100_000, cpus=64) == 4  # auto caps at 4
    assert process_count(0, 100_000, cpus=1) == 1
    assert process_count(1, 100_000, cpus=8) == 1  # pool_processes 1: never
    assert process_count(3, 10, cpus=1) == 3  # an explicit count is obeyed
    assert process_count(3, 2, cpus=8) == 2  # but not more workers than files
    assert process_count(3, 0, cpus=8) == 1


def test_deal_balances_the_work() -> None:
    sizes = [10_000_000, 5_000_000, *range(1000, 3000)]

    def work(hand: list[int]) -> int:
        return sum(sizes[i] + FILE_COST for i in hand)

    hands = deal(sizes, 2)
    assert sorted(hands[0] + hands[1]) == list(range(len(sizes)))
    assert abs(work(hands[0]) - work(hands[1])) <= 3000 + FILE_COST  # at most one file apart
    lighter = deal(sizes, 2, [1.0, 0.5])
    assert abs(work(lighter[0]) / work(lighter[1]) - 2.0) < 0.01
    assert deal([5], 3) == [[0], [], []]


def test_share_keeps_the_run_totals() -> None:
    s = Settings(nthreads=20, limit_rate=1000, max_connections_per_host=8)
    share = share_of(s, 3)
    assert (share.nthreads, share.limit_rate, share.max_connections_per_host) == (7, 333, 3)
    unlimited = share_of(Settings(nthreads=1, limit_rate=None, max_connections_per_host=0), 2)
    assert (unlimited.nthreads, unlimited.limit_rate, unlimited.max_connections_per_host) == (
        1,
        None,
        0,
    )


def _frames(data: bytes) -> list[WorkerReport]:
    out = []
    while data:
        n = frame_length(data[:FRAME_HEADER])
        out.append(pickle.loads(data[FRAME_HEADER : FRAME_HEADER + n]))
        data = data[FRAME_HEADER + n :]
    return out


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
