"""Group configuration lines into one job per (repository URI, suite). Pure.

The Perl tool fetches the same Release once per line; we merge all lines that name the same
URI and suite (e.g. one ``deb-amd64`` and one ``deb-i386`` line plus a ``deb-src`` line) so
each Release is fetched and verified once and the suite is published once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from aptmirror.config.mirrorpaths import mirror_path_overrides
from aptmirror.config.trust import Directive, gpg_verify_overrides, signed_by_values
from aptmirror.config.urls import sanitize_uri
from aptmirror.debian.selection import IndexFile, select_flat_indexes, select_indexes
from aptmirror.frozen import frozen
from aptmirror.model import Checksums, Config, Location, SourceLine, SourceType


@frozen
class RepoJob:
    """One suite of one repository, as everything in the config asks for it."""

    uri: str  # base URI with a trailing slash, credentials included
    dist: str
    components: tuple[str, ...]
    arches: tuple[str, ...]
    binary: bool
    source: bool
    signed_by: tuple[str, ...]  # keyring paths, or inline armoured key blocks
    locations: tuple[Location, ...]
    gpg_verify: Literal["on", "off"] | None = None  # per repository; None = the global setting
    # other upstream sources serving the same archive (base URIs ending in "/"): from a
    # ``mirror_source URI ALT…`` line or a deb822 ``URIs:`` list; the Release comes from
    # ``uri`` only, every other file may come from any of them (checked against it)
    mirrors: tuple[str, ...] = ()
    # where the repository is stored, relative to mirror_path/skel_path, from a
    # ``mirror_path URI PATH`` line or deb822 ``Mirror-Path:``; None = host[:port]/path.
    # Several repositories may share one (a merged tree).
    local_path: str | None = None
    # what each line asks for: (component, architecture) binaries and source components;
    # None = every component and architecture (a job made by hand)
    binary_pairs: tuple[tuple[str, str], ...] | None = None
    source_components: tuple[str, ...] | None = None

    @property
    def is_flat(self) -> bool:
        return not self.components

    @property
    def name(self) -> str:
        return f"{self.uri}{self.dist if self.is_flat else 'dists/' + self.dist}"

    def url(self, relpath: str) -> str:
        """URL of a path relative to the suite directory (or the flat directory)."""
        return f"{self.name.rstrip('/')}/{relpath}"

    def pool_url(self, relpath: str) -> str:
        return f"{self.uri}{relpath}"

    def alt_urls(self, url: str) -> tuple[str, ...]:
        """``url`` (under ``uri``) on every other source of the repository."""
        if not self.mirrors or not url.startswith(self.uri):
            return ()
        rest = url[len(self.uri) :]
        return tuple(m + rest for m in self.mirrors)


def job_indexes(job: RepoJob, files: Mapping[str, Checksums], *, contents: bool) -> list[IndexFile]:
    """The index files the config asks for of ``job``, from its Release's ``files``."""
    if job.is_flat:
        return select_flat_indexes(files, binary=job.binary, source=job.source)
    return select_indexes(
        files,
        job.components,
        job.arches,
        binary=job.binary,
        source=job.source,
        contents=contents,
        binary_pairs=job.binary_pairs,
        source_components=job.source_components,
    )


def local_root(job: RepoJob, tilde: bool) -> str:
    """Repository root relative to mirror_path/skel_path (host[:port]/path, or the
    repository's ``mirror_path``)."""
    if job.local_path is not None:
        return job.local_path
    return sanitize_uri(job.uri, tilde)


def repo_roots(config: Config) -> list[str]:
    """Every repository root of ``config``, spelt as planning spells its pool files'
    paths (``<mirror_path>/<local_root>/…``)."""
    s = config.settings
    mirror = os.fspath(Path(s.mirror_path))
    return [
        f"{mirror}/{local_root(j, s.tilde)}" for j in group_jobs(config.sources, config.directives)
    ]


def suite_rel(job: RepoJob, tilde: bool) -> str:
    """Suite directory (or flat directory) relative to mirror_path/skel_path."""
    root = local_root(job, tilde)
    if job.is_flat:
        flat = job.dist.strip("/")
        return root if flat in ("", ".") else f"{root}/{flat}"
    return f"{root}/dists/{job.dist.strip('/')}"


def _ordered_union(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def group_jobs(lines: Iterable[SourceLine], directives: Iterable[Directive] = ()) -> list[RepoJob]:
    """Merge lines by (URI, suite), keeping first-seen order. Each line still asks for its
    own components in its own architectures (``binary_pairs``, ``source_components``):
    the union of all components in all architectures would ask for more."""
    lines = list(lines)
    directives = list(directives)
    overrides = gpg_verify_overrides(lines, directives)
    paths, _ = mirror_path_overrides(lines, directives)
    grouped: dict[tuple[str, str], list[SourceLine]] = {}
    for line in lines:
        uri = line.uri if line.uri.endswith("/") else line.uri + "/"
        grouped.setdefault((uri, line.dist), []).append(line)
    jobs = []
    for (uri, dist), members in grouped.items():
        signed_by: list[str] = []
        for m in members:
            value = m.option("signed-by")
            if value:
                signed_by.extend(signed_by_values(value))
        binaries = [m for m in members if m.type is SourceType.BINARY]
        jobs.append(
            RepoJob(
                uri=uri,
                dist=dist,
                components=_ordered_union(c for m in members for c in m.components),
                arches=_ordered_union(a for m in binaries for a in m.arches),
                binary=bool(binaries),
                source=any(m.type is SourceType.SOURCE for m in members),
                signed_by=_ordered_union(signed_by),
                locations=tuple(m.location for m in members),
                gpg_verify=overrides.get(uri.rstrip("/")),
                mirrors=_mirrors(uri, members, directives),
                local_path=paths.get(uri),
                binary_pairs=tuple(
                    dict.fromkeys((c, a) for m in binaries for c in m.components for a in m.arches)
                ),
                source_components=_ordered_union(
                    c for m in members if m.type is SourceType.SOURCE for c in m.components
                ),
            )
        )
    return jobs


def _with_slash(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def _mirrors(
    uri: str, members: Iterable[SourceLine], directives: Iterable[Directive]
) -> tuple[str, ...]:
    """Alternative sources of ``uri``: ``mirror-sources`` options, ``mirror_source`` lines."""
    found: list[str] = []
    for m in members:
        found.extend((m.option("mirror-sources") or "").split())
    for keyword, args, _ in directives:
        if keyword == "mirror_source" and args and _with_slash(args[0]) == uri:
            found.extend(args[1:])
    return tuple(u for u in dict.fromkeys(_with_slash(f) for f in found) if u != uri)
