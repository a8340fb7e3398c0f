"""Wire the observers of one run: the state DB, logs, metrics, the JSON report, progress.

Usage (cli.py)::

    with ObservedRun(config, sys.stdout) as obs:
        summary = asyncio.run(run_mirror(config, obs.out, obs.bus.emit, obs.run_id))
        env = obs.hook_env()

``obs.out`` is what the run prints its console lines to: they reach the terminal unchanged
(above the live display on a terminal) and the logs as Message events. A ticker thread
rewrites the metrics file and the plain progress line on their intervals, also while no
event comes (a stalled transfer). An observer that cannot start (unwritable log file, bad
database) is reported on stderr and left out; the mirror run goes on.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TextIO

from aptmirror.config.observe import ObserveSettings, observe_settings
from aptmirror.errors import StorageError
from aptmirror.model import Config
from aptmirror.observe.events import Emit, EventBus, Message
from aptmirror.observe.logs import LogSubscriber, build_logger
from aptmirror.observe.progress import PlainProgress
from aptmirror.observe.redact import redact
from aptmirror.observe.report import REPORT_NAME, ReportWriter
from aptmirror.observe.tracker import RunTracker
from aptmirror.state.db import DB_NAME, StateDB
from aptmirror.state.recorder import StateRecorder, classify_failure

if TYPE_CHECKING:  # rich and prometheus_client are imported only when used
    from aptmirror.observe.metrics import TextfileWriter
    from aptmirror.observe.progress_rich import RichProgress

TICK = 0.5  # seconds between ticker rounds


class _Ticking(Protocol):
    def tick(self) -> None: ...


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


def _level(line: str) -> str:
    text = line.lstrip()
    if text.startswith("Warning:"):
        return "warning"
    if text.startswith(("ERROR", "Not publishing")):
        return "error"
    return "info"


class ConsoleTee(io.TextIOBase):
    """The run's stdout: writes through unchanged, and each complete line becomes a
    :class:`Message` event. With a live display, lines are printed through it instead."""

    def __init__(self, out: TextIO, emit: Emit, rich: RichProgress | None = None) -> None:
        self._out = out
        self._emit = emit
        self._rich = rich
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        n = len(s)
        s = redact(s)
        with self._lock:
            if self._rich is None:
                self._out.write(s)
            self._partial += s
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if self._rich is not None:
                self._rich.print_line(line)
            self._emit(Message(line, _level(line)))
        return n

    def flush(self) -> None:
        if self._rich is None:
            self._out.flush()

    def isatty(self) -> bool:
        return self._out.isatty()


class ObservedRun:
    def __init__(
        self,
        config: Config,
        out: TextIO,
        err: TextIO | None = None,
        *,
        run_id: str | None = None,
        opts: ObserveSettings | None = None,
    ) -> None:
        self.config = config
        self.opts = opts or observe_settings(config)
        self.real_out = out
        self.err = err or sys.stderr
        self.run_id = run_id or new_run_id()
        self.bus = EventBus()
        self.tracker = RunTracker(classify=classify_failure)
        self.db: StateDB | None = None
        self.recorder: StateRecorder | None = None
        self.metrics: TextfileWriter | None = None
        self.progress: PlainProgress | RichProgress | None = None
        self.out: TextIO = out
        self.report_path = Path(config.settings.var_path) / REPORT_NAME
        self._handlers: list[logging.Handler] = []
        self._tickers: list[_Ticking] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def db_path(self) -> Path:
        return Path(self.config.settings.var_path) / DB_NAME

    def warn(self, text: str) -> None:
        print(f"apt-mirror: warning: {text}", file=self.err, flush=True)

    def __enter__(self) -> ObservedRun:
        s, opts = self.config.settings, self.opts
        var = Path(s.var_path)
        self.bus.subscribe(self.tracker)
        if opts.state_db:
            try:
                self.db = StateDB.open(self.db_path)
            except StorageError as exc:
                self.warn(f"run statistics are not recorded: {exc}")
        if self.db is not None:
            self.recorder = StateRecorder(
                self.db, mirror_path=Path(s.mirror_path), var_path=var, tilde=s.tilde
            )
            self.bus.subscribe(self.recorder)
        try:
            logger, self._handlers = build_logger(opts, var, self.warn)
            self.bus.subscribe(LogSubscriber(logger, s.tilde))
        except OSError as exc:
            self.warn(f"cannot open the log file: {exc}")
        if opts.metrics_textfile:
            from aptmirror.observe.metrics import MirrorCollector, TextfileWriter

            recorder = self.recorder
            self.metrics = TextfileWriter(
                Path(opts.metrics_textfile),
                MirrorCollector(self.tracker),
                db=self.db,
                run_pk=lambda: recorder.run_pk if recorder else None,
                interval=opts.metrics_interval,
                warn=self.warn,
            )
            self.bus.subscribe(self.metrics)  # after the recorder: it reads what it wrote
            self._tickers.append(self.metrics)
        self.bus.subscribe(ReportWriter(self.report_path, self.tracker))
        self._start_progress()
        self._thread = threading.Thread(target=self._tick, name="aptmirror-ticker", daemon=True)
        self._thread.start()
        return self

    def _start_progress(self) -> None:
        mode = self.opts.progress
        if mode == "auto":
            mode = "rich" if self.real_out.isatty() else "plain"
        if mode == "rich":
            from rich.console import Console

            from aptmirror.observe.progress_rich import RichProgress

            rich = RichProgress(self.tracker, Console(file=self.real_out))
            self.progress = rich
            self.out = ConsoleTee(self.real_out, self.bus.emit, rich)  # type: ignore[assignment]
        else:
            if mode == "plain":
                self.progress = PlainProgress(
                    self.real_out, self.tracker, self.opts.progress_interval
                )
            self.out = ConsoleTee(self.real_out, self.bus.emit)  # type: ignore[assignment]
        if self.progress is not None:
            self.bus.subscribe(self.progress)
            self._tickers.append(self.progress)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            for ticker in self._tickers:
                try:
                    ticker.tick()
                except Exception as exc:  # never kill the thread over one observer
                    self.warn(f"progress/metrics update failed: {exc!r}")

    def hook_env(self) -> dict[str, str]:
        """What the post-mirror hook gets in addition to the run's counters."""
        env = {
            "APT_MIRROR_RUN_ID": self.run_id,
            "APT_MIRROR_REPORT": str(self.report_path.absolute()),
        }
        if self.db is not None:
            env["APT_MIRROR_STATE_DB"] = str(self.db_path.absolute())
        if self.opts.metrics_textfile:
            env["APT_MIRROR_METRICS_TEXTFILE"] = os.path.abspath(self.opts.metrics_textfile)
        if self.opts.log_file:
            env["APT_MIRROR_LOG_FILE"] = os.path.abspath(self.opts.log_file)
        return env

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.progress is not None:
            self.progress.close()
        for handler in self._handlers:
            logging.getLogger("aptmirror.run").removeHandler(handler)
            handler.close()
        if self.db is not None:
            self.db.close()
