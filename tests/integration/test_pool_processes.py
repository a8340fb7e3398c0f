"""The pool stage spread over processes (``pool_processes 3``: the run and two workers):
same mirror, same events, same failure handling as in one process; a dead worker fails its
files; a dead run stops its workers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aptmirror.fetch.batch import SizeQueue
from aptmirror.fetch.fetcher import FetchRequest, FetchStats
from aptmirror.model import Checksums, Settings
from aptmirror.observe.events import Event, EventBus, FileDone, StageFinished, StageStarted
from aptmirror.sync import pool, pool_procs
from aptmirror.sync import run as runmod
from aptmirror.sync.pool_procs import WorkerCrew
from aptmirror.testing import (
    DEFAULT_PACKAGES,
    FakeUpstream,
    Fault,
    PackageSpec,
    TestKey,
    build_repo,
)

from .conftest import (
    ServeFn,
    repo_lines,
    run_cli,
    sha256_file,
    var_dir,
    write_mirror_list,
)
from .test_failures import Scenario, assert_published, assert_unchanged, new_scenario, tree_state

PROCS = {"nthreads": "4", "retry_delay": "0", "pool_processes": "3", "resume_min_size": "0"}


def _pool_files(sc: Scenario) -> list[str]:
    files = {p.filename for p in sc.info.packages}
    files |= {f"{s.directory}/{f.name}" for s in sc.info.sources for f in s.files}
    return sorted(files)


@pytest.fixture
def procs(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> Scenario:
    return new_scenario(tmp_path, repo_key, serve, capsys, PROCS)


def _workers_of(pid: int) -> list[int]:
    """Pool worker processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"aptmirror.sync.pool_worker" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _mirrored_once(sc: Scenario) -> list[str]:
    """The suite is published, every pool file is in place and was asked for once; its
    pool files."""
    assert_published(sc)
    files = _pool_files(sc)
    for rel in files:
        assert sha256_file(sc.mirror / rel) == sha256_file(sc.info.root / rel), rel
    gets = [r.path for r in sc.up.requests if r.method == "GET" and "/pool/" in r.path]
    assert sorted(gets) == sorted(f"/{rel}" for rel in files)
    return files


def test_two_processes_mirror_what_one_does(procs: Scenario) -> None:
    sc = procs
    res = sc.run()
    assert res.code == 0, res.output
    files = _mirrored_once(sc)
    # the run's totals include the workers' counters
    ok = [r for r in sc.up.requests if r.status == 200]
    assert f"Downloaded {len(ok)} files" in res.output
    assert f"in {len(sc.up.requests)} requests" in res.output
    # the observers saw the workers' events: one log line per pool file
    log = next(var_dir(sc.tmp).glob("127.0.0.1*.log")).read_text()
    for rel in files:
        assert f"downloaded {sc.up.url}{rel}" in log
    # and a second run (in-process or not) has nothing to fetch
    sc.up.reset_log()
    again = sc.run()
    assert again.code == 0 and not [r for r in sc.up.requests if "/pool/" in r.path]


def test_a_failing_file_in_a_worker_fails_its_suite(procs: Scenario) -> None:
    sc = procs
    assert sc.run().code == 0
    before = tree_state(sc.published)
    sc.update()
    new = next(rel for rel in _pool_files(sc) if not (sc.mirror / rel).exists())
    sc.up.add_fault(f"/{new}", Fault("status", status=404, times=100))
    res = sc.run()
    assert res.code == 1
    assert f"{sc.up.url}{new}" in res.output and "HTTP 404" in res.output
    assert_unchanged(sc, before)
    sc.up.clear_faults()
    assert sc.run().code == 0
    assert_published(sc)


def _start_cli(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "aptmirror.cli", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(what: str, check: object, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while not check():  # type: ignore[operator]
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {log.read_text()}"
        time.sleep(0.02)


def _run_with_a_stalled_worker(
    sc: Scenario, stalls: int | None
) -> tuple[subprocess.Popen[bytes], Path, str, list[int]]:
    """Start the CLI with the largest pool file stalling after 100 bytes (``stalls`` times;
    None: always) and wait until it does: (process, its log, that file, its pool workers —
    at least the one holding the stalled file; the other may have finished already)."""
    stalled = max(_pool_files(sc), key=lambda r: (sc.info.root / r).stat().st_size)
    sc.up.add_fault(f"/{stalled}", Fault("stall", after_bytes=100, seconds=60, times=stalls))
    log = sc.tmp / "run.log"
    proc = _start_cli(sc.config, log)
    partial = sc.mirror / Path(stalled).parent / f".{Path(stalled).name}.aptmirror-partial"
    try:
        _wait_for("the stalled transfer", partial.exists, proc, log)
        workers = _workers_of(proc.pid)
        assert workers
    except BaseException:
        proc.kill()
        raise
    return proc, log, stalled, workers


def test_the_run_fetches_what_a_killed_worker_left(procs: Scenario) -> None:
    """Workers killed mid-transfer (as by the OOM killer): the run warns, fetches their
    unfinished files itself — resuming the partial file — and publishes."""
    sc = procs
    proc, log, stalled, workers = _run_with_a_stalled_worker(sc, stalls=1)
    try:
        for pid in workers:  # the one holding the stalled file cannot finish: kill them
            os.kill(pid, signal.SIGKILL)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        proc.kill()
    out = log.read_text()
    assert "pool worker process exited with status -9 before finishing" in out
    assert "the run fetches them itself" in out
    assert_published(sc)
    assert sha256_file(sc.mirror / stalled) == sha256_file(sc.info.root / stalled)
    gets = [(r.status, r.range_header) for r in sc.up.requests if r.path == f"/{stalled}"]
    assert gets[-1] == (206, "bytes=100-"), gets  # the run resumed what the worker wrote


def test_a_killed_run_stops_its_workers(procs: Scenario) -> None:
    sc = procs
    proc, _, _, workers = _run_with_a_stalled_worker(sc, stalls=None)
    try:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(pid) for pid in workers):
            assert time.monotonic() < deadline, "pool workers outlived the killed run"
            time.sleep(0.05)
    finally:
        proc.kill()
    assert not (sc.mirror / "dists").exists()  # killed before publishing


def test_a_worker_that_cannot_start_leaves_its_share_to_the_run(
    procs: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = procs
    monkeypatch.setattr(
        "aptmirror.sync.pool_procs.WORKER_COMMAND", (str(sc.tmp / "no-such-python"), "-c", "")
    )
    res = sc.run()
    assert res.code == 0, res.output
    assert "pool worker process could not be started" in res.output
    assert "the run fetches them itself" in res.output
    assert_published(sc)
    for rel in _pool_files(sc):
        assert sha256_file(sc.mirror / rel) == sha256_file(sc.info.root / rel), rel


def _upstream_files(
    root: Path, count: int, where: Callable[[int], tuple[str, int]]
) -> tuple[list[tuple[str, str]], list[int]]:
    """``count`` random files under ``root`` (``where(i)``: directory, size): their
    (relative path, SHA256) and sizes."""
    names, sizes = [], []
    for i in range(count):
        directory, size = where(i)
        body = os.urandom(size)
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / f"f{i}.deb").write_bytes(body)
        names.append((f"{directory}/f{i}.deb", hashlib.sha256(body).hexdigest()))
        sizes.append(size)
    return names, sizes


def _requests(
    url: str, names: list[tuple[str, str]], sizes: list[int], mirror: Path
) -> Callable[[int], FetchRequest]:
    def request(i: int) -> FetchRequest:
        name, digest = names[i]
        expected = Checksums(sizes[i], (("SHA256", digest),))
        return FetchRequest(f"{url}{name}", str(mirror / name), expected, fresh=True)

    return request


async def test_workers_are_fed_batch_after_batch_until_the_queue_is_empty(tmp_path: Path) -> None:
    """Two real worker processes with one transfer each (batches of FEED_PER_TRANSFER files):
    160 files take twenty top-ups, and every file arrives once, verified, with its
    events and counters reported back."""
    root, mirror = tmp_path / "up", tmp_path / "mirror"
    names, sizes = _upstream_files(root, 160, lambda i: (f"d{i % 7}", 100 + i * 37))
    async with FakeUpstream(root) as srv:
        url = srv.url
        request = _requests(url, names, sizes, mirror)
        events: list[Event] = []
        failed: list[int] = []
        warnings: list[str] = []
        stats = FetchStats()
        share = Settings(nthreads=1, retry_delay=0)
        crew = WorkerCrew(
            share, 2, SizeQueue(sizes), request, events.append,
            lambda i, exc: failed.append(i), stats,
        )  # fmt: skip
        crew.start()
        left = await asyncio.wait_for(crew.finish(warnings.append), 60)  # no worker left waiting
    assert (left, failed, warnings) == ([], [], [])
    assert stats.files == stats.requests == 160
    done = sorted(e.url for e in events if isinstance(e, FileDone))
    assert done == sorted(f"{url}{name}" for name, _ in names)
    for name, digest in names:
        assert hashlib.sha256((mirror / name).read_bytes()).hexdigest() == digest
    gets = [r.path for r in srv.requests if r.method == "GET"]
    assert sorted(gets) == sorted(f"/{name}" for name, _ in names)  # each asked for once


async def test_workers_started_before_planning_take_files_as_they_come(tmp_path: Path) -> None:
    """A crew started on an empty, open queue (as before planning): files put in chunks
    while it starts up reach it once it is ready; closing the queue ends it; every file is
    fetched once. A second crew given nothing is stopped at once, not waited for."""
    root, mirror = tmp_path / "up", tmp_path / "mirror"
    names, sizes = _upstream_files(root, 120, lambda i: ("p", 200 + i * 13))
    async with FakeUpstream(root) as srv:
        url = srv.url
        request = _requests(url, names, sizes, mirror)
        events: list[Event] = []
        warnings: list[str] = []
        stats = FetchStats()
        queue = SizeQueue()  # open
        crew = WorkerCrew(
            Settings(nthreads=2, retry_delay=0), 1, queue, request, events.append,
            lambda i, exc: warnings.append(exc.reason), stats,
        )  # fmt: skip
        crew.start()
        for start in range(0, 120, 10):  # planning goes on
            queue.put((i, sizes[i]) for i in range(start, start + 10))
            crew.feed()
            await asyncio.sleep(0.02)
        queue.close()
        left = await asyncio.wait_for(crew.finish(warnings.append), 60)
        assert crew.crew[0].taken == 120  # the run's own process took nothing here

        idle = WorkerCrew(
            Settings(nthreads=2), 1, SizeQueue(), request, events.append,
            lambda i, exc: None, FetchStats(),
        )  # fmt: skip
        idle.start()
        idle.queue.close()
        idle.dismiss_idle()
        started = time.monotonic()
        assert await asyncio.wait_for(idle.finish(warnings.append), 60) == []
        assert time.monotonic() - started < 5
    assert (left, warnings) == ([], [])
    assert stats.files == stats.requests == 120
    done = sorted(e.url for e in events if isinstance(e, FileDone))
    assert done == sorted(f"{url}{name}" for name, _ in names)
    for name, digest in names:
        assert hashlib.sha256((mirror / name).read_bytes()).hexdigest() == digest


def test_a_run_with_workers_started_before_planning(
    procs: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Indexes big enough (here: any) start the workers before planning: same mirror, every
    file fetched once, their events in the archive stage, and an update goes the same way."""
    sc = procs
    monkeypatch.setattr(pool_procs, "STREAM_MIN_INDEX_BYTES", 0)
    started: list[int] = []
    real_start = WorkerCrew.start

    def start(self: WorkerCrew) -> None:
        started.append(len(self.queue))
        real_start(self)

    monkeypatch.setattr(WorkerCrew, "start", start)
    # a slow plan (a step per record, 20 ms each): the workers start up and fetch meanwhile
    monkeypatch.setattr(pool, "PLAN_STEP", 1)
    real_plan = runmod.plan_suite

    def slow_plan(*args: Any) -> Iterator[None]:
        for step in real_plan(*args):
            time.sleep(0.02)
            yield step

    monkeypatch.setattr(runmod, "plan_suite", slow_plan)
    seen: list[str] = []  # the archive stage's events, in order
    archive_at: list[float] = []
    done_at: list[float] = []
    real_emit = EventBus.emit

    def emit(self: EventBus, event: Event) -> None:
        if isinstance(event, StageStarted | StageFinished) and event.stage == "archive":
            seen.append(type(event).__name__)
            archive_at.append(event.at)
        elif isinstance(event, FileDone) and "/pool/" in event.url:
            seen.append(event.url)
            done_at.append(event.at)
        real_emit(self, event)

    monkeypatch.setattr(EventBus, "emit", emit)
    res = sc.run()
    assert res.code == 0, res.output
    assert started == [0]  # before anything was planned
    files = _mirrored_once(sc)
    # every download reported once, inside its stage (the workers' early ones were held)
    assert seen[0] == "StageStarted" and seen[-1] == "StageFinished", seen
    assert sorted(seen[1:-1]) == sorted(f"{sc.up.url}{rel}" for rel in files)
    assert min(done_at) < archive_at[0]  # some were fetched while planning went on
    sc.update()
    assert sc.run().code == 0
    assert_published(sc)


def _crew_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record, at each WorkerCrew start, the last stage event seen before it."""
    stages: list[str] = ["-"]
    starts: list[str] = []
    real_start = WorkerCrew.start

    def start(self: WorkerCrew) -> None:
        starts.append(stages[-1])
        real_start(self)

    real_emit = EventBus.emit

    def emit(self: EventBus, event: Event) -> None:
        if isinstance(event, StageStarted | StageFinished):
            stages.append(f"{type(event).__name__} {event.stage}")
        real_emit(self, event)

    monkeypatch.setattr(WorkerCrew, "start", start)
    monkeypatch.setattr(EventBus, "emit", emit)
    return starts


def test_workers_start_before_the_index_stage_when_big_indexes_changed(
    procs: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changed indexes big enough (here: any) start the workers as the index stage starts
    (their start-up overlaps the index downloads); a no-op run starts none; a run whose
    index stage fails leaves no worker behind."""
    sc = procs
    monkeypatch.setattr(pool_procs, "STREAM_MIN_INDEX_BYTES", 1)
    starts = _crew_starts(monkeypatch)
    res = sc.run()
    assert res.code == 0, res.output
    assert starts == ["StageFinished release"]
    _mirrored_once(sc)
    assert _workers_of(os.getpid()) == []

    starts.clear()
    assert sc.run().code == 0  # nothing changed: no process started
    assert starts == []

    sc.update()
    sc.up.add_fault("/dists/*/main/binary-amd64/*", Fault("status", status=404))
    before = tree_state(sc.published)
    res = sc.run()
    assert res.code != 0
    assert starts == ["StageFinished release"]  # started, then stopped unused
    assert_unchanged(sc, before)
    assert _workers_of(os.getpid()) == []


_BIG_ONE = (PackageSpec("big", "1.0-1", "amd64", size=6 << 20),)
_MANY = tuple(PackageSpec(f"mid{n}", "1.0-1", "amd64", size=512 << 10) for n in range(24))


@pytest.mark.parametrize(
    ("extra", "rate"), [(_BIG_ONE, 2 << 20), (_MANY, 4 << 20)], ids=["one-big", "many"]
)
def test_limit_rate_is_one_budget_for_every_process(
    tmp_path: Path,
    repo_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    extra: tuple[PackageSpec, ...],
    rate: int,
) -> None:
    """With two processes ``limit_rate`` is one budget: the archive stage takes its bytes /
    rate less the 1 s burst. One 6 MiB file among small ones at 2 MiB/s: ≈ 2 s, where a
    fixed half of the rate for each process took ≈ 5 s (the other process soon had nothing
    left to fetch). 24 files of 512 KiB at 4 MiB/s, both processes busy throughout: ≈ 2 s,
    where a whole rate for each process would take ≈ 1 s."""
    info = build_repo(
        tmp_path / "repo", repo_key, packages=(*DEFAULT_PACKAGES, *extra), sources=False
    )
    up = serve(info.root)
    settings = {**PROCS, "pool_processes": "2", "limit_rate": str(rate)}
    config = write_mirror_list(tmp_path, repo_lines(info, up.url), settings=settings)
    starts = _crew_starts(monkeypatch)
    res = run_cli(config, capsys)
    assert res.code == 0, res.output
    assert len(starts) == 1  # a worker process took part
    report = json.loads((var_dir(tmp_path) / "run-report.json").read_text())
    archive = next(s for s in report["stages"] if s["stage"] == "archive")
    assert archive["bytes"] >= sum(p.size for p in extra)
    due = archive["bytes"] / rate - 1.0
    assert due - 0.1 <= archive["seconds"] <= due + 0.8, (archive, due)
