"""Logs from events: text or JSON lines, a size-rotated log file, the systemd journal and
apt-mirror2-style per-repository files in ``var/``.

Every record carries ``run_id`` and ``repository`` and, where they apply, the structured
fields ``url``, ``path``, ``bytes``, ``status``, ``attempt`` (``fields`` on the record).
With ``log_format json`` each line is one JSON object with ``timestamp``, ``level``,
``message``, ``run_id``, ``repository`` and those fields. The console output (the Perl
tool's lines) is unchanged; it reaches the logs as :class:`Message` events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
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
from aptmirror.observe.redact import redact
from aptmirror.observe.repos import RepoResolver, log_name

LOGGER_NAME = "aptmirror.run"
FIELDS = ("url", "path", "bytes", "status", "attempt", "stage", "suite", "exit_code")
JOURNAL_MISSING = (
    "log_journal on: python-systemd is not installed (Debian: apt install python3-systemd); "
    "not logging to the systemd journal"
)


class LineFormatter(logging.Formatter):
    """A formatter whose line is a function of the record's attributes: :meth:`line` also
    writes one without a record (see :meth:`RepositoryFiles.write`)."""

    no_run_id: str | None = None  # what a record without ``run_id`` shows

    def format(self, record: logging.LogRecord) -> str:
        return self.line(
            record.created, record.levelname, getattr(record, "run_id", self.no_run_id),
            getattr(record, "repository", None), record.getMessage(),
            getattr(record, "fields", {}),
        )  # fmt: skip

    def line(
        self, created: float, levelname: str, run_id: str | None, repository: str | None,
        message: str, fields: dict[str, Any],
    ) -> str:  # fmt: skip
        raise NotImplementedError


class JsonFormatter(LineFormatter):
    """One JSON object per line."""

    def line(
        self, created: float, levelname: str, run_id: str | None, repository: str | None,
        message: str, fields: dict[str, Any],
    ) -> str:  # fmt: skip
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
            "level": levelname.lower(),
            "message": message,
            "run_id": run_id,
            "repository": repository,
        }
        doc.update(fields)
        return json.dumps(doc, ensure_ascii=False, sort_keys=False)


class TextFormatter(LineFormatter):
    """``2026-01-02T03:04:05+00:00 INFO [run] [repository] message key=value...``."""

    no_run_id = "-"
    _stamp: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def line(
        self, created: float, levelname: str, run_id: str | None, repository: str | None,
        message: str, fields: dict[str, Any],
    ) -> str:  # fmt: skip
        second, when = self._stamp
        if int(created) != second:  # a first mirror logs thousands of lines a second
            second = int(created)
            when = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._stamp = (second, when)
        parts = [when, levelname, f"[{run_id}]"]
        if repository:
            parts.append(f"[{repository}]")
        parts.append(message)
        # the message already names the URL/path; the other fields follow as key=value
        parts.extend(f"{k}={v}" for k, v in fields.items() if str(v) not in message)
        return " ".join(parts)

    def downloaded(
        self, created: float, run_id: str, repository: str, url: str, path: str, size: int,
        attempt: int,
    ) -> str:  # fmt: skip
        """:meth:`line` of a ``downloaded`` record (one per file: built here in one go)."""
        second, when = self._stamp
        if int(created) != second:
            second = int(created)
            when = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._stamp = (second, when)
        line = f"{when} INFO [{run_id}] [{repository}] downloaded {url}"
        # the fields the message does not already show (the URL always does)
        message = f"downloaded {url}"
        if path not in message:
            line += f" path={path}"
        if (text := str(size)) not in message:
            line += f" bytes={text}"
        if (text := str(attempt)) not in message:
            line += f" attempt={text}"
        return line


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


def _stderr_warning(text: str) -> None:
    print(f"apt-mirror: warning: {text}", file=sys.stderr, flush=True)


class _GivesUpQuietly(logging.FileHandler):
    """A log file that, once a write fails (a full disk, an I/O error), says so once and
    takes no more lines this run — instead of logging's traceback for every record, which
    on a full disk buried the run's own error report under thousands of lines."""

    warn: Callable[[str], None] = staticmethod(_stderr_warning)
    failed = False

    def handleError(self, record: logging.LogRecord | None) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)  # type: ignore[arg-type]
            return
        if not self.failed:
            self.failed = True
            reason = exc.strerror or str(exc)
            self.warn(
                f"cannot write the log file {self.baseFilename}: {reason};"
                " it gets no more lines this run"
            )
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def close(self) -> None:
        try:
            super().close()
        except OSError:  # the buffer's last flush
            self.handleError(None)


def rotating_log_file(
    path: str, max_bytes: int, backups: int, warn: Callable[[str], None]
) -> logging.FileHandler:
    """``log_file``: rotated by size, quiet when it cannot be written (see above)."""
    from logging.handlers import RotatingFileHandler  # here: 6 ms of start-up

    class RotatingLogFile(_GivesUpQuietly, RotatingFileHandler):
        pass

    handler = RotatingLogFile(path, maxBytes=max_bytes, backupCount=backups)
    handler.warn = warn
    return handler


class LazyFlushFileHandler(_GivesUpQuietly):
    """A log file written through its buffer: flushed at most once a second, at once for
    warnings and errors, and on close. A first mirror logs one line per file (15,000 lines
    for a mid-sized repository); flushing each one cost more than the download's own
    bookkeeping. A killed run loses at most the last second of ``downloaded`` lines."""

    def __init__(self, filename: Path, mode: str = "a", *, delay: bool = True) -> None:
        super().__init__(filename, mode=mode, delay=delay)
        self._flushed = time.monotonic()
        self._urgent = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record), record.levelno)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        now = time.monotonic()
        if self._urgent or now - self._flushed >= 1.0:
            self._flushed = now
            super().flush()

    def close(self) -> None:
        self._urgent = True
        super().close()

    def write_line(self, text: str, level: int) -> None:
        """Write one formatted line: :meth:`emit`'s way, and the per-repository files' way
        without a LogRecord."""
        if self.failed:
            return
        self.acquire()
        try:
            if self.stream is None:
                # as logging.FileHandler: once closed, a "w" file is not opened (emptied) again
                if self.mode == "w" and getattr(self, "_closed", False):
                    return
                self.stream = self._open()
            self.stream.write(text + self.terminator)
            self._urgent = level >= logging.WARNING
            self.flush()
        except OSError:
            self.handleError(None)
        finally:
            self.release()


class RepositoryFiles(logging.Handler):
    """Records naming a repository also go to ``var/<repository, / as _>.log``."""

    def __init__(
        self, var_path: Path, fmt: logging.Formatter, warn: Callable[[str], None] = _stderr_warning
    ) -> None:
        super().__init__()
        self.var_path = var_path
        self.warn = warn
        self.setFormatter(fmt)
        self._files: dict[str, LazyFlushFileHandler] = {}

    def emit(self, record: logging.LogRecord) -> None:
        repo = getattr(record, "repository", None)
        if repo:
            self._file(repo).emit(record)

    def _file(self, repo: str) -> LazyFlushFileHandler:
        handler = self._files.get(repo)
        if handler is None:
            self.var_path.mkdir(parents=True, exist_ok=True)
            handler = LazyFlushFileHandler(self.var_path / log_name(repo), mode="w")
            handler.warn = self.warn
            handler.setFormatter(self.formatter or TextFormatter())
            self._files[repo] = handler
        return handler

    def direct(self) -> bool:
        """Whether :meth:`write` gives the same lines as the logging machinery: no filter
        to consult, and a formatter of ours."""
        return not self.filters and isinstance(self.formatter, LineFormatter)

    def write(
        self, level: int, run_id: str, repository: str | None, message: str,
        fields: dict[str, Any],
    ) -> None:  # fmt: skip
        """The line of a record with these attributes, written without making the record."""
        if not repository or level < self.level:
            return
        fmt = self.formatter
        assert isinstance(fmt, LineFormatter)
        levelname = logging.getLevelName(level)
        line = fmt.line(time.time(), levelname, run_id, repository, message, fields)
        self._file(repository).write_line(line, level)

    def write_downloaded(
        self, run_id: str, repository: str | None, url: str, path: str, size: int, attempt: int
    ) -> None:
        """:meth:`write` of a ``downloaded`` INFO record (see :meth:`TextFormatter.downloaded`)."""
        if not repository or self.level > logging.INFO:
            return
        fmt = self.formatter
        if not isinstance(fmt, TextFormatter):
            values = {"url": url, "path": path, "bytes": size, "attempt": attempt}
            self.write(logging.INFO, run_id, repository, f"downloaded {url}", values)
            return
        line = fmt.downloaded(time.time(), run_id, repository, url, path, size, attempt)
        self._file(repository).write_line(line, logging.INFO)

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
        rotating = rotating_log_file(opts.log_file, opts.log_max_bytes, opts.log_backup_count, warn)
        rotating.setFormatter(fmt)
        handlers.append(rotating)
    if opts.log_per_repository:
        handlers.append(RepositoryFiles(var_path, fmt, warn))
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
        self._handlers: tuple[logging.Handler, ...] | None = None  # when _only was found
        self._only: RepositoryFiles | None = None

    def _direct_route(self) -> RepositoryFiles | None:
        """The per-repository files when they are the logger's only handler (the default)
        and no filter is set: lines then go to them without a LogRecord and the logging
        machinery — one line per downloaded file took ≈ 8 µs that way, a third of the
        bookkeeping of a file."""
        handlers = tuple(self.logger.handlers)
        if handlers != self._handlers:
            self._handlers = handlers
            only = handlers[0] if len(handlers) == 1 else None
            self._only = only if isinstance(only, RepositoryFiles) else None
        only = self._only
        if only is None or self.logger.filters or not only.direct():
            return None
        return only

    def _log(self, level: int, message: str, repository: str | None = None, **fields: Any) -> None:
        message = redact(message)
        values = {
            k: redact(v) if isinstance(v, str) else v for k, v in fields.items() if v is not None
        }
        direct = self._direct_route()
        if direct is not None:
            if self.logger.isEnabledFor(level):
                try:
                    direct.write(level, self.run_id, repository, message, values)
                    return
                except Exception:  # left to logging's own error handling
                    pass
            else:
                return
        extra = {"run_id": self.run_id, "repository": repository, "fields": values}
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
            direct = self._direct_route()
            if direct is not None and self.logger.isEnabledFor(logging.INFO):
                try:
                    direct.write_downloaded(
                        self.run_id,
                        repo,
                        redact(event.url),
                        event.path,
                        event.bytes,
                        event.attempt,
                    )
                    return
                except Exception:  # left to logging's own error handling
                    pass
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
            how = "interrupted" if event.interrupted else "finished"
            self._log(
                logging.INFO if event.exit_code == 0 else logging.ERROR,
                f"run {how}: exit status {event.exit_code}, {event.files} files, "
                f"{event.bytes} bytes, {event.failures} failures",
                exit_code=event.exit_code, bytes=event.bytes,
            )  # fmt: skip
