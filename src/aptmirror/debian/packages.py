"""Pool files listed by Packages and Sources indexes, as records for the planner.

One job: turn the (decompressed) bytes of a ``Packages`` or ``Sources`` file into
:class:`PoolFile` records: safe relative path, size, hashes and the package identity the
filters need. No file or network I/O: the caller passes an iterable of bytes (lines or
chunks, see :mod:`aptmirror.debian.deb822`); records are produced lazily, so a 50 MB index
is never held in memory as a list.

Deviation from the Perl apt-mirror: a Sources stanza without ``Files:`` (MD5) is not
skipped; its files are taken from ``Checksums-Sha256``/``Checksums-Sha1``/``Checksums-Sha512``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from aptmirror.debian.deb822 import iter_fields
from aptmirror.debian.paths import safe_relpath
from aptmirror.errors import FormatError, UnsafePathError
from aptmirror.frozen import frozen
from aptmirror.model import Checksums

__all__ = ["SOURCE_ARCH", "PoolFile", "iter_binary_files", "iter_source_files"]

#: ``PoolFile.arch`` of a file listed in a Sources index (apt's name for it).
SOURCE_ARCH = "source"


@frozen
class PoolFile:
    """One file of the pool, as an index declares it.

    ``path`` is relative to the repository root (the directory holding ``dists/`` and
    ``pool/``), already validated by :func:`~aptmirror.debian.paths.safe_relpath`.
    For a binary package ``package``/``version``/``arch`` are its Package, Version and
    Architecture fields, ``source`` its source package name and ``section`` its Section
    (both "" unless asked for, see :func:`iter_binary_files`); for a source package's
    file ``package`` and ``source`` are the source name and ``arch`` is ``"source"``.
    """

    path: str
    checksums: Checksums
    package: str
    version: str
    arch: str
    source: str
    section: str = ""

    @property
    def size(self) -> int:
        return self.checksums.size

    @property
    def is_source(self) -> bool:
        return self.arch == SOURCE_ARCH


# "MD5sum" is how dak and apt-ftparchive spell it in Packages; "MD5Sum" is accepted too
# because apt reads field names case-insensitively.
_BINARY_FIELDS = frozenset(
    {"Package", "Version", "Architecture", "Filename", "Size"}
    | {"SHA512", "SHA256", "SHA1", "MD5sum", "MD5Sum"}
)
# Only read on request: each extra field costs ~5% of the parse time.
_FILTER_FIELDS = frozenset({"Source", "Section"})

# Sources file-list field -> Checksums name, strongest first.
_SOURCE_LIST_FIELDS: tuple[tuple[str, str], ...] = (
    ("Checksums-Sha512", "SHA512"),
    ("Checksums-Sha256", "SHA256"),
    ("Checksums-Sha1", "SHA1"),
    ("Files", "MD5Sum"),
)
_SOURCE_FIELDS = frozenset(
    {"Package", "Version", "Directory", "Section"} | {name for name, _ in _SOURCE_LIST_FIELDS}
)


def _size_error(value: str, kind: str, name: str) -> FormatError:
    return FormatError(f"{kind} {name!r}: invalid size {value!r}")


def _parse_size(value: str, kind: str, name: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise _size_error(value, kind, name)
    return int(value)


def iter_binary_files(lines: Iterable[bytes], *, filter_fields: bool = False) -> Iterator[PoolFile]:
    """Yield one :class:`PoolFile` per stanza of a ``Packages`` file.

    With ``filter_fields`` the ``Source`` and ``Section`` fields are read too (for
    source-name/section filters); without, ``source`` and ``section`` are "".
    A stanza without ``Filename`` or ``Size`` raises :class:`FormatError` naming the
    package; an unsafe ``Filename`` raises :class:`UnsafePathError`.
    """
    wanted = _BINARY_FIELDS | _FILTER_FIELDS if filter_fields else _BINARY_FIELDS
    for stanza in iter_fields(lines, wanted):
        get = stanza.get
        package = get("Package", "")
        filename = get("Filename")
        size = get("Size")
        if filename is None or size is None:
            missing = "Filename" if filename is None else "Size"
            raise FormatError(f"Packages stanza {package or '(no Package field)'!r}: no {missing}")
        # Unrolled on purpose (hot path): strongest first, as HASH_NAMES.
        hashes: list[tuple[str, str]] = []
        if (value := get("SHA512")) is not None:
            hashes.append(("SHA512", value.lower()))
        if (value := get("SHA256")) is not None:
            hashes.append(("SHA256", value.lower()))
        if (value := get("SHA1")) is not None:
            hashes.append(("SHA1", value.lower()))
        if (value := get("MD5sum", get("MD5Sum"))) is not None:
            hashes.append(("MD5Sum", value.lower()))
        source = get("Source")
        yield PoolFile(
            safe_relpath(filename),
            Checksums(_parse_size(size, "package", package), tuple(hashes)),
            package,
            get("Version", ""),
            get("Architecture", ""),
            source.partition(" ")[0] if source else package if filter_fields else "",
            get("Section", ""),
        )


_FileEntries = dict[str, tuple[int, list[tuple[str, str]]]]


def _parse_file_list(
    value: str, field_name: str, hash_name: str, package: str, into: _FileEntries
) -> None:
    """Merge one ``hash size name`` list into ``into`` (name -> (size, [(hash, digest)]).

    Fields come strongest first, so each list stays in :data:`HASH_NAMES` order; a name
    listed twice in one field keeps its last digest.
    """
    # Line 0 is the field's own line (normally empty), the entries follow from line 1.
    for line in value.split("\n"):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            lineno = value.split("\n").index(line)
            raise FormatError(
                f"source {package!r}: {field_name} line {lineno}: expected 'hash size name',"
                f" got {line.strip()!r}"
            )
        digest, size_text, name = parts
        if not (size_text.isascii() and size_text.isdigit()):  # _parse_size, inlined
            raise _size_error(size_text, f"source {package!r} {field_name}", name)
        size = int(size_text)
        entry = into.get(name)
        if entry is None:
            into[name] = (size, [(hash_name, digest.lower())])
            continue
        known_size, hashes = entry
        if known_size != size:
            raise FormatError(
                f"source {package!r}: {name!r} has size {known_size} in one list"
                f" and {size} in {field_name}"
            )
        if hashes[-1][0] == hash_name:
            hashes[-1] = (hash_name, digest.lower())
        else:
            hashes.append((hash_name, digest.lower()))


def iter_source_files(lines: Iterable[bytes]) -> Iterator[PoolFile]:
    """Yield one :class:`PoolFile` per file of each stanza of a ``Sources`` file.

    Files are merged by name over ``Checksums-Sha512``, ``Checksums-Sha256``,
    ``Checksums-Sha1`` and ``Files`` (any subset may be present); the path is
    ``Directory + "/" + name``. A stanza without ``Directory`` or without any file list
    raises :class:`FormatError`; a name containing ``/`` or an unsafe directory raises
    :class:`UnsafePathError`.
    """
    for stanza in iter_fields(lines, _SOURCE_FIELDS):
        package = stanza.get("Package", "")
        directory = stanza.get("Directory")
        if directory is None:
            raise FormatError(f"Sources stanza {package or '(no Package field)'!r}: no Directory")
        directory = safe_relpath(directory)
        files: _FileEntries = {}
        listed = False
        for field_name, hash_name in _SOURCE_LIST_FIELDS:
            value = stanza.get(field_name)
            if value is not None:
                listed = True
                _parse_file_list(value, field_name, hash_name, package, files)
        if not listed:
            raise FormatError(f"Sources stanza {package!r}: no Files or Checksums-* field")
        version = stanza.get("Version", "")
        section = stanza.get("Section", "")
        for name, (size, hashes) in files.items():
            if "/" in name or name in (".", ".."):
                raise UnsafePathError(name, f"not a plain file name (source {package!r})")
            yield PoolFile(
                safe_relpath(f"{directory}/{name}"),
                Checksums(size, tuple(hashes)),
                package,
                version,
                SOURCE_ARCH,
                package,
                section,
            )
