"""Incremental decompression: round trips, multi-stream input, chunking, corruption."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from collections.abc import Callable, Iterator

import pytest

from aptmirror.debian.compression import (
    decompressor_for,
    iter_decompressed,
    iter_decompressed_lines,
)
from aptmirror.errors import FormatError

PAYLOAD = b"".join(
    b"Package: pkg%d\nVersion: 1.%d\nFilename: pool/p/pkg%d.deb\n\n" % (i, i, i)
    for i in range(3000)
)

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": lambda data: gzip.compress(data, mtime=0),
    ".xz": lambda data: lzma.compress(data, format=lzma.FORMAT_XZ),
    ".lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    ".bz2": bz2.compress,
    "": lambda data: data,
}


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def decompress_all(data: bytes, ext: str, size: int) -> bytes:
    return b"".join(iter_decompressed(chunked(data, size), ext))


@pytest.mark.parametrize("ext", sorted(COMPRESS))
@pytest.mark.parametrize("size", [1 << 20, 4096, 7])
def test_round_trip(ext: str, size: int) -> None:
    assert decompress_all(COMPRESS[ext](PAYLOAD), ext, size) == PAYLOAD


@pytest.mark.parametrize("ext", [".gz", ".xz", ".bz2"])
def test_byte_by_byte(ext: str) -> None:
    small = PAYLOAD[:3000]
    compressed = COMPRESS[ext](small)
    decompressor = decompressor_for(ext)
    out = b"".join(decompressor.feed(compressed[i : i + 1]) for i in range(len(compressed)))
    assert out + decompressor.finish() == small


@pytest.mark.parametrize("ext", [".gz", ".xz", ".bz2"])
@pytest.mark.parametrize("size", [1 << 20, 5, 1])
def test_concatenated_streams(ext: str, size: int) -> None:
    parts = [PAYLOAD[:1000], PAYLOAD[1000:1001], PAYLOAD[1001:]]
    data = b"".join(COMPRESS[ext](part) for part in parts)
    assert decompress_all(data, ext, size) == PAYLOAD


def test_gzip_trailing_zero_padding_is_ignored() -> None:
    data = COMPRESS[".gz"](PAYLOAD) + b"\0" * 512
    assert decompress_all(data, ".gz", 100) == PAYLOAD


def test_zlib_header_also_accepted_by_gz() -> None:
    assert decompress_all(zlib.compress(PAYLOAD), ".gz", 1000) == PAYLOAD


@pytest.mark.parametrize("ext", [".gz", ".xz", ".lzma", ".bz2"])
def test_truncated(ext: str) -> None:
    data = COMPRESS[ext](PAYLOAD)
    with pytest.raises(FormatError, match="truncated"):
        decompress_all(data[: len(data) // 2], ext, 100)


@pytest.mark.parametrize("ext", [".gz", ".xz", ".lzma", ".bz2"])
def test_corrupt(ext: str) -> None:
    data = bytearray(COMPRESS[ext](PAYLOAD))
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0x55
    with pytest.raises(FormatError):
        decompress_all(bytes(data), ext, 100)


@pytest.mark.parametrize("ext", [".gz", ".xz", ".bz2"])
def test_html_instead_of_compressed_data(ext: str) -> None:
    with pytest.raises(FormatError, match="corrupt"):
        decompress_all(b"<html><body>404 Not Found</body></html>\n", ext, 100)


@pytest.mark.parametrize("ext", [".gz", ".xz", ".bz2"])
def test_trailing_garbage(ext: str) -> None:
    with pytest.raises(FormatError):
        decompress_all(COMPRESS[ext](PAYLOAD) + b"garbage!", ext, 100)


@pytest.mark.parametrize("ext", [".gz", ".xz", ".lzma", ".bz2"])
def test_empty_compressed_file(ext: str) -> None:
    with pytest.raises(FormatError, match="empty"):
        decompress_all(b"", ext, 100)


def test_empty_uncompressed_file() -> None:
    assert decompress_all(b"", "", 100) == b""


def test_unknown_extension() -> None:
    with pytest.raises(FormatError, match="unknown compression"):
        decompressor_for(".rar")


@pytest.mark.parametrize(("ext", "module"), [(".zst", "zstandard"), (".lz4", "lz4.frame")])
def test_optional_compressions(ext: str, module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        with pytest.raises(FormatError, match="not supported: install"):
            decompressor_for(ext)
    else:  # pragma: no cover - depends on the environment
        assert decompressor_for(ext) is not None


def test_feed_after_finish() -> None:
    decompressor = decompressor_for(".gz")
    decompressor.feed(COMPRESS[".gz"](b"x"))
    decompressor.finish()
    with pytest.raises(RuntimeError):
        decompressor.feed(b"more")


@pytest.mark.parametrize("size", [1 << 20, 13, 1])
def test_iter_decompressed_lines(size: int) -> None:
    data = COMPRESS[".xz"](PAYLOAD)
    lines = list(iter_decompressed_lines(chunked(data, size), ".xz"))
    assert lines == PAYLOAD.splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)


def test_iter_decompressed_lines_no_final_newline_and_lone_cr() -> None:
    raw = b"a\r\nb\rc\nlast"
    lines = list(iter_decompressed_lines(chunked(COMPRESS[".gz"](raw), 3), ".gz"))
    assert lines == [b"a\r\n", b"b\rc\n", b"last"]
    assert list(iter_decompressed_lines([b"x\ny\n"], "")) == [b"x\n", b"y\n"]
