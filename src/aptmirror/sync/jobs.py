"""Group configuration lines into one job per (repository URI, suite). Pure.

The Perl tool fetches the same Release once per line; we merge all lines that name the same
URI and suite (e.g. one ``deb-amd64`` and one ``deb-i386`` line plus a ``deb-src`` line) so
each Release is fetched and verified once and the suite is published once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aptmirror.model import Location, SourceLine, SourceType


@dataclass(frozen=True, slots=True)
class RepoJob:
    """One suite of one repository, as everything in the config asks for it."""

    uri: str  # base URI with a trailing slash, credentials included
    dist: str
    components: tuple[str, ...]
    arches: tuple[str, ...]
    binary: bool
    source: bool
    signed_by: tuple[str, ...]
    locations: tuple[Location, ...]

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


def _ordered_union(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def group_jobs(lines: Iterable[SourceLine]) -> list[RepoJob]:
    """Merge lines by (URI, suite), keeping first-seen order."""
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
                signed_by.extend(v for v in value.split(",") if v)
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
            )
        )
    return jobs
