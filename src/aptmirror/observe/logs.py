"""Logs from events: text or JSON lines, a size-rotated log file, the systemd journal and
apt-mirror2-style per-repository files in ``var/``.

Every record carries ``run_id`` and ``repository`` and, where they apply, the structured
fields ``url``, ``path``, ``bytes``, ``status``, ``attempt`` (``fields`` on the record).
With ``log_format json`` each line is one JSON object with ``timestamp``, ``level``,
``message``, ``run_id``, ``repository`` and those fields. The console output (the Perl
tool's lines) is unchanged; it reaches the logs as :class:`Message` events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aptmirror.config.observe import ObserveSettings
from aptmirror.observe.events import (
    Event,
    FileDone,
    FileFailed,
    Message,
    RunFailure,
    RunFinished,
    RunStarted,
    StageFinished,
    StageStarted,
    SuitePublished,
    SuiteResult,
)
from aptmirror.observe.repos import RepoResolver, log_name

LOGGER_NAME = "aptmirror.run"
FIELDS = ("url", "path", "bytes", "status", "attempt", "stage", "suite", "exit_code")
JOURNAL_MISSING = (
    "log_journal on: python-systemd is not installed (Debian: apt install python3-systemd); "
    "not logging to the systemd journal"
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "run_id": getattr(record, "run_id", None),
            "repository": getattr(record, "repository", None),
        }
        doc.update(getattr(record, "fields", {}))
        return json.dumps(doc, ensure_ascii=False, sort_keys=False)


class TextFormatter(logging.Formatter):
    """``2026-01-02T03:04:05+00:00 INFO [run] [repository] message key=value...``."""

    _stamp: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        second, when = self._stamp
        if int(record.created) != second:  # a first mirror logs thousands of lines a second
            second = int(record.created)
            when = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._stamp = (second, when)
        repo = getattr(record, "repository", None)
        parts = [when, record.levelname, f"[{getattr(record, 'run_id', '-')}]"]
        if repo:
            parts.append(f"[{repo}]")
        message = record.getMessage()
        parts.append(message)
        fields = getattr(record, "fields", {})
        # the message already names the URL/path; the other fields follow as key=value
        parts.extend(f"{k}={v}" for k, v in fields.items() if str(v) not in message)
        return " ".join(parts)


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


class JournalFields(logging.Filter):
    """Journal fields are upper-case record attributes (python-systemd's convention)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.RUN_ID = getattr(record, "run_id", "")
        repo = getattr(record, "repository", None)
        if repo:
            record.REPOSITORY = repo
        for key, value in getattr(record, "fields", {}).items():
            setattr(record, key.upper(), value)
        return True


def journal_handler() -> logging.Handler | None:
    """A python-systemd JournalHandler, or None when python-systemd is not importable."""
    try:
        from systemd.journal import JournalHandler  # type: ignore[import-not-found]
    except ImportError:
        return None
    handler: logging.Handler = JournalHandler(SYSLOG_IDENTIFIER="apt-mirror")
    handler.addFilter(JournalFields())
    return handler


class LazyFlushFileHandler(logging.FileHandler):
    """A log file written through its buffer: flushed at most once a second, at once for
    warnings and errors, and on close. A first mirror logs one line per file (15,000 lines
    for a mid-sized repository); flushing each one cost more than the download's own
    bookkeeping. A killed run loses at most the last second of ``downloaded`` lines."""

    def __init__(self, filename: Path, mode: str = "a", *, delay: bool = True) -> None:
        super().__init__(filename, mode=mode, delay=delay)
        self._flushed = time.monotonic()
        self._urgent = False

    def emit(self, record: logging.LogRecord) -> None:
        self._urgent = record.levelno >= logging.WARNING
        super().emit(record)

    def flush(self) -> None:
        now = time.monotonic()
        if self._urgent or now - self._flushed >= 1.0:
            self._flushed = now
            super().flush()

    def close(self) -> None:
        self._urgent = True
        super().close()


class RepositoryFiles(logging.Handler):
    """Records naming a repository also go to ``var/<repository, / as _>.log``."""

    def __init__(self, var_path: Path, fmt: logging.Formatter) -> None:
        super().__init__()
        self.var_path = var_path
        self.setFormatter(fmt)
        self._files: dict[str, logging.FileHandler] = {}

    def emit(self, record: logging.LogRecord) -> None:
        repo = getattr(record, "repository", None)
        if not repo:
            return
        handler = self._files.get(repo)
        if handler is None:
            self.var_path.mkdir(parents=True, exist_ok=True)
            handler = LazyFlushFileHandler(self.var_path / log_name(repo), mode="w")
            handler.setFormatter(self.formatter or TextFormatter())
            self._files[repo] = handler
        handler.emit(record)

    def close(self) -> None:
        for handler in self._files.values():
            handler.close()
        super().close()


def build_logger(
    opts: ObserveSettings, var_path: Path, warn: Callable[[str], None]
) -> tuple[logging.Logger, list[logging.Handler]]:
    """The run's logger (not propagated to the root logger) and its handlers."""
    if not opts.log_journal:
        # what the logging docs advise when nothing shows the caller's source line, thread
        # or process: a record is then ≈ 30 % cheaper to make (one per downloaded file)
        logging._srcfile = None
        logging.logThreads = False
        logging.logProcesses = False
        logging.logMultiprocessing = False
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handlers: list[logging.Handler] = []
    fmt = formatter(opts.log_format)
    if opts.log_file:
        Path(opts.log_file).parent.mkdir(parents=True, exist_ok=True)
        from logging.handlers import RotatingFileHandler  # here: 6 ms of start-up

        rotating = RotatingFileHandler(
            opts.log_file, maxBytes=opts.log_max_bytes, backupCount=opts.log_backup_count
        )
        rotating.setFormatter(fmt)
        handlers.append(rotating)
    if opts.log_per_repository:
        handlers.append(RepositoryFiles(var_path, fmt))
    if opts.log_journal:
        journal = journal_handler()
        if journal is None:
            warn(JOURNAL_MISSING)
        else:
            handlers.append(journal)
    for old in list(logger.handlers):  # a second run in one process starts afresh
        logger.removeHandler(old)
    for handler in handlers:
        logger.addHandler(handler)
    return logger, handlers


class LogSubscriber:
    """Turns events into log records."""

    def __init__(self, logger: logging.Logger, tilde: bool = False) -> None:
        self.logger = logger
        self.tilde = tilde
        self.run_id = ""
        self.resolver = RepoResolver(())

    def _log(self, level: int, message: str, repository: str | None = None, **fields: Any) -> None:
        extra = {
            "run_id": self.run_id,
            "repository": repository,
            "fields": {k: v for k, v in fields.items() if v is not None},
        }
        self.logger.log(level, message, extra=extra)

    handles = frozenset(
        {Message, FileDone, FileFailed, RunFailure, StageStarted, StageFinished, SuitePublished,
         SuiteResult, RunStarted, RunFinished}
    )  # fmt: skip

    def __call__(self, event: Event) -> None:
        if isinstance(event, Message):
            level = {"warning": logging.WARNING, "error": logging.ERROR}.get(event.level, 20)
            if event.text.strip():
                self._log(level, event.text.strip())
        elif isinstance(event, FileDone):
            repo = self.resolver.repository(event.url)
            self._log(
                logging.INFO, f"downloaded {event.url}", repo, url=event.url, path=event.path,
                bytes=event.bytes, attempt=event.attempt,
            )  # fmt: skip
        elif isinstance(event, FileFailed):
            repo = self.resolver.repository(event.url)
            what = "gave up on" if event.final else "retrying"
            self._log(
                logging.ERROR if event.final else logging.WARNING,
                f"{what} {event.url}: {event.reason}", repo, url=event.url,
                status=event.status, attempt=event.attempt,
            )  # fmt: skip
        elif isinstance(event, RunFailure):
            key = "url" if "://" in event.target else "path"
            fields: dict[str, Any] = {key: event.target}
            self._log(logging.ERROR, f"{event.target}: {event.reason}", event.repository, **fields)
        elif isinstance(event, StageStarted):
            self._log(
                logging.INFO, f"stage {event.stage}: {event.files} files", stage=event.stage,
                bytes=event.bytes or None,
            )  # fmt: skip
        elif isinstance(event, StageFinished):
            self._log(logging.INFO, f"stage {event.stage} finished", stage=event.stage)
        elif isinstance(event, SuitePublished):
            self._log(
                logging.INFO, f"published {event.path}", event.repository, path=event.path,
                suite=event.suite,
            )  # fmt: skip
        elif isinstance(event, SuiteResult) and not event.published:
            self._log(
                logging.ERROR, f"{event.suite} not published ({len(event.errors)} errors)",
                event.repository, suite=event.suite,
            )  # fmt: skip
        elif isinstance(event, RunStarted):
            self.run_id = event.run_id
            self.resolver = RepoResolver(event.suites, self.tilde, event.sources)
            self._log(logging.INFO, f"run {event.run_id} started")
        elif isinstance(event, RunFinished):
            self._log(
                logging.INFO if event.exit_code == 0 else logging.ERROR,
                f"run finished: exit status {event.exit_code}, {event.files} files, "
                f"{event.bytes} bytes, {event.failures} failures",
                exit_code=event.exit_code, bytes=event.bytes,
            )  # fmt: skip
