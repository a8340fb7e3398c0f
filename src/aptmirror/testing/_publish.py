"""Write the index tree of a sample repository and sign its Release.

Order follows a real archive's publish: every index (atomically replaced, so old by-hash hard
links keep their bytes), then by-hash objects, then ``Release``, then ``InRelease`` and
``Release.gpg``. Private to ``aptmirror.testing``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aptmirror.frozen import frozen

from . import _indexes as ix
from ._archive import (
    RELEASE_HASHES,
    Digest,
    atomic_write,
    compress,
    digest,
    hash_list,
    release_date,
    stanza,
)
from .gpgkey import TestKey, sign_release

if TYPE_CHECKING:
    from ._repomodel import RepoOptions


_MAX_ICONS = 100  # real icon tarballs cover only the packages that ship desktop apps


@frozen
class PublishResult:
    """Paths relative to the repository root, the Release path, digests by Release name.

    ``indexes`` were written (and are listed); ``listed_only`` are listed, not written.
    """

    indexes: list[str]
    listed_only: list[str]
    by_hash: list[str]
    release: Path
    digests: dict[str, Digest]


class _Writer:
    """Writes files under a dist directory and remembers each one's digest.

    ``list_plain``: like Debian's archive, list the uncompressed variant of every compressed
    index in the Release even when it is not written (apt only acquires an index whose
    uncompressed name the Release lists).
    """

    def __init__(self, dist: Path, list_plain: bool) -> None:
        self.dist = dist
        self.list_plain = list_plain
        self.files: dict[str, Digest] = {}  # written (and listed)
        self.listed_only: dict[str, Digest] = {}  # listed in Release, not written

    def put(self, rel: str, data: bytes) -> None:
        atomic_write(self.dist / rel, data)
        self.files[rel] = digest(data)
        self.listed_only.pop(rel, None)

    def put_variants(self, rel: str, data: bytes, exts: Sequence[str]) -> None:
        for ext in exts:
            self.put(rel + ext, compress(data, ext))
        if self.list_plain and "" not in exts:
            self.listed_only[rel] = digest(data)
            (self.dist / rel).unlink(missing_ok=True)

    @property
    def listed(self) -> dict[str, Digest]:
        return {**self.files, **self.listed_only}


def _binary_arches(opts: RepoOptions) -> list[str]:
    return [*opts.arches, "all"] if opts.binary_all else list(opts.arches)


def _for_arch(bins: Sequence[ix.BinaryEntry], arch: str) -> list[ix.BinaryEntry]:
    if arch == "all":
        return [b for b in bins if b.control.arch == "all"]
    return [b for b in bins if b.control.arch in (arch, "all")]


def _write_component(
    w: _Writer,
    opts: RepoOptions,
    comp: str,
    bins: Sequence[ix.BinaryEntry],
    srcs: Sequence[ix.SourceEntry],
) -> None:
    cbins = [b for b in bins if b.component == comp]
    gz = (".gz",)
    rel_kw = {"suite": opts.suite, "origin": opts.origin, "label": opts.label}
    for arch in _binary_arches(opts):
        d = f"{comp}/binary-{arch}"
        w.put_variants(f"{d}/Packages", ix.packages_text(_for_arch(cbins, arch)), opts.compressions)
        w.put(
            f"{d}/Release",
            ix.component_release(**rel_kw, component=comp, arch=arch, by_hash=opts.by_hash),
        )
        if opts.contents:
            w.put_variants(f"{comp}/Contents-{arch}", ix.contents_text(_for_arch(cbins, arch)), gz)
    if opts.sources:
        text = ix.sources_text(
            [s for s in srcs if s.component == comp], with_files=not opts.sources_without_files
        )
        w.put_variants(f"{comp}/source/Sources", text, opts.compressions)
        w.put(
            f"{comp}/source/Release",
            ix.component_release(**rel_kw, component=comp, arch="source", by_hash=opts.by_hash),
        )
    if opts.translations:
        w.put_variants(
            f"{comp}/i18n/Translation-en", ix.translation_text(cbins, "en"), (".bz2", ".xz")
        )
        w.put_variants(f"{comp}/i18n/Translation-de", ix.translation_text(cbins, "de"), (".bz2",))
    if opts.dep11:
        origin = f"{opts.origin}-{opts.codename}-{comp}"
        for arch in opts.arches:
            yml = ix.dep11_components(_for_arch(cbins, arch), origin)
            w.put_variants(f"{comp}/dep11/Components-{arch}.yml", yml, gz)
        names = sorted({b.control.name for b in cbins})[:_MAX_ICONS]
        w.put(f"{comp}/dep11/icons-64x64.tar.gz", ix.icons_tarball(names, 64))
        w.put(f"{comp}/dep11/icons-64x64@2.tar.gz", ix.icons_tarball(names, 128))
    if opts.cnf:
        for arch in opts.arches:
            cmds = ix.cnf_commands(_for_arch(cbins, arch), opts.suite, comp, arch)
            w.put_variants(f"{comp}/cnf/Commands-{arch}", cmds, (".xz",))


def _write_by_hash(w: _Writer, opts: RepoOptions) -> list[Path]:
    """Hard-link each index (not the small Release files) into ``<dir>/by-hash/<Field>/``."""
    made = []
    for rel, d in w.files.items():
        if rel.endswith("/Release"):
            continue
        src = w.dist / rel
        for field in opts.release_hashes:
            target = src.parent / "by-hash" / field / d.hashes[RELEASE_HASHES[field]]
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(src, target)
            made.append(target)
    return made


def _release_text(opts: RepoOptions, files: dict[str, Digest], date: datetime) -> bytes:
    fields = [("Origin", opts.origin), ("Label", opts.label)]
    if not opts.flat:
        fields += [("Suite", opts.suite), ("Codename", opts.codename)]
    elif opts.flat_dir.strip("/") not in ("", "."):
        # apt compares "deb URI dir/" against Suite/Codename with the trailing "/" cut off.
        fields.append(("Suite", opts.flat_dir.strip("/")))
    fields.append(("Date", release_date(date)))
    if opts.valid_until is not None:
        fields.append(("Valid-Until", release_date(opts.valid_until)))
    if opts.flat:
        fields.append(("Architectures", " ".join(opts.arches)))
    else:
        arches = ["all", *opts.arches] if opts.binary_all else list(opts.arches)
        fields += [("Architectures", " ".join(arches)), ("Components", " ".join(opts.components))]
        if opts.binary_all:
            # Debian's signal that binary-ARCH still carries the Architecture: all packages.
            fields.append(("No-Support-for-Architecture-all", "Packages"))
        if opts.by_hash:
            fields.append(("Acquire-By-Hash", "yes"))
    fields.append(("Description", f"{opts.label} {opts.suite}"))
    rows = sorted(files.items())
    width = max((len(str(d.size)) for _, d in rows), default=1)
    for name in opts.release_hashes:
        fields.append((name, hash_list(rows, RELEASE_HASHES[name], max(width, 8))))
    return stanza(fields).rstrip("\n").encode() + b"\n"


def publish(
    root: Path,
    opts: RepoOptions,
    key: TestKey,
    bins: Sequence[ix.BinaryEntry],
    srcs: Sequence[ix.SourceEntry],
    date: datetime,
) -> PublishResult:
    """Write all indexes, by-hash objects, Release, InRelease and Release.gpg."""
    if opts.flat:
        dist = root / opts.flat_dir if opts.flat_dir.strip("/") not in ("", ".") else root
    else:
        dist = root / "dists" / opts.suite
    w = _Writer(dist, opts.list_uncompressed)
    if opts.flat:
        w.put_variants("Packages", ix.packages_text(bins), opts.compressions)
        if opts.sources:
            text = ix.sources_text(srcs, with_files=not opts.sources_without_files)
            w.put_variants("Sources", text, opts.compressions)
    else:
        for comp in opts.components:
            _write_component(w, opts, comp, bins, srcs)
        if opts.contents:
            for arch in _binary_arches(opts):
                text = ix.contents_text(_for_arch(bins, arch))
                w.put_variants(f"Contents-{arch}", text, (".gz",))
    by_hash = _write_by_hash(w, opts) if opts.by_hash else []
    release = dist / "Release"
    atomic_write(release, _release_text(opts, w.listed, date))
    inrelease, detached = sign_release(key, release)
    # Last-Modified = Date, as on a real archive. A client's If-Modified-Since then never
    # hides an update made within the same second (update_repo keeps Dates 1 s apart).
    stamp = date.timestamp()
    for path in (*(dist / rel for rel in w.files), release, inrelease, detached):
        os.utime(path, (stamp, stamp))
    if not opts.flat and opts.codename_symlink and opts.codename != opts.suite:
        link = root / "dists" / opts.codename
        if not link.is_symlink():
            link.symlink_to(opts.suite)
    rel = dist.relative_to(root)
    return PublishResult(
        indexes=[str(rel / name) for name in sorted(w.files)],
        listed_only=[str(rel / name) for name in sorted(w.listed_only)],
        by_hash=[str(p.relative_to(root)) for p in by_hash],
        release=release,
        digests=w.listed,
    )
