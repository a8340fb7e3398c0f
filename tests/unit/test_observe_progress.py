"""observe.tracker / progress / metrics / session pieces, driven by hand-made events."""

from __future__ import annotations

import io
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from aptmirror.observe.events import (
    FileDone,
    FileFailed,
    FileProgress,
    FileStarted,
    Message,
    RunFailure,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
)
from aptmirror.observe.metrics import History, MirrorCollector, SuiteHistory, TextfileWriter
from aptmirror.observe.progress import PlainProgress, format_duration
from aptmirror.observe.progress_rich import RichProgress
from aptmirror.observe.session import ConsoleTee
from aptmirror.observe.tracker import RunTracker
from aptmirror.state.recorder import classify_failure

MIB = 1024 * 1024
ESCAPES = re.compile(r"\x1b|\r|\x08")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _archive(tracker: RunTracker, clock: Clock) -> None:
    tracker(RunStarted("r", (("h/debian", "stable"),)))
    tracker(StageStarted("archive", 2, 10 * MIB))
    tracker(FileStarted("http://h/debian/pool/big.deb", "/m/big.deb", 8 * MIB))
    tracker(FileStarted("http://h/debian/pool/small.deb", "/m/small.deb", 2 * MIB))
    for _ in range(4):
        clock.now += 1
        tracker(FileProgress("http://h/debian/pool/big.deb", MIB))


def test_tracker_counts_speed_and_eta() -> None:
    clock = Clock()
    tracker = RunTracker(clock=clock)
    _archive(tracker, clock)
    view = tracker.current()
    assert view is not None
    assert (view.files_done, view.files_total, view.bytes_done) == (0, 2, 4 * MIB)
    assert view.fraction == 0.4
    assert abs(view.speed - MIB) < MIB * 0.35  # 4 MiB over ~4 s
    assert view.eta is not None and 4 < view.eta < 9
    assert [a[0].rsplit("/", 1)[1] for a in view.active] == ["big.deb", "small.deb"]
    tracker(FileFailed("http://h/debian/pool/big.deb", "reset", 1))
    assert tracker.current().bytes_done == 0  # type: ignore[union-attr]  # re-sent on retry


def test_tracker_counts_a_file_told_by_its_done_event_alone() -> None:
    """A body that arrived whole comes as one FileDone (``started`` set): its bytes count
    as if FileStarted and FileProgress had come; a FileDone after progress adds none."""
    clock = Clock()
    tracker = RunTracker(clock=clock)
    _archive(tracker, clock)  # 4 MiB of big.deb so far
    tracker(FileDone("http://h/debian/pool/small.deb", "/m/small.deb", 2 * MIB, 2 * MIB, "", 1))
    whole = FileDone("http://h/debian/pool/c.deb", "/m/c.deb", MIB, MIB, "", 1, started=3.0)
    tracker(whole)
    view = tracker.current()
    assert view is not None
    assert (view.files_done, view.bytes_done) == (2, 5 * MIB)
    assert [a[0].rsplit("/", 1)[1] for a in view.active] == ["big.deb"]
    assert tracker.totals()[:2] == (2, 3 * MIB)
    assert sum(n for _, n in tracker._samples) == 5 * MIB  # in the speed too


def test_tracker_speed_samples_stay_bounded_with_many_small_transfers() -> None:
    """Thousands of progress reports a second (a pool of tiny files) are merged into one
    speed sample per 0.1 s: the window holds ~100 samples, and the speed is unchanged."""
    clock = Clock()
    tracker = RunTracker(clock=clock)
    _archive(tracker, clock)  # 4 MiB over 4 s
    for _ in range(50_000):  # 5 s of 10,000 reports a second, 1 KiB each
        clock.now += 0.0001
        tracker(FileProgress("http://h/debian/pool/small.deb", 1024))
    assert len(tracker._samples) <= 101
    view = tracker.current()
    assert view is not None
    assert view.bytes_done == 4 * MIB + 50_000 * 1024
    # the window holds everything, from the first sample (at 1 s) to now (9 s)
    assert abs(view.speed - (4 * MIB + 50_000 * 1024) / 8) < 0.01 * view.speed


def test_plain_progress_lines_have_no_control_characters() -> None:
    clock = Clock()
    tracker = RunTracker(clock=clock)
    out = io.StringIO()
    plain = PlainProgress(out, tracker, interval=30, clock=clock)
    _archive(tracker, clock)
    plain.tick()
    assert out.getvalue() == ""  # not yet 30 s
    clock.now = 31
    plain.tick()
    plain.tick()  # once per interval
    tracker(FileDone("http://h/debian/pool/small.deb", "/m/small.deb", 2 * MIB, 2 * MIB, None, 1))
    tracker(StageFinished("archive"))
    plain(StageFinished("archive"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and not ESCAPES.search(out.getvalue())
    assert lines[0].startswith("[progress] archive: 0/2 files, 4.0 MiB/10.0 MiB (40%)")
    assert "ETA" in lines[0] and "2 active" in lines[0]
    assert lines[1].startswith("[summary] archive: 1 files, 4.0 MiB in 0:00:31")
    assert format_duration(3725) == "1:02:05" and format_duration(None) == "?"


def test_rich_progress_draws_on_a_terminal_console() -> None:
    clock = Clock()
    tracker = RunTracker(clock=clock)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=120)
    rich = RichProgress(tracker, console)
    tee = ConsoleTee(buf, lambda e: None, rich)
    _archive(tracker, clock)
    print("Downloading 2 archive files using 2 threads...", file=tee)
    rich.tick()
    rich.close()
    text = buf.getvalue()
    assert "\x1b[" in text and "archive" in text and "big.deb" in text
    assert "Downloading 2 archive files" in text


def test_console_tee_passes_text_through_and_emits_messages() -> None:
    out = io.StringIO()
    seen: list[Message] = []
    tee = ConsoleTee(out, lambda e: seen.append(e))  # type: ignore[arg-type]
    print("line one", file=tee)
    tee.write("Warning: partial")
    tee.write(" line\n")
    assert out.getvalue() == "line one\nWarning: partial line\n"
    assert [(m.text, m.level) for m in seen] == [
        ("line one", "info"),
        ("Warning: partial line", "warning"),
    ]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_textfile_combines_history_and_live_run(tmp_path: Path) -> None:
    clock = Clock()
    tracker = RunTracker(clock=clock, classify=classify_failure)
    history = History(
        runs=3, files=10, bytes=1000, failures={"http_404": 2},
        suites=[SuiteHistory("h/debian", "stable", 1_700_000_000.0, 12.5, "ok")],
    )  # fmt: skip
    collector = MirrorCollector(tracker, history)
    path = tmp_path / "m" / "aptmirror.prom"
    writer = TextfileWriter(path, collector, interval=30, clock=clock)
    _archive(tracker, clock)
    tracker(FileDone("http://h/debian/pool/small.deb", "/m/small.deb", 2 * MIB, 2 * MIB, None, 1))
    tracker(RunFailure("h/debian", "http://h/x", "attempt 1: HTTP 404"))
    writer.write()
    m = _samples(path.read_text())
    assert m[("aptmirror_runs_total", ())] == 3
    assert m[("aptmirror_downloaded_files_total", ())] == 11
    assert m[("aptmirror_downloaded_bytes_total", ())] == 1000 + 2 * MIB
    assert m[("aptmirror_failures_total", (("reason", "http_404"),))] == 3
    assert m[("aptmirror_run_in_progress", ())] == 1
    assert m[("aptmirror_run_stage", (("stage", "archive"),))] == 1
    assert m[("aptmirror_run_stage_bytes_total", ())] == 10 * MIB
    assert m[("aptmirror_run_stage_files_done", ())] == 1
    labels = (("repository", "h/debian"), ("suite", "stable"))
    assert m[("aptmirror_last_success_timestamp_seconds", labels)] == 1_700_000_000.0
    assert m[("aptmirror_last_run_duration_seconds", labels)] == 12.5
    before = path.stat().st_mtime_ns
    clock.now += 10
    writer.tick()  # interval not reached: not rewritten
    assert path.stat().st_mtime_ns == before
    tracker(StageFinished("archive"))
    tracker(RunFinished("r", 0, 1, 2 * MIB, 1))
    writer(RunFinished("r", 0, 1, 2 * MIB, 1))  # no DB: the live run is counted
    m = _samples(path.read_text())
    assert m[("aptmirror_runs_total", ())] == 4 and m[("aptmirror_run_in_progress", ())] == 0
    assert not list(path.parent.glob("*.prom.*"))  # no temporary file left
