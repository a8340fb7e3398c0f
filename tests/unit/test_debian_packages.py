"""Pool-file records from Packages and Sources indexes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aptmirror.debian.compression import iter_decompressed
from aptmirror.debian.packages import PoolFile, iter_binary_files, iter_source_files
from aptmirror.errors import FormatError, UnsafePathError
from aptmirror.model import Checksums

H256 = "a" * 64
H1 = "b" * 40
HMD5 = "c" * 32

PACKAGES = f"""\
Package: 0ad
Version: 0.0.26-3
Installed-Size: 28591
Architecture: amd64
Depends: 0ad-data (>= 0.0.26)
Description: Real-time strategy game
Tag: game::strategy, interface::graphical,
 uitoolkit::sdl
Section: games
Filename: pool/main/0/0ad/0ad_0.0.26-3_amd64.deb
Size: 7891488
MD5sum: {HMD5}
SHA256: {H256.upper()}

Package: libfoo1
Source: foo (1.2-1)
Version: 1.2-1+b1
Architecture: all
Filename: pool/main/f/foo/libfoo1_1.2-1+b1_all.deb
Size: 10
SHA1: {H1}
""".encode()


def test_binary_records() -> None:
    lines = PACKAGES.splitlines(keepends=True)
    first, second = iter_binary_files(lines, filter_fields=True)
    assert first == PoolFile(
        path="pool/main/0/0ad/0ad_0.0.26-3_amd64.deb",
        checksums=Checksums(7891488, (("SHA256", H256), ("MD5Sum", HMD5))),
        package="0ad",
        version="0.0.26-3",
        arch="amd64",
        source="0ad",
        section="games",
    )
    assert first.size == 7891488
    assert not first.is_source
    assert second.source == "foo"
    assert second.section == ""
    assert second.checksums == Checksums(10, (("SHA1", H1),))


def test_binary_records_without_filter_fields() -> None:
    plain = list(iter_binary_files([PACKAGES]))
    full = list(iter_binary_files([PACKAGES], filter_fields=True))
    assert [(r.source, r.section) for r in plain] == [("", ""), ("", "")]
    assert [r.path for r in plain] == [r.path for r in full]
    assert [r.checksums for r in plain] == [r.checksums for r in full]


def test_fast_constructors_build_equal_hashable_objects() -> None:
    (record, _) = iter_binary_files([PACKAGES], filter_fields=True)
    normal = PoolFile(
        record.path,
        Checksums(record.checksums.size, record.checksums.hashes),
        record.package,
        record.version,
        record.arch,
        record.source,
        record.section,
    )
    assert record == normal
    assert hash(record) == hash(normal)
    assert repr(record) == repr(normal)
    with pytest.raises(AttributeError):  # slotted: no stray attributes
        record.other = "x"  # type: ignore[attr-defined]


def test_md5sum_spelling_variant_and_sha512() -> None:
    data = f"Package: a\nFilename: a.deb\nSize: 1\nMD5Sum: {HMD5}\nSHA512: {'d' * 128}\n"
    (record,) = iter_binary_files([data.encode()])
    assert record.checksums.hashes == (("SHA512", "d" * 128), ("MD5Sum", HMD5))


@pytest.mark.parametrize(
    ("stanza", "message"),
    [
        (b"Package: nofile\nSize: 1\n", "'nofile'.*no Filename"),
        (b"Package: nosize\nFilename: a.deb\n", "'nosize'.*no Size"),
        (b"Package: badsize\nFilename: a.deb\nSize: 12k\n", "'badsize'.*invalid size"),
    ],
)
def test_binary_malformed(stanza: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        list(iter_binary_files([PACKAGES + b"\n" + stanza]))


@pytest.mark.parametrize(
    "filename", ["../../../../tmp/evil", "/etc/passwd", "pool/../../x", "pool/a\x1bb"]
)
def test_binary_unsafe_filename(filename: str) -> None:
    data = f"Package: evil\nFilename: {filename}\nSize: 1\n".encode()
    with pytest.raises(UnsafePathError) as info:
        list(iter_binary_files([data]))
    assert info.value.path == filename


def test_binary_filename_normalised() -> None:
    (record,) = iter_binary_files([b"Package: a\nFilename: ./pool//main/a.deb\nSize: 1\n"])
    assert record.path == "pool/main/a.deb"


SOURCES = f"""\
Package: foo
Binary: libfoo1, foo-bin
Version: 1.2-1
Section: libs
Directory: pool/main/f/foo
Files:
 {HMD5} 1000 foo_1.2-1.dsc
 {"e" * 32} 20000 foo_1.2.orig.tar.xz
Checksums-Sha1:
 {H1} 1000 foo_1.2-1.dsc
 {"f" * 40} 20000 foo_1.2.orig.tar.xz
Checksums-Sha256:
 {H256} 1000 foo_1.2-1.dsc
 {"9" * 64} 20000 foo_1.2.orig.tar.xz

Package: bar
Version: 3
Directory: pool/main/b/bar
Checksums-Sha256:
 {H256} 5 bar_3.dsc
 {"8" * 64} 6 bar_3.tar.gz
""".encode()


def test_source_records() -> None:
    records = list(iter_source_files(SOURCES.splitlines(keepends=True)))
    assert [r.path for r in records] == [
        "pool/main/f/foo/foo_1.2-1.dsc",
        "pool/main/f/foo/foo_1.2.orig.tar.xz",
        "pool/main/b/bar/bar_3.dsc",
        "pool/main/b/bar/bar_3.tar.gz",
    ]
    dsc = records[0]
    assert dsc.checksums == Checksums(1000, (("SHA256", H256), ("SHA1", H1), ("MD5Sum", HMD5)))
    assert (dsc.package, dsc.source, dsc.version, dsc.arch, dsc.section) == (
        "foo",
        "foo",
        "1.2-1",
        "source",
        "libs",
    )
    assert dsc.is_source


def test_sources_without_files_field() -> None:
    # The Perl apt-mirror skipped these (no MD5); we take Checksums-Sha256.
    bar = [r for r in iter_source_files([SOURCES]) if r.package == "bar"]
    assert [r.checksums for r in bar] == [
        Checksums(5, (("SHA256", H256),)),
        Checksums(6, (("SHA256", "8" * 64),)),
    ]


def test_sources_files_only() -> None:
    data = f"Package: old\nDirectory: pool/o\nFiles:\n {HMD5} 3 old.dsc\n".encode()
    (record,) = iter_source_files([data])
    assert record.checksums == Checksums(3, (("MD5Sum", HMD5),))


def test_sources_lists_in_any_order_and_a_name_listed_twice() -> None:
    """Hashes come strongest first whatever the order of the fields in the stanza; a name
    listed twice in one field keeps its last digest."""
    data = (
        f"Package: d\nDirectory: pool/d\nFiles:\n {HMD5} 4 d.dsc\n"
        f"Checksums-Sha256:\n {'1' * 64} 4 d.dsc\n {H256} 4 d.dsc\n"
        f"Checksums-Sha1:\n {H1} 4 d.dsc\n"
    ).encode()
    (record,) = iter_source_files([data])
    assert record.checksums == Checksums(4, (("SHA256", H256), ("SHA1", H1), ("MD5Sum", HMD5)))


def test_sources_invalid_size_names_the_file() -> None:
    data = f"Package: x\nDirectory: p\nFiles:\n {HMD5} 1x x.dsc\n".encode()
    with pytest.raises(FormatError, match=r"source 'x' Files 'x.dsc': invalid size '1x'"):
        list(iter_source_files([data]))


@pytest.mark.parametrize(
    ("stanza", "error", "message"),
    [
        (f"Package: x\nFiles:\n {HMD5} 1 x.dsc\n", FormatError, "'x'.*no Directory"),
        ("Package: x\nDirectory: pool/x\n", FormatError, "no Files"),
        (f"Package: x\nDirectory: p\nFiles:\n {HMD5} 1\n", FormatError, "Files line 1"),
        (
            f"Package: x\nDirectory: p\nFiles:\n {HMD5} 1 x.dsc\n"
            f"Checksums-Sha256:\n {H256} 2 x.dsc\n",
            FormatError,
            "size",
        ),
        ("Package: x\nDirectory: /etc\nFiles:\n {HMD5} 1 passwd\n", UnsafePathError, "absolute"),
        ("Package: x\nDirectory: pool/../..\nFiles:\n {HMD5} 1 a\n", UnsafePathError, r"'\.\.'"),
        (f"Package: x\nDirectory: pool\nFiles:\n {HMD5} 1 ../a\n", UnsafePathError, "plain"),
        (f"Package: x\nDirectory: pool\nFiles:\n {HMD5} 1 ..\n", UnsafePathError, "plain"),
    ],
)
def test_sources_malformed(stanza: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        list(iter_source_files([stanza.encode()]))


def test_sources_unsafe_directory_names_it() -> None:
    data = f"Package: x\nDirectory: /etc\nFiles:\n {HMD5} 1 passwd\n".encode()
    with pytest.raises(UnsafePathError) as info:
        list(iter_source_files([data]))
    assert info.value.path == "/etc"


def test_records_are_lazy() -> None:
    def endless() -> object:
        n = 0
        while True:
            yield b"Package: p%d\nFilename: p%d.deb\nSize: 1\n\n" % (n, n)
            n += 1

    records = iter_binary_files(endless())  # type: ignore[arg-type]
    assert next(records).package == "p0"


REAL_PACKAGES = Path(
    "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
)


@pytest.mark.skipif(
    not (REAL_PACKAGES.exists() and shutil.which("lz4")),
    reason=f"needs {REAL_PACKAGES} and the lz4 command (real Debian bookworm Packages)",
)
def test_real_bookworm_packages(tmp_path: Path) -> None:
    plain = tmp_path / "Packages"
    with plain.open("wb") as out:
        subprocess.run(["lz4", "-dc", os.fspath(REAL_PACKAGES)], stdout=out, check=True)
    with plain.open("rb") as f:
        chunks = iter(lambda: f.read(1 << 20), b"")
        records = list(iter_binary_files(iter_decompressed(chunks, "")))
    assert len(records) > 60000
    assert all(r.path.startswith("pool/") and r.path.endswith(".deb") for r in records)
    assert all(r.checksums.get("SHA256") is not None for r in records)
    assert {r.arch for r in records} == {"amd64", "all"}
    # Cross-check against the strict parser on a sample.
    with plain.open("rb") as f:
        from aptmirror.debian.deb822 import iter_paragraphs

        strict = [p for _, p in zip(range(2000), iter_paragraphs(f), strict=False)]
    for record, paragraph in zip(records, strict, strict=False):
        assert record.path == paragraph["Filename"]
        assert record.size == int(paragraph["Size"])
        assert record.checksums.get("SHA256") == paragraph["SHA256"]
        assert record.checksums.get("MD5Sum") == paragraph["MD5sum"]
