"""observe.logs: JSON/text lines with structured fields, per-repository files, journal."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest

from aptmirror.config.observe import ObserveSettings
from aptmirror.observe.events import (
    FileDone,
    FileFailed,
    Message,
    RunFailure,
    RunFinished,
    RunStarted,
)
from aptmirror.observe.logs import JOURNAL_MISSING, LogSubscriber, build_logger

SUITES = (("h/debian", "stable"),)


def _run(opts: ObserveSettings, var: Path, warn: list[str] | None = None) -> None:
    logger, handlers = build_logger(opts, var, (warn if warn is not None else []).append)
    _run_events(LogSubscriber(logger))
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()


def _run_events(sub: LogSubscriber) -> None:
    sub(RunStarted("run-1", SUITES))
    sub(Message("Downloading 3 index files using 3 threads..."))
    sub(Message("Warning: something odd", "warning"))
    sub(FileDone("http://h/debian/pool/a.deb", "/m/h/debian/pool/a.deb", 10, 7, "ab", 2))
    # fields the message already shows are left out: here the size, then the path
    sub(FileDone("http://h/debian/pool/a_1234.deb", "/m/h/debian/pool/a.deb", 1234, 1234, "", 1))
    sub(FileDone("http://h/debian/pool/m", "m", 10, 10, "", 3))
    sub(FileFailed("http://h/debian/pool/b.deb", "HTTP 503", 1, 503, final=False))
    sub(FileFailed("http://h/debian/pool/b.deb", "HTTP 404", 2, 404, final=True))
    sub(RunFailure("h/debian", "http://h/debian/pool/b.deb", "attempt 2: HTTP 404"))
    sub(RunFinished("run-1", 1, 1, 7, 1))


def test_json_lines_parse_and_carry_fields(tmp_path: Path) -> None:
    log = tmp_path / "log" / "a.log"
    _run(ObserveSettings(log_format="json", log_file=str(log)), tmp_path / "var")
    docs = [json.loads(line) for line in log.read_text().splitlines()]
    for doc in docs:
        assert {"timestamp", "level", "message", "run_id", "repository"} <= set(doc)
        assert doc["run_id"] == "run-1"
    done = next(d for d in docs if d["message"].startswith("downloaded"))
    assert done["url"] == "http://h/debian/pool/a.deb" and done["path"].endswith("a.deb")
    assert (done["bytes"], done["attempt"], done["repository"], done["level"]) == (
        7, 2, "h/debian", "info",
    )  # fmt: skip
    retry, gave_up = (d for d in docs if d.get("status") in (503, 404))
    assert (retry["level"], retry["attempt"], retry["status"]) == ("warning", 1, 503)
    assert (gave_up["level"], gave_up["attempt"], gave_up["status"]) == ("error", 2, 404)
    assert any(d["level"] == "warning" and "odd" in d["message"] for d in docs)
    failure = next(d for d in docs if d["message"].startswith("http://h/debian/pool/b.deb: "))
    assert failure["url"] == "http://h/debian/pool/b.deb" and "404" in failure["message"]


def test_text_lines_and_per_repository_file(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    _run(ObserveSettings(log_file=str(log)), tmp_path / "var")
    text = log.read_text()
    assert "INFO [run-1] [h/debian] downloaded http://h/debian/pool/a.deb" in text
    assert "bytes=7 attempt=2" in text
    repo_log = (tmp_path / "var" / "h_debian.log").read_text()
    assert "a.deb" in repo_log and "Downloading 3 index" not in repo_log


def test_rotation_keeps_backup_count(tmp_path: Path) -> None:
    log = tmp_path / "r.log"
    opts = ObserveSettings(log_file=str(log), log_max_bytes=300, log_backup_count=2)
    for _ in range(5):
        _run(opts, tmp_path / "var")
    assert (tmp_path / "r.log.1").exists() and (tmp_path / "r.log.2").exists()
    assert not (tmp_path / "r.log.3").exists()


def test_journal_missing_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "systemd", None)
    warnings: list[str] = []
    _run(ObserveSettings(log_journal=True, log_per_repository=False), tmp_path, warnings)
    assert warnings == [JOURNAL_MISSING]


def test_journal_gets_structured_fields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records: list[logging.LogRecord] = []

    class JournalHandler(logging.Handler):
        def __init__(self, **kwargs: str) -> None:
            super().__init__()
            self.kwargs = kwargs

        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    journal = types.ModuleType("systemd.journal")
    journal.JournalHandler = JournalHandler  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "systemd", types.ModuleType("systemd"))
    monkeypatch.setitem(sys.modules, "systemd.journal", journal)
    _run(ObserveSettings(log_journal=True, log_per_repository=False), tmp_path)
    done = next(r for r in records if r.getMessage().startswith("downloaded"))
    assert done.URL == "http://h/debian/pool/a.deb"  # type: ignore[attr-defined]
    assert done.RUN_ID == "run-1" and done.REPOSITORY == "h/debian"  # type: ignore[attr-defined]


def test_per_repository_file_flushes_errors_at_once_and_the_rest_on_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``downloaded`` line per file is buffered (a first mirror writes thousands);
    a warning or error reaches the file at once, everything by the end of the run."""
    monkeypatch.setattr("aptmirror.observe.logs.time.monotonic", lambda: 100.0)  # no 1 s tick
    opts = ObserveSettings(log_per_repository=True)
    logger, handlers = build_logger(opts, tmp_path, [].append)
    sub = LogSubscriber(logger)
    sub(RunStarted("run-1", SUITES))
    log = tmp_path / "h_debian.log"
    for i in range(50):
        sub(FileDone(f"http://h/debian/pool/{i}.deb", f"/m/{i}.deb", 10, 10, "ab", 1))
    lines_before = log.read_text().count("downloaded") if log.exists() else 0
    assert lines_before < 50  # buffered, not flushed per line
    sub(FileFailed("http://h/debian/pool/b.deb", "HTTP 503", 1, 503, final=False))
    text = log.read_text()
    assert "retrying http://h/debian/pool/b.deb" in text and text.count("downloaded") == 50
    sub(FileDone("http://h/debian/pool/last.deb", "/m/last.deb", 10, 10, "ab", 1))
    for handler in handlers:
        logger.removeHandler(handler)
        handler.close()
    assert log.read_text().count("downloaded") == 51


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_per_repository_lines_written_directly_match_the_logging_path(
    tmp_path: Path, log_format: str
) -> None:
    """With the per-repository files as the only handler, lines skip the LogRecord; they
    must read exactly as the ones formatted through logging (forced here by a filter)."""

    def lines(var: Path, *, through_logging: bool) -> list[str]:
        logger, handlers = build_logger(ObserveSettings(log_format=log_format), var, [].append)
        if through_logging:
            handlers[0].addFilter(lambda record: True)
        sub = LogSubscriber(logger)
        assert (sub._direct_route() is None) == through_logging
        _run_events(sub)
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        text = (var / "h_debian.log").read_text()
        if log_format == "json":  # the timestamps differ in their milliseconds
            return [json.dumps({**json.loads(x), "timestamp": ""}) for x in text.splitlines()]
        return [x.split(" ", 1)[1] for x in text.splitlines()]

    direct = lines(tmp_path / "direct", through_logging=False)
    assert direct == lines(tmp_path / "logging", through_logging=True)
    assert len(direct) == 6 and any("bytes=7 attempt=2" in x or '"bytes": 7' in x for x in direct)
    if log_format == "text":
        shown = [x.split("] ", 2)[2] for x in direct]
        assert "downloaded http://h/debian/pool/a_1234.deb path=/m/h/debian/pool/a.deb" in shown
        assert "downloaded http://h/debian/pool/m bytes=10 attempt=3" in shown


def test_a_handler_added_later_turns_the_direct_route_off(tmp_path: Path) -> None:
    logger, handlers = build_logger(ObserveSettings(), tmp_path, [].append)
    sub = LogSubscriber(logger)
    assert sub._direct_route() is handlers[0]
    extra = logging.FileHandler(tmp_path / "extra.log")
    logger.addHandler(extra)

    def skip(record: logging.LogRecord) -> bool:
        return "skip" not in record.getMessage()

    try:
        sub(RunStarted("run-1", SUITES))
        sub(FileDone("http://h/debian/pool/a.deb", "/m/a.deb", 10, 7, "ab", 2))
        assert sub._direct_route() is None
        logger.removeHandler(extra)
        assert sub._direct_route() is handlers[0]
        logger.addFilter(skip)
        assert sub._direct_route() is None  # a filter added later is honoured
        sub(FileDone("http://h/debian/pool/skip.deb", "/m/skip.deb", 10, 7, "ab", 2))
    finally:
        logger.removeFilter(skip)
        for handler in (*handlers, extra):
            logger.removeHandler(handler)
            handler.close()
    assert "downloaded http://h/debian/pool/a.deb" in (tmp_path / "extra.log").read_text()
    repo_log = (tmp_path / "h_debian.log").read_text()
    assert "downloaded http://h/debian/pool/a.deb" in repo_log and "skip.deb" not in repo_log


def test_a_line_after_the_run_closed_its_files_does_not_empty_them(tmp_path: Path) -> None:
    logger, handlers = build_logger(ObserveSettings(), tmp_path, [].append)
    sub = LogSubscriber(logger)
    sub(RunStarted("run-1", SUITES))
    sub(FileDone("http://h/debian/pool/a.deb", "/m/a.deb", 10, 7, "ab", 2))
    for handler in handlers:
        handler.close()  # the run's end; the handler is still attached
    try:
        sub(FileDone("http://h/debian/pool/late.deb", "/m/late.deb", 10, 7, "ab", 2))
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
    text = (tmp_path / "h_debian.log").read_text()
    assert "pool/a.deb" in text and "late.deb" not in text
