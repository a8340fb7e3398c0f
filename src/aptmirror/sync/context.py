"""What every stage of one run shares: settings, paths, the fetcher, failures, output."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aptmirror.config.urls import sanitize_uri
from aptmirror.fetch.fetcher import Fetcher
from aptmirror.model import Settings
from aptmirror.sync.jobs import RepoJob


@dataclass(frozen=True, slots=True)
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
        """Repository root relative to mirror_path/skel_path (host[:port]/path)."""
        return sanitize_uri(job.uri, self.settings.tilde)

    def suite_rel(self, job: RepoJob) -> str:
        """Suite directory (or flat directory) relative to mirror_path/skel_path."""
        root = self.local_root(job)
        if job.is_flat:
            flat = job.dist.strip("/")
            return root if flat in ("", ".") else f"{root}/{flat}"
        return f"{root}/dists/{job.dist.strip('/')}"

    def fail(self, job: RepoJob | None, target: str, reason: str) -> None:
        self.failures.append(Failure(job, target, reason))

    def failed(self, job: RepoJob) -> bool:
        return any(f.job is job for f in self.failures)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.say(f"Warning: {text}")
