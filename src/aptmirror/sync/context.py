"""What every stage of one run shares: settings, paths, the fetcher, failures, output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aptmirror.fetch.fetcher import Fetcher
from aptmirror.frozen import frozen
from aptmirror.model import Checksums, Settings
from aptmirror.observe.events import Emit, ignore
from aptmirror.storage.safety import DirGuard
from aptmirror.storage.treescan import LocalTree
from aptmirror.sync.jobs import RepoJob, local_root, suite_rel


@frozen
class Failure:
    """Something required that could not be had: the URL (or path) and why."""

    job: RepoJob | None
    target: str
    reason: str


@dataclass(slots=True)
class RunContext:
    settings: Settings
    fetcher: Fetcher
    out: TextIO
    stamp: str
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))  # injectable clock
    emit: Emit = field(default=ignore)  # observers: progress, logs, metrics, state
    _weak_warned: set[str] = field(default_factory=set)
    # the repository roots as find(1) listed them before planning (none: lstat each path)
    tree: LocalTree = field(default_factory=LocalTree)
    _guards: dict[str, DirGuard] = field(default_factory=dict)
    # by id(job): the jobs live as long as the run, and hashing one (all its fields, the
    # locations' too) took longer than working the root out, once per pool file
    _roots: dict[int, tuple[RepoJob, str]] = field(default_factory=dict)

    @property
    def mirror(self) -> Path:
        return Path(self.settings.mirror_path)

    @property
    def skel(self) -> Path:
        return Path(self.settings.skel_path)

    @property
    def var(self) -> Path:
        return Path(self.settings.var_path)

    def local_root(self, job: RepoJob) -> str:
        """Repository root relative to mirror_path/skel_path (host[:port]/path, or the
        repository's ``mirror_path``). Asked once per pool file: worked out once per job."""
        found = self._roots.get(id(job))
        if found is None or found[0] is not job:
            found = self._roots[id(job)] = (job, local_root(job, self.settings.tilde))
        return found[1]

    def suite_rel(self, job: RepoJob) -> str:
        """Suite directory (or flat directory) relative to mirror_path/skel_path."""
        return suite_rel(job, self.settings.tilde)

    def guard(self, job: RepoJob) -> DirGuard:
        """Checks that pool destinations of ``job`` stay inside its repository root."""
        root = self.local_root(job)
        if root not in self._guards:
            self._guards[root] = DirGuard(self.mirror / root, self.tree)
        return self._guards[root]

    def note_hash_strength(
        self, job: RepoJob, path: str, strongest: tuple[str, str] | None
    ) -> None:
        """Warn (once per suite and run) when a pool file is listed with MD5/SHA1 only
        (``strongest``: its :meth:`Checksums.strongest`)."""
        weak = strongest is not None and strongest[0] in ("SHA1", "MD5Sum")
        if weak and job.name not in self._weak_warned:
            self._weak_warned.add(job.name)
            self.warn(
                f"{job.name}: pool files listed with MD5/SHA1 only (e.g. {path}); "
                "they are checked with that weaker hash"
            )

    def pool_checksums(self, checksums: Checksums) -> Checksums:
        """What a pool file is checked against: every declared hash (the strongest decides
        a match), or its size only with ``verify_checksums off`` (warned once per run)."""
        if self.settings.verify_checksums:
            return checksums
        if "" not in self._weak_warned:
            self._weak_warned.add("")
            self.warn("verify_checksums off: pool files are checked by size only")
        return Checksums(checksums.size)

    def fail(self, job: RepoJob | None, target: str, reason: str) -> None:
        self.failures.append(Failure(job, target, reason))

    def failed(self, job: RepoJob) -> bool:
        return any(f.job is job for f in self.failures)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.say(f"Warning: {text}")
