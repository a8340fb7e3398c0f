"""Prometheus metrics of the mirror: history from the state DB plus the live run.

:class:`MirrorCollector` is a prometheus-client collector; the same registry is what a web
server can expose at ``/metrics``. :class:`TextfileWriter` writes it in node_exporter's
textfile format (prometheus-client writes a temporary file and renames it: atomic) when a
run starts and ends, and every ``interval`` seconds in between (:meth:`tick`).

History is read from the database only on the event loop's thread (at RunStarted and
RunFinished) and cached, so the ticker thread never touches SQLite.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aptmirror.errors import StorageError
from aptmirror.frozen import frozen
from aptmirror.observe.events import Event, RunFinished, RunStarted
from aptmirror.observe.tracker import RunTracker
from aptmirror.state.db import StateDB


@frozen
class SuiteHistory:
    repository: str
    suite: str
    last_success: float | None
    last_duration: float | None
    last_status: str | None


@dataclass(slots=True)
class History:
    """What earlier runs (all of them, once the current one is recorded) add up to."""

    runs: int = 0
    files: int = 0
    bytes: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    suites: list[SuiteHistory] = field(default_factory=list)

    @classmethod
    def load(cls, db: StateDB, exclude_run: int | None) -> History:
        totals = db.totals(exclude_run)
        suites = []
        for repo, suite in db.suites():
            last = db.repo_history(repo, suite, 1)
            suites.append(
                SuiteHistory(
                    repo,
                    suite,
                    db.last_success(repo, suite),
                    last[0].duration if last else None,
                    last[0].status if last else None,
                )
            )
        return cls(
            totals.runs, totals.files, totals.bytes, db.failures_by_kind(exclude_run), suites
        )


class MirrorCollector(Collector):
    """aptmirror_* metrics: history (cached) + the run in progress (from the tracker)."""

    def __init__(self, tracker: RunTracker, history: History | None = None) -> None:
        self.tracker = tracker
        self.history = history or History()
        self.include_live = True  # False once the finished run is part of the history

    def collect(self) -> Iterator[Metric]:
        h = self.history
        files, nbytes, failures, finished = self.tracker.totals()
        live = self.include_live and self.tracker.started is not None
        runs = h.runs + (1 if live and finished is not None else 0)
        yield _counter("aptmirror_runs", "Mirror runs (finished or interrupted)", runs)
        yield _counter(
            "aptmirror_downloaded_bytes", "Bytes downloaded", h.bytes + (nbytes if live else 0)
        )
        yield _counter(
            "aptmirror_downloaded_files", "Files downloaded", h.files + (files if live else 0)
        )
        fail = CounterMetricFamily(
            "aptmirror_failures", "Required downloads or checks that failed", labels=["reason"]
        )
        merged = dict(h.failures)
        for kind, n in failures.items() if live else ():
            merged[kind] = merged.get(kind, 0) + n
        for kind, n in sorted(merged.items()):
            fail.add_metric([kind], n)
        yield fail
        yield from self._suites()
        yield from self._progress(finished)

    def _suites(self) -> Iterator[Metric]:
        labels = ["repository", "suite"]
        success = GaugeMetricFamily(
            "aptmirror_last_success_timestamp_seconds",
            "When the suite was last updated completely (Unix time)",
            labels=labels,
        )
        duration = GaugeMetricFamily(
            "aptmirror_last_run_duration_seconds",
            "Time from run start to the suite's result in its last run",
            labels=labels,
        )
        ok = GaugeMetricFamily(
            "aptmirror_last_run_success", "1 if the suite's last run succeeded", labels=labels
        )
        for s in self.history.suites:
            if s.last_success is not None:
                success.add_metric([s.repository, s.suite], s.last_success)
            if s.last_duration is not None:
                duration.add_metric([s.repository, s.suite], s.last_duration)
            if s.last_status is not None:
                ok.add_metric([s.repository, s.suite], 1.0 if s.last_status == "ok" else 0.0)
        yield success
        yield duration
        yield ok

    def _progress(self, finished: RunFinished | None) -> Iterator[Metric]:
        running = self.tracker.started is not None and finished is None
        yield GaugeMetricFamily(
            "aptmirror_run_in_progress", "1 while a run is in progress", value=1 if running else 0
        )
        if self.tracker.started is not None:
            yield GaugeMetricFamily(
                "aptmirror_run_start_timestamp_seconds",
                "Start of the current (or last) run",
                value=self.tracker.started,
            )
        view = self.tracker.current() if running else None
        stage = GaugeMetricFamily(
            "aptmirror_run_stage", "1 for the stage running now", labels=["stage"]
        )
        if view is not None:
            stage.add_metric([view.stage], 1)
        yield stage
        values = {
            "files_done": view.files_done if view else 0,
            "files_total": view.files_total if view else 0,
            "bytes_done": view.bytes_done if view else 0,
            "bytes_total": view.bytes_total if view else 0,
        }
        for name, value in values.items():
            yield GaugeMetricFamily(
                f"aptmirror_run_stage_{name}", f"Current stage: {name.replace('_', ' ')}",
                value=value,
            )  # fmt: skip
        yield GaugeMetricFamily(
            "aptmirror_run_speed_bytes_per_second",
            "Current download speed",
            value=view.speed if view else 0.0,
        )


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


class TextfileWriter:
    """Subscriber writing ``path`` at run start, every ``interval`` s (:meth:`tick`) and at
    run end. Must be subscribed after the state recorder (it reloads the history then)."""

    def __init__(
        self,
        path: Path,
        collector: MirrorCollector,
        *,
        db: StateDB | None = None,
        run_pk: Callable[[], int | None] = lambda: None,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        warn: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.path = path
        self.collector = collector
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.db = db
        self.run_pk = run_pk
        self.interval = interval
        self.clock = clock
        self.warn = warn
        self._last = clock()
        self._lock = threading.Lock()
        self._failed = False

    handles = frozenset({RunStarted, RunFinished})

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._reload(self.run_pk())
            self.write()
        elif isinstance(event, RunFinished):
            if self.db is not None:
                self._reload(None)
                self.collector.include_live = False
            self.write()

    def _reload(self, exclude: int | None) -> None:
        if self.db is None:
            return
        try:
            self.collector.history = History.load(self.db, exclude)
        except StorageError as exc:
            self.warn(f"metrics: cannot read the state database: {exc}")

    def tick(self) -> None:
        """Rewrite the file when ``interval`` seconds have passed since the last write."""
        if self.interval > 0 and self.clock() - self._last >= self.interval:
            self.write()

    def write(self) -> None:
        with self._lock:
            self._last = self.clock()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_to_textfile(str(self.path), self.registry)
            except OSError as exc:
                if not self._failed:  # once per run, not every interval
                    self.warn(f"cannot write metrics_textfile {self.path}: {exc}")
                self._failed = True
