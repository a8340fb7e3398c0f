"""Data types of the sample-repository builder: what to build and what was built.

Private module of ``aptmirror.testing``; the public names are re-exported by ``repo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aptmirror.frozen import frozen


@frozen
class PackageSpec:
    """A binary package to build. ``size`` is the approximate payload (≈ .deb size) in bytes."""

    name: str
    version: str
    arch: str
    component: str = "main"
    size: int = 2048
    section: str = "misc"
    source: str | None = None

    @property
    def source_name(self) -> str:
        return self.source or self.name


DEFAULT_PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec("hello", "2.10-3", "amd64"),
    PackageSpec("hello", "2.10-3", "i386"),
    PackageSpec("hello-doc", "2.10-3", "all", section="doc", source="hello"),
    PackageSpec("lib+plus", "1.0~rc1+dfsg-1", "amd64", section="libs"),
    PackageSpec("lib+plus", "1.0~rc1+dfsg-1", "i386", section="libs"),
    PackageSpec("epoch-tool", "1:0.9.1-2", "amd64", size=4096),
    PackageSpec("native-data", "20230101", "all", size=1024),
    PackageSpec("contrib-tool", "3.0+really2.9-1", "amd64", component="contrib"),
    PackageSpec("contrib-tool", "3.0+really2.9-1", "i386", component="contrib"),
    PackageSpec("contrib-data", "3.0+really2.9-1", "all", "contrib", source="contrib-tool"),
)


def default_packages() -> list[PackageSpec]:
    """The default package set: ``+``/``~``/epoch versions, ``all`` packages, ``lib+plus``."""
    return list(DEFAULT_PACKAGES)


@frozen
class BuiltPackage:
    """A binary package in the pool; ``filename`` is relative to the repository root."""

    spec: PackageSpec
    filename: str
    size: int
    sha256: str
    md5: str


@frozen
class SourceFile:
    """One file of a source package (``name`` relative to the source's directory)."""

    name: str
    size: int
    md5: str
    sha256: str


@frozen
class BuiltSource:
    """A source package in the pool; ``directory`` is relative to the repository root."""

    name: str
    version: str
    component: str
    directory: str
    files: tuple[SourceFile, ...]


@frozen
class RepoOptions:
    """Everything :func:`build_repo` was asked for, kept so :func:`update_repo` can redo it."""

    suite: str = "stable"
    codename: str = "bookworm"
    components: tuple[str, ...] = ("main", "contrib")
    arches: tuple[str, ...] = ("amd64", "i386")
    sources: bool = True
    sources_without_files: bool = False
    by_hash: bool = True
    compressions: tuple[str, ...] = ("", ".gz", ".xz")
    contents: bool = True
    translations: bool = True
    dep11: bool = True
    cnf: bool = True
    real_debs: bool = True
    binary_all: bool = True
    flat: bool = False
    flat_dir: str = "flat"
    valid_until: datetime | None = None
    origin: str = "aptmirror"
    label: str = "aptmirror test"
    release_hashes: tuple[str, ...] = ("MD5Sum", "SHA256")
    codename_symlink: bool = False
    list_uncompressed: bool = True


@dataclass
class RepoInfo:
    """What was built: where, which packages, and which index files the Release lists."""

    root: Path
    options: RepoOptions
    packages: list[BuiltPackage]
    sources: list[BuiltSource]
    indexes: list[str]  # index files written (all listed in Release), relative to root
    listed_only: list[str]  # listed in Release but not written (uncompressed variants)
    by_hash: list[str]  # by-hash objects written (relative to root), old ones included
    release: Path  # the Release file; InRelease and Release.gpg sit next to it
    fingerprint: str
    keyring: Path
    date: datetime

    @property
    def suite(self) -> str:
        return self.options.suite

    @property
    def codename(self) -> str:
        return self.options.codename

    @property
    def components(self) -> tuple[str, ...]:
        return self.options.components

    @property
    def arches(self) -> tuple[str, ...]:
        return self.options.arches

    @property
    def dist_dir(self) -> Path:
        """``root/dists/<suite>`` (or the flat directory)."""
        return self.release.parent

    @property
    def inrelease(self) -> Path:
        return self.release.with_name("InRelease")

    @property
    def release_gpg(self) -> Path:
        return self.release.with_name("Release.gpg")

    def package(self, name: str, arch: str | None = None) -> BuiltPackage:
        """The (first) built package called ``name`` (optionally of ``arch``)."""
        for p in self.packages:
            if p.spec.name == name and (arch is None or p.spec.arch == arch):
                return p
        raise KeyError(f"{name}:{arch}" if arch else name)

    def _line(self, kind: str, base_url: str, signed_by: Path | None) -> str:
        opts = f"[signed-by={signed_by or self.keyring}] "
        base = base_url if base_url.endswith("/") else base_url + "/"
        if self.options.flat:
            return f"{kind} {opts}{base} {self.options.flat_dir.rstrip('/')}/"
        return f"{kind} {opts}{base} {self.suite} {' '.join(self.components)}"

    def deb_line(self, base_url: str, signed_by: Path | None = None) -> str:
        """A sources.list ``deb`` line for this repository served at ``base_url``."""
        return self._line("deb", base_url, signed_by)

    def deb_src_line(self, base_url: str, signed_by: Path | None = None) -> str:
        """A sources.list ``deb-src`` line for this repository served at ``base_url``."""
        return self._line("deb-src", base_url, signed_by)
