"""Incremental decompression of apt index files (.gz, .xz, .lzma, .bz2, .zst, .lz4).

One job: turn compressed chunks into decompressed chunks (or lines) while they stream, with
corrupt or truncated input reported as :class:`FormatError`. No file or network I/O: the
caller feeds bytes. Concatenated streams (multi-member gzip as written by ``pigz``,
multi-stream bzip2 as written by ``pbzip2``, concatenated xz streams) are decoded as one
file, as the command-line tools do. ``.zst`` needs the optional ``zstandard`` module and
``.lz4`` the optional ``lz4`` module; without them :func:`decompressor_for` raises
:class:`FormatError` naming the package to install.
"""

from __future__ import annotations

import bz2
import importlib
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from aptmirror.errors import FormatError

__all__ = [
    "Decompressor",
    "decompressor_for",
    "iter_decompressed",
    "iter_decompressed_lines",
]


class Decompressor(Protocol):
    """Streaming decompressor: ``feed`` chunks in order, then ``finish`` once."""

    def feed(self, chunk: bytes) -> bytes:
        """Decompress one chunk; returns what could be decoded so far (maybe b"")."""
        ...

    def finish(self) -> bytes:
        """Flush; raises :class:`FormatError` if the input was truncated."""
        ...


class _Identity:
    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""


class _Raw(Protocol):
    """What zlib/bz2/lzma decompression objects have in common."""

    @property
    def eof(self) -> bool: ...

    @property
    def unused_data(self) -> bytes: ...

    def decompress(self, data: bytes) -> bytes: ...


class _MultiStream:
    """Runs a fresh stdlib decompressor for each concatenated stream of the input."""

    def __init__(
        self,
        name: str,
        factory: Callable[[], _Raw],
        errors: tuple[type[Exception], ...],
        *,
        skip_padding: bool = False,
    ) -> None:
        self._name = name
        self._factory = factory
        self._errors = errors
        self._skip_padding = skip_padding  # xz allows NUL stream padding between streams
        self._raw = factory()
        self._started = False  # has the current stream received any byte?
        self._empty = True  # no byte at all so far
        self._finished = False

    def feed(self, chunk: bytes) -> bytes:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        out: list[bytes] = []
        data = chunk
        self._empty = self._empty and not chunk
        try:
            while data:
                if self._raw.eof:
                    if self._skip_padding:
                        data = data.lstrip(b"\0")
                        if not data:
                            break
                    self._raw = self._factory()
                    self._started = False
                self._started = True
                out.append(self._raw.decompress(data))
                data = self._raw.unused_data if self._raw.eof else b""
        except self._errors as exc:
            raise FormatError(f"corrupt {self._name} data: {exc}") from exc
        return b"".join(out)

    def finish(self) -> bytes:
        self._finished = True
        if self._empty:
            raise FormatError(f"empty {self._name} data")
        if self._started and not self._raw.eof:
            raise FormatError(f"truncated {self._name} data")
        return b""


class _Gzip(_MultiStream):
    """gzip (zlib with wbits=47 also accepts a zlib header); trailing NULs are ignored."""

    def __init__(self) -> None:
        super().__init__(
            "gzip",
            lambda: zlib.decompressobj(wbits=47),
            (zlib.error,),
            skip_padding=True,  # like gzip(1), which ignores trailing zero bytes
        )


class _Adapter:
    """Wraps an optional third-party decompressor object (zstandard, lz4)."""

    def __init__(self, name: str, obj: Any, errors: tuple[type[Exception], ...]) -> None:
        self._name = name
        self._obj = obj
        self._errors = errors

    def feed(self, chunk: bytes) -> bytes:
        try:
            return bytes(self._obj.decompress(chunk))
        except self._errors as exc:
            raise FormatError(f"corrupt {self._name} data: {exc}") from exc

    def finish(self) -> bytes:
        if getattr(self._obj, "eof", True) is False:
            raise FormatError(f"truncated {self._name} data")
        return b""


def _optional_module(module: str, package: str, ext: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise FormatError(
            f"{ext} not supported: install the Python package {package!r}"
            f" (pip install {package}) or use another compression"
        ) from exc


def decompressor_for(ext: str) -> Decompressor:
    """A fresh decompressor for a compression suffix ("" for uncompressed files)."""
    if ext == "":
        return _Identity()
    if ext == ".gz":
        return _Gzip()
    if ext == ".xz":
        return _MultiStream(
            "xz",
            lambda: lzma.LZMADecompressor(lzma.FORMAT_XZ),
            (lzma.LZMAError,),
            skip_padding=True,
        )
    if ext == ".lzma":
        return _MultiStream(
            "lzma", lambda: lzma.LZMADecompressor(lzma.FORMAT_ALONE), (lzma.LZMAError,)
        )
    if ext == ".bz2":
        return _MultiStream("bzip2", bz2.BZ2Decompressor, (OSError, ValueError))
    if ext == ".zst":
        zstandard = _optional_module("zstandard", "zstandard", "zstd")
        try:
            obj = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)
        except TypeError:  # zstandard < 0.22: one frame only (what zstd(1) writes)
            obj = zstandard.ZstdDecompressor().decompressobj()
        return _Adapter("zstd", obj, (zstandard.ZstdError,))
    if ext == ".lz4":
        lz4_frame = _optional_module("lz4.frame", "lz4", "lz4")
        return _Adapter("lz4", lz4_frame.LZ4FrameDecompressor(), (RuntimeError,))
    raise FormatError(f"unknown compression {ext!r}")


def iter_decompressed(chunks: Iterable[bytes], ext: str) -> Iterator[bytes]:
    """Decompressed chunks (empty ones skipped) of a compressed byte stream."""
    decompressor = decompressor_for(ext)
    for chunk in chunks:
        if out := decompressor.feed(chunk):
            yield out
    if out := decompressor.finish():
        yield out


def iter_decompressed_lines(chunks: Iterable[bytes], ext: str) -> Iterator[bytes]:
    """Lines (each with its b"\\n"; the last one may lack it) of a compressed byte stream.

    Lines are split in bulk per decompressed chunk; only the incomplete tail is carried.
    For parsing, passing :func:`iter_decompressed` chunks straight to
    :mod:`aptmirror.debian.deb822` is faster: it does not need lines.
    """
    carry = b""
    for data in iter_decompressed(chunks, ext):
        data = carry + data
        if b"\r" in data:  # splitlines() would also split on a lone \r
            lines = [line + b"\n" for line in data.split(b"\n")]
            lines[-1] = lines[-1][:-1]
        else:
            lines = data.splitlines(keepends=True)
        carry = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        yield from lines
    if carry:
        yield carry
