"""Re-check a published mirror against its own signed Release files (``apt-mirror verify``).

For every (repository, suite) of the configuration: the published ``InRelease``/``Release``
are verified with gpgv and the same keyrings a run uses; every index the configuration
selects that the Release lists and the mirror holds is checked (size and strongest hash; a
required index with no variant at all is *missing*); every pool file named by the verified
``Packages``/``Sources`` is checked (size and SHA256, or the strongest hash listed). Files
under a repository's ``pool/`` that no verified index names are reported as *extra* (waiting
for clean-up; not an error). No network access and no writes except the report; repairing
is the caller's job (remove what is corrupt, then run the normal pipeline).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from aptmirror.debian.paths import by_hash_path, split_compression
from aptmirror.debian.release import Release, parse_release
from aptmirror.debian.selection import (
    IndexFile,
    group_variants,
)
from aptmirror.errors import FormatError, SignatureError
from aptmirror.fetch.body import file_digest
from aptmirror.frozen import frozen
from aptmirror.model import Checksums, Config
from aptmirror.sync.jobs import RepoJob, group_jobs, job_indexes, local_root, suite_rel
from aptmirror.sync.pool import pool_records
from aptmirror.sync.release import RELEASE_FILES, gpg_check_enabled, verify_release_files


@frozen
class Problem:
    path: str  # relative to mirror_path
    reason: str


@dataclass(slots=True)
class VerifyReport:
    """What ``apt-mirror verify`` found; paths are relative to ``mirror_path``."""

    mirror_path: str
    checked: int = 0
    suites: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    corrupt: list[Problem] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)  # a whole suite could not be checked

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.errors)

    def to_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "mirror_path": self.mirror_path,
            "checked": self.checked,
            "suites": self.suites,
            "missing": sorted(self.missing),
            "corrupt": [{"path": p.path, "reason": p.reason} for p in self.corrupt],
            "extra": sorted(self.extra),
            "errors": [{"suite": p.path, "reason": p.reason} for p in self.errors],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        os.replace(tmp, path)

    def summary(self) -> str:
        lines = [
            f"Verified {self.checked} files in {len(self.suites)} suites: "
            f"{len(self.missing)} missing, {len(self.corrupt)} corrupt, "
            f"{len(self.extra)} extra (unreferenced), {len(self.errors)} suite error(s)."
        ]
        lines += [f"  ERROR {p.path}: {p.reason}" for p in self.errors]
        lines += [f"  MISSING {p}" for p in sorted(self.missing)]
        lines += [f"  CORRUPT {p.path}: {p.reason}" for p in self.corrupt]
        return "\n".join(lines)


def file_problem(path: Path, expected: Checksums) -> str | None:
    """None when ``path`` is a regular file with the declared size and hash; else why not."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return "missing"
    if not os.path.isfile(path) or os.path.islink(path):
        return "not a regular file"
    if st.st_size != expected.size:
        return f"size {st.st_size} != expected {expected.size}"
    sha256 = expected.get("SHA256")
    choice = ("SHA256", sha256) if sha256 else expected.strongest()
    if choice is None:
        return None
    name, digest = choice
    got = file_digest(path, name)
    return None if got == digest else f"{name} mismatch: got {got}"


@dataclass(slots=True)
class _Auditor:
    config: Config
    report: VerifyReport
    pool: dict[str, Checksums] = field(default_factory=dict)  # relpath -> expected
    roots: dict[str, bool] = field(default_factory=dict)  # root -> all its suites trusted

    @property
    def mirror(self) -> Path:
        return Path(self.config.settings.mirror_path)

    def release(self, job: RepoJob, rel: str) -> Release | None:
        suite = self.mirror / rel
        data: dict[str, bytes] = {}
        for name in RELEASE_FILES:
            if (suite / name).is_file():
                data[name] = (suite / name).read_bytes()
        if not data:
            self.report.missing.append(f"{rel}/InRelease")
            self.report.errors.append(Problem(rel, "no Release file is published"))
            return None
        try:
            checked = verify_release_files(self.config.settings, job, data)
            release = parse_release(checked.text.decode("utf-8", errors="replace"))
        except (SignatureError, FormatError) as exc:
            self.report.errors.append(Problem(rel, str(exc)))
            return None
        self.report.checked += len(data)
        for name in checked.drop:
            self.report.corrupt.append(Problem(f"{rel}/{name}", "unsigned and not InRelease"))
        signer = checked.fingerprint or "not checked (gpg_verify off)"
        self.report.suites.append({"suite": rel, "signed_by": signer})
        return release

    def indexes(self, job: RepoJob, rel: str, release: Release) -> list[tuple[str, Path]]:
        """Check the selected indexes; return the parseable ones that are intact."""
        chosen = job_indexes(job, release.files, contents=self.config.settings.contents)
        parseable: list[tuple[str, Path]] = []
        for base, variants in group_variants(chosen).items():
            present = [v for v in variants if os.path.lexists(self.mirror / rel / v.path)]
            if not present:
                if any(v.required for v in variants):
                    self.report.missing.append(f"{rel}/{variants[0].path}")
                continue
            good = [v for v in present if self._index_ok(rel, v)]
            if release.acquire_by_hash:
                for v in good:
                    self._by_hash(rel, v)
            if good and good[0].kind in ("packages", "sources"):
                best = sorted(good, key=lambda v: split_compression(v.path)[1] != "")[0]
                parseable.append((best.kind, self.mirror / rel / best.path))
            elif not good and any(v.required for v in variants):
                self.report.errors.append(Problem(f"{rel}/{base}", "no intact variant"))
        return parseable

    def _index_ok(self, rel: str, item: IndexFile) -> bool:
        self.report.checked += 1
        problem = file_problem(self.mirror / rel / item.path, item.checksums)
        if problem is not None:
            self.report.corrupt.append(Problem(f"{rel}/{item.path}", problem))
        return problem is None

    def _by_hash(self, rel: str, item: IndexFile) -> None:
        """apt fetches ``by-hash/`` names when the Release offers them: they must be there."""
        canonical = os.stat(self.mirror / rel / item.path)
        for name, digest in item.checksums.hashes:
            target = f"{rel}/{by_hash_path(item.path, name, digest)}"
            try:
                st = os.stat(self.mirror / target, follow_symlinks=False)
            except FileNotFoundError:
                self.report.missing.append(target)
                continue
            if (st.st_dev, st.st_ino) == (canonical.st_dev, canonical.st_ino):
                continue  # a hard link of the index just checked
            self.report.checked += 1
            problem = file_problem(self.mirror / target, item.checksums)
            if problem is not None:
                self.report.corrupt.append(Problem(target, problem))

    def plan_pool(self, job: RepoJob, rel: str, parseable: list[tuple[str, Path]]) -> None:
        root = local_root(job, self.config.settings.tilde)
        for kind, path in parseable:
            try:
                for pf in pool_records(kind, path):
                    self.pool.setdefault(f"{root}/{pf.path}", pf.checksums)
            except FormatError as exc:
                self.report.errors.append(Problem(f"{rel}/{path.name}", str(exc)))
                self.roots[root] = False

    def check_pool(self) -> None:
        items = sorted(self.pool.items())
        workers = max(1, min(8, self.config.settings.nthreads))
        with ThreadPoolExecutor(max_workers=workers) as ex:
            results = ex.map(lambda kv: file_problem(self.mirror / kv[0], kv[1]), items)
            for (relpath, _), problem in zip(items, results, strict=True):
                self.report.checked += 1
                if problem == "missing":
                    self.report.missing.append(relpath)
                elif problem is not None:
                    self.report.corrupt.append(Problem(relpath, problem))

    def find_extra(self) -> None:
        for root, trusted in self.roots.items():
            pool = self.mirror / root / "pool"
            if not trusted or not pool.is_dir():
                continue
            for dirpath, _dirs, names in os.walk(pool):
                for name in names:
                    relpath = (Path(dirpath) / name).relative_to(self.mirror).as_posix()
                    if relpath not in self.pool:
                        self.report.extra.append(relpath)


def verify_mirror(config: Config, out: TextIO) -> VerifyReport:
    """Check every configured suite of the published mirror; print progress to ``out``."""
    s = config.settings
    audit = _Auditor(config, VerifyReport(os.path.abspath(s.mirror_path)))
    for job in group_jobs(config.sources, config.directives):
        rel = suite_rel(job, s.tilde)
        root = local_root(job, s.tilde)
        audit.roots.setdefault(root, not job.is_flat)
        note = "" if gpg_check_enabled(s, job) else " (signature not checked: gpg_verify off)"
        print(f"Checking {rel}{note}", file=out, flush=True)
        release = audit.release(job, rel)
        if release is None:
            audit.roots[root] = False
            continue
        audit.plan_pool(job, rel, audit.indexes(job, rel, release))
    audit.check_pool()
    audit.find_extra()
    return audit.report


def remove_corrupt(report: VerifyReport, mirror: Path) -> list[Path]:
    """Delete corrupt *pool* files so the next run downloads them again.

    Corrupt indexes and Release files need no deletion: a run re-checks them in skel/ by
    hash and republishes the suite when they differ.
    """
    removed: list[Path] = []
    for problem in report.corrupt:
        if "/dists/" in f"/{problem.path}":
            continue
        path = mirror / problem.path
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed
