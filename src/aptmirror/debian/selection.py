"""Which index files of a suite to fetch, decided from its Release file alone.

One job: given the files a Release lists and the configured components/architectures, pick
the index files to mirror. Pure: no I/O, no guessing of names (the Perl apt-mirror guessed
``.gz/.bz2/.xz`` triples and missed ``binary-all``, ``Contents-all``, uncompressed-only
repositories and ``icons-*@2``): a file is fetched only if the Release lists it, and every
listed compression variant of a wanted index is taken, since apt clients may ask for any.

``required`` is True only for Packages/Sources variants. The rule for them is "at least one
variant of each base name must succeed"; this module does not enforce it, the caller does
(see :func:`group_variants`). Everything else is optional: a 404 is a value, not a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from aptmirror.debian.paths import split_compression
from aptmirror.frozen import frozen
from aptmirror.model import Checksums

__all__ = [
    "IndexFile",
    "IndexKind",
    "group_variants",
    "select_flat_indexes",
    "select_indexes",
    "unserved",
]

IndexKind = Literal[
    "packages",
    "sources",
    "release",
    "translation",
    "contents",
    "dep11",
    "cnf",
    "i18n-index",
    "other",
]


@frozen
class IndexFile:
    """One index file to fetch; ``path`` is relative to the Release's directory."""

    path: str
    checksums: Checksums
    kind: IndexKind
    required: bool


class _Chooser:
    """Collects chosen files; looks up compression variants through a by-base index."""

    def __init__(self, files: Mapping[str, Checksums]) -> None:
        self.files = files
        self.by_base: dict[str, list[str]] = {}
        for path in files:
            self.by_base.setdefault(split_compression(path)[0], []).append(path)
        self.chosen: dict[str, IndexFile] = {}

    def variants(self, base: str, kind: IndexKind) -> None:
        """Add every listed compression variant of ``base`` (including the plain file)."""
        required = kind in ("packages", "sources")
        for path in self.by_base.get(base, ()):
            self.chosen[path] = IndexFile(path, self.files[path], kind, required)

    def prefixed(self, prefix: str, kind: IndexKind) -> None:
        """Add every listed file named ``prefix*`` in the same directory (any suffix)."""
        for path, checksums in self.files.items():
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                self.chosen[path] = IndexFile(path, checksums, kind, False)

    def result(self) -> list[IndexFile]:
        return [self.chosen[path] for path in sorted(self.chosen)]


def select_indexes(
    release_files: Mapping[str, Checksums],
    components: Sequence[str],
    arches: Sequence[str],
    *,
    binary: bool,
    source: bool,
    contents: bool = True,
    udeb: bool = False,
    binary_pairs: Sequence[tuple[str, str]] | None = None,
    source_components: Sequence[str] | None = None,
) -> list[IndexFile]:
    """Index files of one suite to fetch, sorted by path.

    What is wanted: binaries of every component and architecture (``binary``) and sources of
    every component (``source``) — or, when given, binaries of just the (component,
    architecture) ``binary_pairs`` and sources of just ``source_components``: each config
    line asks for its own components and architectures (``deb-i386 … main`` beside
    ``deb … main contrib`` wants no contrib for i386, as in the Perl tool).

    Per component ``C`` (written as in the config; ``updates/main`` is a path prefix like
    any other) wanted as binaries, per architecture ``A`` wanted for it plus ``all``:
    ``C/binary-A/Packages*`` and ``C/binary-A/Release``, ``C/cnf/Commands-A*``,
    ``C/dep11/Components-A.yml*``, and with ``contents`` ``C/Contents-A*`` and the
    suite-level ``Contents-A*``; once per component ``C/i18n/Translation-*``,
    ``C/i18n/Index`` and ``C/dep11/icons-*``. With ``udeb`` also
    ``C/debian-installer/binary-A/Packages*`` (+ its Release, + ``Contents-udeb-A*``).
    Per component wanted as sources: ``C/source/Sources*``, ``C/source/Release`` and with
    ``contents`` ``C/Contents-source*`` and ``Contents-source*``.
    """
    if binary_pairs is None:
        binary_pairs = [(c, a) for c in components for a in arches or ("all",)] if binary else []
    if source_components is None:
        source_components = components if source else []
    binary_arches: dict[str, list[str]] = {}
    for component, arch in binary_pairs:
        binary_arches.setdefault(component, []).append(arch)
    choose = _Chooser(release_files)
    for component in dict.fromkeys([*binary_arches, *source_components]):
        c = component.strip("/")
        wanted = binary_arches.get(component)
        for arch in dict.fromkeys([*wanted, "all"]) if wanted is not None else ():
            choose.variants(f"{c}/binary-{arch}/Packages", "packages")
            choose.variants(f"{c}/binary-{arch}/Release", "release")
            choose.variants(f"{c}/cnf/Commands-{arch}", "cnf")
            choose.variants(f"{c}/dep11/Components-{arch}.yml", "dep11")
            if contents:
                choose.variants(f"{c}/Contents-{arch}", "contents")
                choose.variants(f"Contents-{arch}", "contents")
            if udeb:
                choose.variants(f"{c}/debian-installer/binary-{arch}/Packages", "packages")
                choose.variants(f"{c}/debian-installer/binary-{arch}/Release", "release")
                if contents:
                    choose.variants(f"{c}/Contents-udeb-{arch}", "contents")
                    choose.variants(f"Contents-udeb-{arch}", "contents")
        if wanted is not None:
            choose.prefixed(f"{c}/i18n/Translation-", "translation")
            choose.variants(f"{c}/i18n/Index", "i18n-index")
            choose.prefixed(f"{c}/dep11/icons-", "dep11")
        if component in source_components:
            choose.variants(f"{c}/source/Sources", "sources")
            choose.variants(f"{c}/source/Release", "release")
            if contents:
                choose.variants(f"{c}/Contents-source", "contents")
                choose.variants("Contents-source", "contents")
    return choose.result()


def unserved(
    release_files: Mapping[str, Checksums],
    components: Sequence[str],
    arches: Sequence[str],
    *,
    binary: bool,
    source: bool,
) -> tuple[list[str], list[str]]:
    """What a suite's configuration asks for and its Release has no index for, as
    (components, architectures): a component with neither ``Packages`` (of a configured
    architecture or ``all``, when ``binary``) nor ``Sources`` (when ``source``), and, of the
    components it has, an architecture (not ``all``) without ``Packages`` in any of them.
    Nothing of those is mirrored: most likely a misspelt name, or an architecture the
    repository does not build (apt-get warns of the first and notes the second)."""
    bases = {split_compression(path)[0] for path in release_files}
    wanted = [*arches, "all"] if binary else []
    missing: list[str] = []
    present: list[str] = []
    for component in dict.fromkeys(components):
        c = component.strip("/")
        has = any(f"{c}/binary-{a}/Packages" in bases for a in wanted) or (
            source and f"{c}/source/Sources" in bases
        )
        (present if has else missing).append(component)
    no_arch = []
    if binary and present:
        no_arch = [
            a
            for a in dict.fromkeys(arches)
            if a != "all"
            and not any(f"{c.strip('/')}/binary-{a}/Packages" in bases for c in present)
        ]
    return missing, no_arch


def _classify(path: str) -> IndexKind:
    """Kind of a file of a flat repository, from its name."""
    base = split_compression(path)[0]
    name = base.rpartition("/")[2]
    if name == "Packages":
        return "packages"
    if name == "Sources":
        return "sources"
    if name == "Release":
        return "release"
    if name.startswith("Translation-"):
        return "translation"
    if name == "Index":
        return "i18n-index"
    if name.startswith("Contents-"):
        return "contents"
    if name.startswith(("Components-", "icons-")):
        return "dep11"
    if name.startswith("Commands-"):
        return "cnf"
    return "other"


def select_flat_indexes(
    release_files: Mapping[str, Checksums], *, binary: bool, source: bool
) -> list[IndexFile]:
    """Index files of a flat repository (``deb URI dir/``), sorted by path.

    A flat Release lists paths relative to the flat directory. ``Packages*`` are taken
    (required) when ``binary``, ``Sources*`` (required) when ``source``; every other listed
    file is taken as optional, classified by name.
    """
    chosen: list[IndexFile] = []
    for path in sorted(release_files):
        kind = _classify(path)
        if kind == "packages" and not binary:
            continue
        if kind == "sources" and not source:
            continue
        chosen.append(IndexFile(path, release_files[path], kind, kind in ("packages", "sources")))
    return chosen


def group_variants(files: Iterable[IndexFile]) -> dict[str, list[IndexFile]]:
    """Group index files by base name (path without compression suffix), input order kept."""
    groups: dict[str, list[IndexFile]] = {}
    for index_file in files:
        groups.setdefault(split_compression(index_file.path)[0], []).append(index_file)
    return groups
