"""Release and InRelease files: clearsign armor and the Release paragraph.

One job: turn the text of a (signature-checked) Release file into a :class:`Release` value
whose ``files`` say which index files the suite has, with their sizes and hashes. No file or
network I/O and no signature checking (that is :mod:`aptmirror.verify`'s job; this module only
takes the armor apart, the way apt does before handing the text on).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import field
from datetime import UTC, datetime
from types import MappingProxyType

from aptmirror.dates import parse_date
from aptmirror.debian.deb822 import fold_value
from aptmirror.debian.paths import safe_relpath
from aptmirror.errors import FormatError
from aptmirror.frozen import frozen
from aptmirror.model import HASH_NAMES, Checksums

__all__ = [
    "CHECKSUM_FIELDS",
    "Release",
    "looks_like_release",
    "parse_release",
    "strip_clearsign",
]

#: Release field name -> Checksums hash name (Release spells them this way; matched
#: case-insensitively, as apt does).
CHECKSUM_FIELDS: dict[str, str] = {name.lower(): name for name in HASH_NAMES}

_DIGEST = {
    "MD5Sum": re.compile(r"[0-9a-f]{32}"),
    "SHA1": re.compile(r"[0-9a-f]{40}"),
    "SHA256": re.compile(r"[0-9a-f]{64}"),
    "SHA512": re.compile(r"[0-9a-f]{128}"),
}


@frozen
class Release:
    """The parsed paragraph of a Release file.

    ``fields`` keeps every field as written (single-line values stripped; checksum sections
    are only in ``files``). ``files`` maps safe relative paths (relative to the directory
    holding the Release, e.g. ``main/binary-amd64/Packages.xz``) to their declared
    size and every hash offered.
    """

    fields: tuple[tuple[str, str], ...]
    files: Mapping[str, Checksums] = field(hash=False)
    suite: str | None = None
    codename: str | None = None
    date: datetime | None = None
    valid_until: datetime | None = None
    architectures: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    acquire_by_hash: bool = False

    def get(self, name: str) -> str | None:
        """Value of a field, looked up case-insensitively (as apt does)."""
        wanted = name.lower()
        for key, value in self.fields:
            if key.lower() == wanted:
                return value
        return None


# ---------------------------------------------------------------------------- clearsign

_BEGIN_SIGNED = b"-----BEGIN PGP SIGNED MESSAGE-----"
_BEGIN_SIGNATURE = b"-----BEGIN PGP SIGNATURE-----"
_END_SIGNATURE = b"-----END PGP SIGNATURE-----"
_ARMOR_HEADER = re.compile(rb"[A-Za-z][A-Za-z0-9-]*: .*")


def strip_clearsign(data: bytes) -> bytes:
    """Return the signed text of a clearsigned message (an InRelease file).

    Follows RFC 4880 section 7 (and apt's reading of it): the ``BEGIN PGP SIGNED MESSAGE``
    line must come first (leading blank lines allowed), then armor headers such as
    ``Hash: SHA256`` up to an empty line, then the text with ``- `` dash-escaping
    removed, then exactly one signature block; only blank lines may follow. Anything else
    (an HTML error page, a plain Release, text outside the signed part) raises
    :class:`FormatError`. The text is returned with ``\\n`` line ends and a final newline.
    """
    lines = iter(enumerate(data.split(b"\n"), start=1))
    _expect_begin(lines)
    _skip_armor_headers(lines)
    body = _signed_body(lines)
    _expect_signature(lines)
    return b"".join(line + b"\n" for line in body)


def _clean(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _expect_begin(lines: Iterator[tuple[int, bytes]]) -> None:
    for _lineno, raw in lines:
        line = _clean(raw).rstrip()
        if not line:
            continue
        if line == _BEGIN_SIGNED:
            return
        break
    raise FormatError("not a clearsigned message: no 'BEGIN PGP SIGNED MESSAGE' line first")


def _skip_armor_headers(lines: Iterator[tuple[int, bytes]]) -> None:
    for lineno, raw in lines:
        line = _clean(raw)
        if not line.strip():
            return
        if not _ARMOR_HEADER.fullmatch(line):
            raise FormatError(f"clearsigned message, line {lineno}: bad armor header {line!r}")
    raise FormatError("clearsigned message ends inside its armor headers")


def _signed_body(lines: Iterator[tuple[int, bytes]]) -> list[bytes]:
    body: list[bytes] = []
    for lineno, raw in lines:
        line = _clean(raw)
        if line.startswith(b"-"):
            if line.rstrip() == _BEGIN_SIGNATURE:
                return body
            if not line.startswith(b"- "):
                raise FormatError(
                    f"clearsigned message, line {lineno}: unexpected armor line {line[:60]!r}"
                )
            line = line[2:]
        body.append(line)
    raise FormatError("clearsigned message has no signature block")


def _expect_signature(lines: Iterator[tuple[int, bytes]]) -> None:
    for lineno, raw in lines:
        line = _clean(raw).rstrip()
        if line == _END_SIGNATURE:
            break
        if line.startswith(b"-----"):
            raise FormatError(f"clearsigned message, line {lineno}: unexpected {line!r}")
    else:
        raise FormatError("clearsigned message: signature block is not terminated")
    for lineno, raw in lines:
        if raw.strip():
            raise FormatError(f"clearsigned message, line {lineno}: data after the signature block")


# ---------------------------------------------------------------------------- Release


def looks_like_release(text: str) -> bool:
    """Cheap sanity check: a Release paragraph with a checksum section and an identity.

    Identity is ``Suite`` or ``Codename`` or, for flat repositories made by
    ``apt-ftparchive release`` without a configuration (they carry neither), ``Date``.
    """
    names = {
        line.partition(":")[0].strip().lower()
        for line in text.splitlines()
        if line[:1] not in ("", " ", "\t", "#") and ":" in line
    }
    has_identity = bool(names & {"suite", "codename", "date"})
    return has_identity and bool(names & CHECKSUM_FIELDS.keys())


def parse_release(text: str) -> Release:
    """Parse the (signature-stripped) text of a Release file.

    Raises :class:`FormatError` for a text that is not a Release file, a checksum line
    without exactly three fields (naming the section and the file's line number), an
    invalid size or digest, a file given two different sizes by two sections, or an
    unparsable ``Date``/``Valid-Until``; :class:`UnsafePathError` for an unsafe path.
    """
    if not looks_like_release(text):
        raise FormatError("not a Release file (no Suite/Codename/Date or no checksum section)")
    fields, sections = _split_release(text)
    files = _merge_checksums(sections)
    values = {key.lower(): value for key, value in fields}
    return Release(
        fields=tuple(fields),
        files=MappingProxyType(files),
        suite=values.get("suite"),
        codename=values.get("codename"),
        date=_parse_date(values.get("date"), "Date"),
        valid_until=_parse_date(values.get("valid-until"), "Valid-Until"),
        architectures=tuple(values.get("architectures", "").split()),
        components=tuple(values.get("components", "").split()),
        acquire_by_hash=values.get("acquire-by-hash", "").lower() == "yes",
    )


_Section = tuple[str, list[tuple[int, str]]]  # (hash name, [(line number, line)])


def _split_release(text: str) -> tuple[list[tuple[str, str]], list[_Section]]:
    """Fields (checksum sections excluded) and checksum sections with their line numbers.

    Only the first paragraph counts (a Release has one).
    """
    fields: list[tuple[str, list[str]]] = []
    sections: list[_Section] = []
    current: list[tuple[int, str]] | None = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            if fields or sections:
                break
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if current is not None:
                current.append((lineno, line))
            elif fields:
                fields[-1][1].append(line)
            else:
                raise FormatError(f"Release line {lineno}: continuation line outside a field")
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise FormatError(f"Release line {lineno}: not a 'Field: value' line: {line[:80]!r}")
        name = name.strip()
        hash_name = CHECKSUM_FIELDS.get(name.lower())
        if hash_name is not None:
            current = []
            sections.append((hash_name, current))
        else:
            current = None
            fields.append((name, [value]))
    return [(name, fold_value("\n".join(lines))) for name, lines in fields], sections


def _merge_checksums(sections: list[_Section]) -> dict[str, Checksums]:
    sizes: dict[str, int] = {}
    hashes: dict[str, dict[str, str]] = {}
    for hash_name, entries in sections:
        digest_format = _DIGEST[hash_name]
        for lineno, line in entries:
            parts = line.split()
            if len(parts) != 3:
                raise FormatError(
                    f"Release {hash_name} section, line {lineno}: expected 'hash size path',"
                    f" got {line.strip()!r}"
                )
            digest, size_text, raw_path = parts
            digest = digest.lower()
            if not digest_format.fullmatch(digest):
                raise FormatError(
                    f"Release {hash_name} section, line {lineno}: invalid digest {digest!r}"
                )
            if not (size_text.isascii() and size_text.isdigit()):
                raise FormatError(
                    f"Release {hash_name} section, line {lineno}: invalid size {size_text!r}"
                )
            path = safe_relpath(raw_path)
            size = int(size_text)
            known = sizes.setdefault(path, size)
            if known != size:
                raise FormatError(
                    f"Release {hash_name} section, line {lineno}: {path} has size {size},"
                    f" another section says {known}"
                )
            hashes.setdefault(path, {})[hash_name] = digest
    return {
        path: Checksums(
            sizes[path],
            tuple((name, by_name[name]) for name in HASH_NAMES if name in by_name),
        )
        for path, by_name in sorted(hashes.items())
    }


def _parse_date(value: str | None, name: str) -> datetime | None:
    """RFC 2822 date as an aware datetime (UTC when the zone is ``-0000``/unknown)."""
    if value is None or not value.strip():
        return None
    try:
        parsed = parse_date(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"Release {name}: invalid date {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
