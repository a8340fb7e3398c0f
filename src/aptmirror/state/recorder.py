"""Subscriber that writes a run's events into the state database.

The run row is written when the run starts (so a killed run is visible, and marked
``interrupted`` by the next one), its download counters every ``flush_interval`` seconds,
and everything else in one transaction when it finishes: per (repository, suite) results,
failures, and the versions of the pool files of every published suite (from
``var/SHA256``, which the planner wrote: ``<sha256>  <path>`` per line).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aptmirror.observe.events import (
    Event,
    FileDone,
    FileStarted,
    RunFailure,
    RunFinished,
    RunStarted,
    SuitePublished,
    SuiteResult,
)
from aptmirror.observe.repos import RepoResolver
from aptmirror.state.db import FailureRow, FileVersion, RepoRun, StateDB

_STATUS_RE = re.compile(r"HTTP (\d{3})")


def classify_failure(reason: str) -> str:
    """A short, bounded label for a failure reason (a Prometheus label value)."""
    statuses = _STATUS_RE.findall(reason)
    if statuses:
        return f"http_{statuses[-1]}"
    text = reason.lower()
    for needle, kind in (
        ("too slow", "slow"),
        ("timeout", "timeout"),
        ("timed out", "timeout"),
        ("mismatch", "verification"),
        ("size", "verification"),
        ("signature", "signature"),
        ("gpg", "signature"),
        ("keyring", "signature"),
        ("connect", "connection"),
        ("unsafe path", "unsafe_path"),
    ):
        if needle in text:
            return kind
    return "other"


# Downloaded files whose size is remembered for the version records (≈ 5 MiB with their
# paths); the size of any other published file is read with an lstat at the end. Measured
# on a first mirror of 112,863 pool files: keeping them all held ≈ 17 MiB more (the paths
# come from the worker processes' reports, strings of their own) at the run's peak; an
# lstat costs ≈ 3 µs.
SIZES_KEPT = 32_768


@dataclass(slots=True)
class _Acc:
    files: int = 0
    bytes: int = 0
    first: float | None = None
    last: float | None = None

    def start(self, at: float) -> None:
        """A transfer started at ``at`` (the events may come out of order)."""
        self.first = at if self.first is None else min(self.first, at)

    @property
    def speed(self) -> float:
        if self.first is None or self.last is None or self.last <= self.first:
            return 0.0
        return self.bytes / (self.last - self.first)


@dataclass(slots=True)
class _Run:
    pk: int
    started: float
    resolver: RepoResolver
    files: int = 0
    bytes: int = 0
    acc: dict[tuple[str, str], _Acc] = field(default_factory=dict)
    published: dict[tuple[str, str], float] = field(default_factory=dict)
    results: list[SuiteResult] = field(default_factory=list)
    failures: list[FailureRow] = field(default_factory=list)
    # path as downloaded -> size, for the first SIZES_KEPT files: the versions recorded at
    # the end need no stat for them
    sizes: dict[str, int] = field(default_factory=dict)


def _fingerprint(var_sha256: Path, roots: set[str]) -> str:
    """What the recorded set depends on: the roots and ``var/SHA256``, read in pieces (it
    is a line per pool file: tens of MB for a whole Debian mirror)."""
    digest = hashlib.sha256("\0".join(sorted(roots)).encode())
    with open(var_sha256, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _published(var_sha256: Path, roots: set[str]) -> dict[str, str]:
    """path -> sha256 of the pool files of the published repositories, from ``var/SHA256``
    (``digest  path`` lines; the first line of a path counts), read line by line."""
    prefixes = tuple(root + "/" for root in roots)
    found: dict[str, str] = {}
    with open(var_sha256, encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
        for line in fh:
            digest, _, path = line.rstrip("\n").partition("  ")
            if path.startswith(prefixes) and path[0] != "/":
                found.setdefault(path, digest)
    return found


class StateRecorder:
    """``bus.subscribe(StateRecorder(db, ...))``."""

    def __init__(
        self,
        db: StateDB,
        *,
        mirror_path: Path,
        var_path: Path,
        tilde: bool = False,
        flush_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.mirror_path = mirror_path
        self.var_path = var_path
        self.tilde = tilde
        self.flush_interval = flush_interval
        self._clock = clock
        self._last_flush = clock()
        self._run: _Run | None = None

    @property
    def run_pk(self) -> int | None:
        return self._run.pk if self._run else None

    handles = frozenset(
        {RunStarted, FileStarted, FileDone, RunFailure, SuitePublished, SuiteResult, RunFinished}
    )

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            pk = self.db.begin_run(event.run_id, event.at, os.getpid())
            self._run = _Run(pk, event.at, RepoResolver(event.suites, self.tilde, event.sources))
            return
        run = self._run
        if run is None:
            return
        if isinstance(event, FileStarted):
            self._acc(run, event.url).start(event.at)
        elif isinstance(event, FileDone):
            acc = self._acc(run, event.url)
            if event.started is not None:  # no FileStarted came for it
                acc.start(event.started)
            acc.files += 1
            acc.bytes += event.bytes
            acc.last = event.at
            run.files += 1
            run.bytes += event.bytes
            if len(run.sizes) < SIZES_KEPT:
                run.sizes[event.path] = event.size
            if self._clock() - self._last_flush >= self.flush_interval:
                self._last_flush = self._clock()
                self.db.progress_run(run.pk, run.files, run.bytes)
        elif isinstance(event, RunFailure):
            kind = classify_failure(event.reason)
            run.failures.append(FailureRow(event.repository, event.target, kind, event.reason))
        elif isinstance(event, SuitePublished):
            run.published[(event.repository, event.suite)] = event.at
        elif isinstance(event, SuiteResult):
            run.results.append(event)
        elif isinstance(event, RunFinished):
            self._finish(run, event)
            self._run = None

    def _acc(self, run: _Run, url: str) -> _Acc:
        key = run.resolver.resolve(url) or ("", "")
        acc = run.acc.get(key)
        if acc is None:
            acc = run.acc[key] = _Acc()
        return acc

    def _finish(self, run: _Run, event: RunFinished) -> None:
        rows = []
        for res in run.results:
            acc = run.acc.get((res.repository, res.suite), _Acc())
            published_at = run.published.get((res.repository, res.suite))
            ok = res.published  # published now, or unchanged and complete
            last = event.at if ok else self.db.last_success(res.repository, res.suite)
            rows.append(
                RepoRun(
                    res.repository,
                    res.suite,
                    "ok" if ok else "failed",
                    duration=(published_at or res.at) - run.started,
                    files=acc.files,
                    bytes=acc.bytes,
                    errors=len(res.errors),
                    error_text="\n".join(res.errors[:20]),
                    avg_speed=acc.speed,
                    last_success=last,
                )
            )
        roots = {repo for repo, _ in run.published}
        if roots:
            self._record_versions(roots, event.at, run.sizes)
        self.db.finish_run(
            run.pk,
            ended=event.at,
            exit_code=event.exit_code,
            files=run.files,
            nbytes=run.bytes,
            repos=rows,
            failures=run.failures,
            interrupted=event.interrupted,
        )

    def _record_versions(self, roots: set[str], seen: float, sizes: dict[str, int]) -> None:
        """Record the published pool files; when the list (``var/SHA256``) and the roots
        are the same as last time, only refresh when they were last seen (a no-op run);
        after a run before, write only what changed (an update)."""
        # read twice when the set changed (hashed, then parsed): a no-op run stops after the
        # hash, and neither pass holds the whole listing in memory
        listing = self.var_path / "SHA256"
        try:
            fingerprint = _fingerprint(listing, roots)
        except OSError:
            return
        before = self.db.versions_state()
        if before is not None and before[0] == fingerprint:
            self.db.refresh_versions(fingerprint, seen)
            return
        try:
            found = _published(listing, roots)
        except OSError:
            return
        if before is not None:
            old = self.db.current_versions()
            now = set(found.items())
            fresh = self._with_sizes(sorted(now - old), sizes)  # in key order, as below
            self.db.advance_versions(fingerprint, seen, old - now, fresh)
        else:
            # in key order: SQLite then appends to the (path, sha256) index instead of
            # inserting all over it (54 instead of 72 ms for the benchmark's 15,054 rows)
            ordered = ((path, found[path]) for path in sorted(found))
            self.db.record_versions(self._with_sizes(ordered, sizes), seen, fingerprint)

    def _with_sizes(
        self, versions: Iterable[tuple[str, str]], downloaded: dict[str, int]
    ) -> Iterator[FileVersion]:
        """Each version with its file's size (of the download this run, else on disk);
        those not on disk are left out."""
        mirror = os.fspath(self.mirror_path)  # plain strings: this loop runs per pool file
        for path, digest in versions:
            full = f"{mirror}/{path}"
            size = downloaded.get(full)
            if size is None:
                try:
                    size = os.lstat(full).st_size
                except OSError:
                    continue
            yield FileVersion(path, size, digest)
