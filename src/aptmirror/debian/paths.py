"""Relative paths taken from apt indexes: validation, by-hash names, compression suffixes.

One job: decide whether a path written in a Release/Packages/Sources file may be used as a
path under the repository root, and derive the names apt derives from it. Pure string
functions: no file system access (nothing is resolved against the disk; symlinks are the
storage layer's concern).
"""

from __future__ import annotations

import re

from aptmirror.errors import FormatError, UnsafePathError
from aptmirror.model import HASH_NAMES

__all__ = [
    "COMPRESSION_EXTS",
    "by_hash_path",
    "safe_relpath",
    "split_compression",
]

#: Compression suffixes apt knows, "" (uncompressed) first.
COMPRESSION_EXTS: tuple[str, ...] = ("", ".gz", ".xz", ".bz2", ".lzma", ".zst", ".lz4")

_DIGEST_LENGTHS = {"MD5Sum": 32, "SHA1": 40, "SHA256": 64, "SHA512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_relpath(path: str) -> str:
    """Return ``path`` normalised, or raise :class:`UnsafePathError`.

    Normalisation: leading ``./`` and inner ``.`` segments are dropped, ``//`` collapses to
    ``/``, a trailing ``/`` is removed. Rejected: empty paths (after normalisation), absolute
    paths, any ``..`` segment (even one that would stay inside the tree: an index has no
    reason to write one), NUL bytes and other control characters (newline would break our
    line-based ``var/`` files). Backslashes are ordinary characters on Linux and are kept.
    """
    # Fast path: the common, already-clean form (this runs once per pool file).
    if (
        path
        and path[0] not in "/."
        and "//" not in path
        and "/." not in path
        and not path.endswith("/")
        and path.isprintable()  # False for any control character (and for non-UTF-8
    ):  # bytes kept as surrogates, which the slow path then accepts)
        return path
    return _slow_relpath(path)


def _slow_relpath(path: str) -> str:
    if not path:
        raise UnsafePathError(path, "empty path")
    if path.startswith("/"):
        raise UnsafePathError(path, "absolute path")
    if "\0" in path:
        raise UnsafePathError(path, "NUL byte in path")
    if _CONTROL.search(path):
        raise UnsafePathError(path, "control character in path")
    segments = [segment for segment in path.split("/") if segment not in ("", ".")]
    if ".." in segments:
        raise UnsafePathError(path, "'..' segment")
    if not segments:
        raise UnsafePathError(path, "empty path")
    return "/".join(segments)


def by_hash_path(path: str, hash_name: str, digest: str) -> str:
    """``dir/by-hash/<hash_name>/<digest>`` for the index file ``path`` (apt's by-hash).

    ``hash_name`` is a Release field name (one of :data:`aptmirror.model.HASH_NAMES`);
    a digest that is not lower-case hex of the right length raises :class:`FormatError`.
    """
    if hash_name not in HASH_NAMES:
        raise ValueError(f"unknown hash name {hash_name!r}; expected one of {HASH_NAMES}")
    if len(digest) != _DIGEST_LENGTHS[hash_name] or not _HEX.fullmatch(digest):
        raise FormatError(f"invalid {hash_name} digest {digest!r} for {path}")
    directory = safe_relpath(path).rpartition("/")[0]
    prefix = f"{directory}/" if directory else ""
    return f"{prefix}by-hash/{hash_name}/{digest}"


def split_compression(path: str) -> tuple[str, str]:
    """Split a known compression suffix off: ``"a/Packages.xz"`` -> ``("a/Packages", ".xz")``.

    Returns ``(path, "")`` when the name has no known compression suffix.
    """
    dot = path.rfind(".")
    if dot > path.rfind("/") + 1:  # a name that is only ".gz" has no base to split off
        ext = path[dot:]
        if ext in COMPRESSION_EXTS:
            return path[:dot], ext
    return path, ""
