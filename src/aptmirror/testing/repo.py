"""Sample Debian repository builder: a real, signed archive for tests, the demo and benchmarks.

One job: lay out a small archive under a root directory the way Debian's does — real ``.deb``
files from ``dpkg-deb`` in ``pool/``, ``dists/<suite>/`` with Packages/Sources in several
compressions, Contents, Translation, DEP-11, cnf, component ``Release`` files, ``by-hash``
copies, and a ``Release`` signed into ``InRelease`` and ``Release.gpg`` with a throwaway key —
or a flat repository. :func:`update_repo` publishes a new version of the archive the way a
real archive does (old pool files and by-hash objects stay).

Self-contained: stdlib plus the sibling ``aptmirror.testing`` modules only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from . import _indexes as ix
from ._archive import (
    RELEASE_HASHES,
    Digest,
    check_package_name,
    pool_dir,
    strip_epoch,
)
from ._debs import DebControl, build_deb, build_source
from ._publish import publish
from ._repomodel import (
    DEFAULT_PACKAGES,
    BuiltPackage,
    BuiltSource,
    PackageSpec,
    RepoInfo,
    RepoOptions,
    SourceFile,
    default_packages,
)
from .gpgkey import TestKey

_T = TypeVar("_T")
_R = TypeVar("_R")

__all__ = [
    "DEFAULT_PACKAGES",
    "BuiltPackage",
    "BuiltSource",
    "PackageSpec",
    "RepoInfo",
    "RepoOptions",
    "SourceFile",
    "build_repo",
    "bump_version",
    "default_packages",
    "update_repo",
]


def _control(spec: PackageSpec) -> DebControl:
    return DebControl(spec.name, spec.version, spec.arch, spec.source_name, spec.section, spec.size)


def _deb_path(opts: RepoOptions, spec: PackageSpec) -> str:
    base = f"{spec.name}_{strip_epoch(spec.version)}_{spec.arch}.deb"
    if opts.flat:
        return f"{_flat_prefix(opts)}{base}"
    return f"{pool_dir(spec.component, spec.source_name)}/{base}"


def _flat_prefix(opts: RepoOptions) -> str:
    d = opts.flat_dir.strip("/")
    return "" if d in ("", ".") else d + "/"


def _wanted(opts: RepoOptions, specs: Sequence[PackageSpec]) -> list[PackageSpec]:
    out = []
    for s in specs:
        check_package_name(s.name)
        if not opts.flat and s.component not in opts.components:
            continue
        if s.arch != "all" and s.arch not in opts.arches:
            continue
        out.append(s)
    return out


def _build_binaries(
    root: Path, opts: RepoOptions, specs: Sequence[PackageSpec], old: Sequence[BuiltPackage]
) -> list[ix.BinaryEntry]:
    reuse = {(b.spec, b.filename): b for b in old}

    def one(spec: PackageSpec) -> ix.BinaryEntry:
        rel = _deb_path(opts, spec)
        prev = reuse.get((spec, rel))
        path = root / rel
        if prev is not None and path.is_file() and path.stat().st_size == prev.size:
            d = Digest(prev.size, {"md5": prev.md5, "sha256": prev.sha256})
        else:
            d = build_deb(_control(spec), path, real=opts.real_debs)
        return ix.BinaryEntry(_control(spec), spec.component, rel, d)

    return _parallel(one, specs)


def _parallel(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Map in threads: dpkg-deb runs and file creation (slow on overlay filesystems) overlap."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(16, 4 * (os.cpu_count() or 1))) as pool:
        return list(pool.map(fn, items))


def _build_sources(
    root: Path, opts: RepoOptions, entries: Sequence[ix.BinaryEntry]
) -> list[ix.SourceEntry]:
    groups: dict[tuple[str, str, str], list[ix.BinaryEntry]] = {}
    for b in entries:
        groups.setdefault((b.component, b.control.source, b.control.version), []).append(b)

    def one(item: tuple[tuple[str, str, str], list[ix.BinaryEntry]]) -> ix.SourceEntry:
        (comp, src, ver), bins = item
        directory = (_flat_prefix(opts).rstrip("/") or ".") if opts.flat else pool_dir(comp, src)
        names = sorted({b.control.name for b in bins})
        archs = (["any"] if any(b.control.arch != "all" for b in bins) else []) + (
            ["all"] if any(b.control.arch == "all" for b in bins) else []
        )
        files = build_source(
            root / directory, src, ver, names, archs, max(b.control.size for b in bins)
        )
        section = min(bins, key=lambda b: b.control.name).control.section
        return ix.SourceEntry(
            src, ver, comp, directory, tuple(names), tuple(archs), section, files.files
        )

    return _parallel(one, sorted(groups.items()))


def _info(
    root: Path,
    opts: RepoOptions,
    key: TestKey,
    bins: Sequence[ix.BinaryEntry],
    srcs: Sequence[ix.SourceEntry],
    specs: Sequence[PackageSpec],
    date: datetime,
    old_by_hash: Sequence[str] = (),
) -> RepoInfo:
    result = publish(root, opts, key, bins, srcs if opts.sources else (), date)
    by_spec = dict(zip(specs, bins, strict=True))
    packages = [
        BuiltPackage(s, b.filename, b.digest.size, b.digest.sha256, b.digest.md5)
        for s, b in by_spec.items()
    ]
    sources = [
        BuiltSource(
            s.name,
            s.version,
            s.component,
            s.directory,
            tuple(SourceFile(n, d.size, d.md5, d.sha256) for n, d in s.files),
        )
        for s in srcs
    ]
    by_hash = sorted(set(old_by_hash) | set(result.by_hash))
    return RepoInfo(
        root,
        opts,
        packages,
        sources,
        result.indexes,
        result.listed_only,
        by_hash,
        result.release,
        key.fingerprint,
        key.keyring,
        date,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def build_repo(
    root: Path,
    key: TestKey,
    *,
    suite: str = "stable",
    codename: str = "bookworm",
    components: Sequence[str] = ("main", "contrib"),
    arches: Sequence[str] = ("amd64", "i386"),
    packages: Sequence[PackageSpec] | None = None,
    sources: bool = True,
    sources_without_files: bool = False,
    by_hash: bool = True,
    compressions: Sequence[str] = ("", ".gz", ".xz"),
    contents: bool = True,
    translations: bool = True,
    dep11: bool = True,
    cnf: bool = True,
    real_debs: bool = True,
    binary_all: bool = True,
    flat: bool = False,
    flat_dir: str = "flat",
    valid_until: datetime | None = None,
    date: datetime | None = None,
    origin: str = "aptmirror",
    label: str = "aptmirror test",
    release_hashes: Sequence[str] = ("MD5Sum", "SHA256"),
    codename_symlink: bool = False,
    list_uncompressed: bool = True,
) -> RepoInfo:
    """Build a signed repository under ``root`` and describe it.

    ``packages=None`` builds :data:`DEFAULT_PACKAGES`; specs whose component or architecture
    is not in ``components``/``arches`` are skipped. ``compressions`` says which variants of
    Packages/Sources are written ("" = uncompressed). The Release lists every file written
    and, with ``list_uncompressed`` (as Debian's archive does, and as apt requires to acquire
    an index at all), the uncompressed variant of each compressed index even when it is not
    written (see ``RepoInfo.listed_only``). ``flat=True`` writes a flat repository into
    ``root/<flat_dir>`` (``deb URI flat_dir/``); it can share ``root`` with a normal one.
    """
    for h in release_hashes:
        if h not in RELEASE_HASHES:
            raise ValueError(f"unknown Release hash field {h!r}")
    opts = RepoOptions(
        suite=suite,
        codename=codename,
        components=tuple(components),
        arches=tuple(arches),
        sources=sources,
        sources_without_files=sources_without_files,
        by_hash=by_hash and not flat,
        compressions=tuple(compressions),
        contents=contents,
        translations=translations,
        dep11=dep11,
        cnf=cnf,
        real_debs=real_debs,
        binary_all=binary_all,
        flat=flat,
        flat_dir=flat_dir,
        valid_until=valid_until,
        origin=origin,
        label=label,
        release_hashes=tuple(release_hashes),
        codename_symlink=codename_symlink,
        list_uncompressed=list_uncompressed,
    )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    specs = _wanted(opts, DEFAULT_PACKAGES if packages is None else packages)
    bins = _build_binaries(root, opts, specs, ())
    srcs = _build_sources(root, opts, bins) if sources else []
    return _info(root, opts, key, bins, srcs, specs, date or _now())


_BUMP_RE = re.compile(r"^(.*)\+upd(\d+)$")


def bump_version(version: str) -> str:
    """A strictly greater version: ``1.0-1`` → ``1.0-1+upd1`` → ``1.0-1+upd2``."""
    m = _BUMP_RE.match(version)
    return f"{m.group(1)}+upd{int(m.group(2)) + 1}" if m else f"{version}+upd1"


def update_repo(
    info: RepoInfo,
    key: TestKey,
    *,
    bump: Sequence[str] = (),
    add: Sequence[PackageSpec] = (),
    remove: Sequence[str] = (),
    date: datetime | None = None,
    valid_until: datetime | None = None,
) -> RepoInfo:
    """Publish a new version of the archive: new Date (at least 1 s later), new signature.

    ``bump`` names get a greater version (all their architectures), ``add`` specs are built,
    ``remove`` names disappear from the indexes and their pool files are deleted. Pool files
    of bumped packages and all by-hash objects stay, as in a real archive.
    """
    opts = info.options
    if valid_until is not None:
        opts = replace(opts, valid_until=valid_until)
    gone = set(remove)
    specs: list[PackageSpec] = []
    for b in info.packages:
        if b.spec.name in gone:
            continue
        specs.append(
            replace(b.spec, version=bump_version(b.spec.version)) if b.spec.name in bump else b.spec
        )
    specs += _wanted(opts, add)
    bins = _build_binaries(info.root, opts, specs, info.packages)
    srcs = _build_sources(info.root, opts, bins) if opts.sources else []
    _delete_removed(info, gone, bins, srcs)
    new_date = date or max(_now(), info.date + timedelta(seconds=1))
    return _info(info.root, opts, key, bins, srcs, specs, new_date, info.by_hash)


def _delete_removed(
    info: RepoInfo,
    gone: set[str],
    bins: Sequence[ix.BinaryEntry],
    srcs: Sequence[ix.SourceEntry],
) -> None:
    keep = {b.filename for b in bins}
    keep |= {f"{s.directory}/{n}" for s in srcs for n, _ in s.files}
    for b in info.packages:
        if b.spec.name in gone and b.filename not in keep:
            (info.root / b.filename).unlink(missing_ok=True)
    live_sources = {(s.component, s.name) for s in srcs}
    for s in info.sources:
        if (s.component, s.name) in live_sources:
            continue
        for f in s.files:
            rel = f"{s.directory}/{f.name}"
            if rel not in keep:
                (info.root / rel).unlink(missing_ok=True)
