"""Streaming parser for deb822 paragraphs (Packages, Sources, Release, ...).

One job: turn bytes into ``dict[str, str]`` paragraphs. No file or network I/O: the caller
hands in an iterable of bytes (a file object's lines, or the chunks of a decompressing
reader; chunk boundaries need not fall on line boundaries), so memory stays bounded by the
chunk size plus the largest paragraph.

Value semantics (like python-debian's, and apt's): field names are case-sensitive as written;
the first-line value is stripped; each continuation line (starting with a space or tab) is
appended as ``"\\n" + line`` without its first character and without trailing blanks; a
continuation line of just ``" ."`` stands for an empty line. Lines starting with ``#`` are
comments and skipped; a blank or whitespace-only line ends a paragraph; ``\\r\\n`` line ends
are accepted.

Bytes are decoded as UTF-8 with ``errors="surrogateescape"``: a path with non-UTF-8 bytes
survives unchanged and ``value.encode("utf-8", "surrogateescape")`` (or ``os.fsencode``)
gives back the exact bytes, which matters because index values become file names.

:func:`iter_fields` is the hot path (a 50 MB Packages file): it works on multi-megabyte
blocks of whole paragraphs with one compiled regular expression, so the per-line work runs in
C; it does not validate lines it was not asked for.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator

from aptmirror.errors import FormatError

__all__ = [
    "CHUNK_SIZE",
    "fold_value",
    "iter_fields",
    "iter_paragraphs",
    "iter_paragraphs_text",
]

#: Size of the blocks of whole paragraphs processed at once by :func:`iter_fields`.
CHUNK_SIZE = 4 << 20

_WS_ONLY_LINE = re.compile(rb"\n[ \t]+(?=\n)")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def fold_value(value: str) -> str:
    """Apply the continuation-line rules: ``"a \\n b\\n .\\n c"`` -> ``"a\\nb\\n\\nc"``.

    The first line is stripped; each following line loses its first character (the space
    or tab that marks a continuation) and its trailing blanks; ``"."`` becomes empty.
    """
    first, *rest = value.split("\n")
    lines = [first.strip()]
    for line in rest:
        line = line[1:].rstrip()
        lines.append("" if line == "." else line)
    return "\n".join(lines)


def _paragraph_groups(chunks: Iterable[bytes], chunk_size: int) -> Iterator[list[bytes]]:
    """Regroup arbitrary chunks into lists of whole raw paragraphs (without separators).

    Chunks are joined until ``chunk_size`` bytes are pending, then split on empty lines;
    the text after the last empty line is carried over, so no paragraph is ever cut. A
    paragraph may start with extra newlines (several empty lines in a row) or be empty.
    CRLF becomes LF (checked with one C-level scan; the replace only runs on CRLF files).
    Whitespace-only lines are left for :func:`iter_fields` to notice, except in a buffer
    without any empty line.
    """
    pending: list[bytes] = []
    size = 0
    threshold = chunk_size
    for data in chunks:
        pending.append(data)
        size += len(data)
        if size >= threshold:
            paragraphs = _split_paragraphs(b"".join(pending))
            pending = [paragraphs.pop()]
            size = len(pending[0])
            # A paragraph longer than chunk_size: wait for twice as much before joining
            # again, so a huge paragraph costs linear, not quadratic, copying.
            threshold = max(chunk_size, 2 * size)
            yield paragraphs
    yield _split_paragraphs(b"".join(pending))


def _split_paragraphs(buf: bytes) -> list[bytes]:
    if b"\r" in buf:
        buf = buf.replace(b"\r\n", b"\n")
    paragraphs = buf.split(b"\n\n")
    if len(paragraphs) == 1 and _WS_ONLY_LINE.search(b"\n" + buf):
        # No empty line at all, but whitespace-only ones: split on those here, or a file
        # separated only by them would be carried whole.
        paragraphs = _WS_ONLY_LINE.sub(b"\n", b"\n" + buf)[1:].split(b"\n\n")
    return paragraphs


# Possessive quantifiers match wrongly before Python 3.11.5 (python/cpython#106052: a
# value kept its newline, the next field was lost), and Debian 12's python3 is 3.11.2.
POSSESSIVE = sys.version_info >= (3, 11, 5)


def _field_regex(wanted: frozenset[str], possessive: bool) -> re.Pattern[str]:
    """Regex finding the wanted fields of one paragraph given with a leading newline.

    Groups: name, first-line value without surrounding blanks, continuation lines ("" for
    a one-line value: the common case then needs no post-processing). A whitespace-only
    line matches with an empty name: it separates paragraphs, the caller then splits.
    Lines that are not wanted fields, comments included, simply do not match.

    The quantifiers are possessive (``*+``, ``?+``) where Python gets them right
    (:data:`POSSESSIVE`): once a wanted name and its colon matched, nothing after can fail,
    so no state is kept for backtracking into them — the same matches for about 7 % fewer
    instructions in parsing a Packages file.
    """
    # Longest names first so that "SHA256" is not shadowed by a shorter prefix.
    names = sorted(wanted, key=lambda n: (-len(n), n))
    alternatives = "|".join(re.escape(n) for n in names)
    star, opt, plus = ("*+", "?+", "++") if possessive else ("*", "?", "+")
    return re.compile(
        r"\n(?:("
        + alternatives
        + rf"):[ \t]{star}((?:[^\n]*[^ \t\n]){opt})"
        + rf"((?:[ \t]{star}\n[ \t]{plus}[^ \t\n][^\n]{star}){star})"
        + rf"|[ \t]{plus}(?=\n))"
    )


def iter_fields(
    lines: Iterable[bytes], wanted: frozenset[str], *, chunk_size: int = CHUNK_SIZE
) -> Iterator[dict[str, str]]:
    """Yield, per paragraph, only the fields named in ``wanted``.

    ``lines`` may be lines or arbitrary chunks of bytes (passing big chunks is fastest).
    Paragraphs containing none of the wanted fields are skipped. Lines that are not
    wanted are not validated (use :func:`iter_paragraphs` for a strict parse).
    """
    if not wanted:
        raise ValueError("iter_fields needs at least one wanted field name")
    findall = _field_regex(wanted, POSSESSIVE).findall

    def fields_of(paragraph: bytes) -> dict[str, str] | None:
        # Decoding per paragraph keeps the (usual) ASCII ones on the decoder's fast path
        # and compact; the leading newline anchors the first field like the others.
        found = findall("\n" + paragraph.decode("utf-8", "surrogateescape"))
        if not found:
            return None
        return {key: fold_value(first + more) if more else first for key, first, more in found}

    for paragraphs in _paragraph_groups(lines, chunk_size):
        for paragraph in paragraphs:
            fields = fields_of(paragraph)
            if fields is None:
                continue
            if "" not in fields:  # the whitespace-only-line marker (see _field_regex)
                yield fields
                continue
            # Rare: whitespace-only lines also separate paragraphs (Debian Policy 5.1).
            for part in _WS_ONLY_LINE.sub(b"\n", b"\n" + paragraph).split(b"\n\n"):
                if (fields := fields_of(part)) is not None:
                    yield fields


def _iter_raw_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split arbitrary chunks into lines without their b"\\n" (or b"\\r\\n")."""
    carry = b""
    for data in chunks:
        if b"\n" not in data:
            carry += data
            continue
        parts = (carry + data).split(b"\n")
        carry = parts.pop()
        for part in parts:
            yield part[:-1] if part.endswith(b"\r") else part
    if carry:
        yield carry[:-1] if carry.endswith(b"\r") else carry


def iter_paragraphs(lines: Iterable[bytes]) -> Iterator[dict[str, str]]:
    """Yield every paragraph as a dict, validating every line.

    A line that is neither a ``Name: value`` field, a continuation, a comment nor blank
    raises :class:`FormatError` naming its line number; so does a continuation line with no
    field before it. A repeated field within a paragraph: the last one wins (apt's rule).
    """
    current: dict[str, str] = {}
    name: str | None = None
    continuation: list[str] = []

    def close_field() -> None:
        if name is not None and continuation:
            current[name] = fold_value("\n".join([current[name], *continuation]))
            continuation.clear()

    for lineno, raw in enumerate(_iter_raw_lines(lines), start=1):
        if raw[:1] in (b" ", b"\t"):
            if not raw.strip():
                # whitespace-only line: a paragraph separator
                raw = b""
            elif name is None:
                raise FormatError(f"line {lineno}: continuation line outside a field")
            else:
                continuation.append(_decode(raw))
                continue
        if not raw:
            close_field()
            name = None
            if current:
                yield current
                current = {}
            continue
        if raw.startswith(b"#"):
            continue
        close_field()
        key, sep, value = raw.partition(b":")
        if not sep or not key or key != key.strip():
            raise FormatError(f"line {lineno}: not a 'Field: value' line: {_decode(raw)[:80]!r}")
        name = _decode(key)
        current[name] = _decode(value).strip()
    close_field()
    if current:
        yield current


def iter_paragraphs_text(text: str) -> Iterator[dict[str, str]]:
    """:func:`iter_paragraphs` for text already in memory (e.g. a Release file)."""
    return iter_paragraphs([text.encode("utf-8", "surrogateescape")])
