"""Safe relative paths, by-hash names and compression suffixes."""

from __future__ import annotations

import pytest

from aptmirror.debian.paths import by_hash_path, safe_relpath, split_compression
from aptmirror.errors import FormatError, UnsafePathError


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("pool/main/a/apt/apt_2.6.1_amd64.deb", "pool/main/a/apt/apt_2.6.1_amd64.deb"),
        ("./pool/main/a.deb", "pool/main/a.deb"),
        ("pool//main///a.deb", "pool/main/a.deb"),
        ("pool/./main/a.deb", "pool/main/a.deb"),
        ("pool/main/", "pool/main"),
        ("Packages", "Packages"),
        (".hidden/x", ".hidden/x"),
        ("pool/.x/..y/a..b", "pool/.x/..y/a..b"),
        ("pool/with space/a b.deb", "pool/with space/a b.deb"),
        ("pool/back\\slash", "pool/back\\slash"),  # an ordinary character on Linux
        ("dep11/icons-64x64@2.tar.gz", "dep11/icons-64x64@2.tar.gz"),
        ("pool/caf\udce9.deb", "pool/caf\udce9.deb"),  # non-UTF-8 byte (surrogateescape)
        ("pool/ünïcode.deb", "pool/ünïcode.deb"),
    ],
)
def test_safe_relpath_accepts(path: str, expected: str) -> None:
    assert safe_relpath(path) == expected


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        (".", "empty"),
        ("./", "empty"),
        ("//", "absolute"),
        ("/etc/passwd", "absolute"),
        ("..", "'..'"),
        ("../x", "'..'"),
        ("pool/../x", "'..'"),
        ("pool/../../../tmp/evil", "'..'"),
        ("pool/..", "'..'"),
        ("./../x", "'..'"),
        ("pool/a\0b", "NUL"),
        ("pool/a\nb", "control"),
        ("pool/a\rb", "control"),
        ("pool/a\tb", "control"),
        ("pool/a\x7fb", "control"),
    ],
)
def test_safe_relpath_rejects(path: str, reason: str) -> None:
    with pytest.raises(UnsafePathError, match=reason) as info:
        safe_relpath(path)
    assert info.value.path == path
    assert reason.strip("'") in info.value.reason


def test_by_hash_path() -> None:
    digest = "ab" * 32
    assert (
        by_hash_path("main/binary-amd64/Packages.xz", "SHA256", digest)
        == f"main/binary-amd64/by-hash/SHA256/{digest}"
    )
    assert by_hash_path("Contents-amd64.gz", "MD5Sum", "0" * 32) == f"by-hash/MD5Sum/{'0' * 32}"
    assert (
        by_hash_path("./main//i18n/Index", "SHA1", "1" * 40) == f"main/i18n/by-hash/SHA1/{'1' * 40}"
    )
    assert by_hash_path("a/b", "SHA512", "f" * 128).endswith("/SHA512/" + "f" * 128)


def test_by_hash_path_errors() -> None:
    with pytest.raises(ValueError):
        by_hash_path("a/b", "SHA384", "0" * 96)
    with pytest.raises(FormatError):
        by_hash_path("a/b", "SHA256", "0" * 63)
    with pytest.raises(FormatError):
        by_hash_path("a/b", "SHA256", "../" + "0" * 61)
    with pytest.raises(FormatError):
        by_hash_path("a/b", "SHA256", "A" * 64)
    with pytest.raises(UnsafePathError):
        by_hash_path("../b", "SHA256", "0" * 64)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("main/binary-amd64/Packages", ("main/binary-amd64/Packages", "")),
        ("main/binary-amd64/Packages.gz", ("main/binary-amd64/Packages", ".gz")),
        ("main/binary-amd64/Packages.xz", ("main/binary-amd64/Packages", ".xz")),
        ("main/source/Sources.bz2", ("main/source/Sources", ".bz2")),
        ("Packages.lzma", ("Packages", ".lzma")),
        ("Packages.zst", ("Packages", ".zst")),
        ("Packages.lz4", ("Packages", ".lz4")),
        ("main/dep11/Components-amd64.yml.gz", ("main/dep11/Components-amd64.yml", ".gz")),
        ("main/dep11/icons-64x64@2.tar.gz", ("main/dep11/icons-64x64@2.tar", ".gz")),
        ("main/dep11/icons-64x64.tar", ("main/dep11/icons-64x64.tar", "")),
        ("dir.gz/Packages", ("dir.gz/Packages", "")),
        (".gz", (".gz", "")),  # a hidden file, not an extension of nothing
    ],
)
def test_split_compression(path: str, expected: tuple[str, str]) -> None:
    assert split_compression(path) == expected
