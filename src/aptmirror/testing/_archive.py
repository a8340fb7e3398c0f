"""Small helpers for writing a Debian-style archive: hashes, compression, dates, pool paths.

Private to ``aptmirror.testing``; stdlib only, no imports from other ``aptmirror`` packages.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aptmirror.frozen import frozen

# Release field name -> hashlib algorithm, in the order Debian writes them.
RELEASE_HASHES: dict[str, str] = {
    "MD5Sum": "md5",
    "SHA1": "sha1",
    "SHA256": "sha256",
    "SHA512": "sha512",
}

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

MAINTAINER = "aptmirror tests <test@aptmirror.invalid>"


@frozen
class Digest:
    """Size and the hashes of one file (hex digests keyed by hashlib name)."""

    size: int
    hashes: dict[str, str]

    @property
    def md5(self) -> str:
        return self.hashes["md5"]

    @property
    def sha256(self) -> str:
        return self.hashes["sha256"]


def digest(data: bytes) -> Digest:
    """Size plus md5/sha1/sha256/sha512 of ``data``."""
    return Digest(len(data), {n: hashlib.new(n, data).hexdigest() for n in RELEASE_HASHES.values()})


def file_digest(path: Path) -> Digest:
    """:func:`digest` of a file, read in chunks."""
    hs = {n: hashlib.new(n) for n in RELEASE_HASHES.values()}
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            for h in hs.values():
                h.update(chunk)
    return Digest(size, {n: h.hexdigest() for n, h in hs.items()})


def compress(data: bytes, ext: str) -> bytes:
    """Compress for the file suffix ``ext`` ("" = as is); deterministic output."""
    if ext == "":
        return data
    if ext == ".gz":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if ext == ".xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)
    if ext == ".bz2":
        return bz2.compress(data)
    if ext == ".lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    raise ValueError(f"unsupported compression suffix {ext!r}")


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so an old hard link keeps the old bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def release_date(when: datetime) -> str:
    """RFC 2822 date as Debian's archive writes it (English names, ``UTC``)."""
    when = when.astimezone(UTC)
    return (
        f"{_DAYS[when.weekday()]}, {when.day:02d} {_MONTHS[when.month - 1]} {when.year} "
        f"{when:%H:%M:%S} UTC"
    )


def strip_epoch(version: str) -> str:
    """Version as used in file names: without ``epoch:``."""
    return version.split(":", 1)[1] if ":" in version else version


def upstream_version(version: str) -> str:
    """Version without epoch and Debian revision (for ``.orig.tar`` names)."""
    v = strip_epoch(version)
    return v.rsplit("-", 1)[0] if "-" in v else v


def pool_prefix(source: str) -> str:
    """``h`` for hello, ``libf`` for libfoo — Debian's pool bucketing."""
    return source[:4] if source.startswith("lib") and len(source) > 3 else source[:1]


def pool_dir(component: str, source: str) -> str:
    """``pool/<component>/<prefix>/<source>``."""
    return f"pool/{component}/{pool_prefix(source)}/{source}"


def stanza(fields: Iterable[tuple[str, str]]) -> str:
    """Format one deb822 stanza (values may hold continuation lines), blank-line terminated."""
    out = []
    for name, value in fields:
        if value.startswith("\n"):
            out.append(f"{name}:{value}")
        else:
            out.append(f"{name}: {value}")
    return "\n".join(out) + "\n\n"


def hash_list(rows: Sequence[tuple[str, Digest]], algo: str, width: int = 0) -> str:
    """Multi-line field body: `` <hash> <size> <name>`` per row (size padded to ``width``)."""
    return "".join(f"\n {d.hashes[algo]} {d.size:>{width}} {name}" for name, d in rows)


_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def check_package_name(name: str) -> None:
    """Reject names dpkg would reject (so errors surface early, with a clear message)."""
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid Debian package name {name!r}")
