"""Tests of aptmirror.testing.repo: the sample repository is complete and self-consistent."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aptmirror.testing import (
    PackageSpec,
    RepoInfo,
    TestKey,
    build_repo,
    bump_version,
    update_repo,
)

_DECOMPRESS = {".gz": gzip.decompress, ".xz": lzma.decompress, ".bz2": bz2.decompress}


def _release_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith(" "):
            fields[name] += "\n" + line.strip()
        elif line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def _release_files(release: Path, field: str) -> dict[str, tuple[int, str]]:
    out = {}
    for line in _release_fields(release.read_text())[field].splitlines()[1:]:
        digest, size, name = line.split()
        out[name] = (int(size), digest)
    return out


def _stanzas(data: bytes) -> list[dict[str, str]]:
    return [_release_fields(chunk) for chunk in data.decode().split("\n\n") if chunk.strip()]


def test_release_hashes_match_files(sample_repo: RepoInfo) -> None:
    dist = sample_repo.dist_dir
    sha = _release_files(sample_repo.release, "SHA256")
    md5 = _release_files(sample_repo.release, "MD5Sum")
    assert sha.keys() == md5.keys()
    listed = {f"dists/stable/{name}" for name in sha}
    assert listed == set(sample_repo.indexes) | set(sample_repo.listed_only)
    for name, (size, digest) in sha.items():
        path = dist / name
        if path.exists():
            data = path.read_bytes()
        else:  # listed uncompressed variant: check against the compressed one
            assert f"dists/stable/{name}" in sample_repo.listed_only
            ext = next(e for e in (".gz", ".xz", ".bz2") if (dist / (name + e)).exists())
            data = _DECOMPRESS[ext]((dist / (name + ext)).read_bytes())
        assert len(data) == size, name
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert hashlib.md5(data).hexdigest() == md5[name][1], name


def test_release_header_and_layout(sample_repo: RepoInfo) -> None:
    fields = _release_fields(sample_repo.release.read_text())
    assert fields["Suite"] == "stable"
    assert fields["Codename"] == "bookworm"
    assert fields["Components"] == "main contrib"
    assert fields["Architectures"] == "all amd64 i386"
    assert fields["Acquire-By-Hash"] == "yes"
    assert fields["Date"].endswith(" UTC")
    assert "Valid-Until" not in fields
    names = set(_release_files(sample_repo.release, "SHA256"))
    for expected in (
        "main/binary-amd64/Packages.xz",
        "main/binary-i386/Packages.gz",
        "main/binary-all/Packages",
        "main/binary-amd64/Release",
        "contrib/source/Sources.xz",
        "main/i18n/Translation-en.bz2",
        "main/i18n/Translation-en.xz",
        "main/i18n/Translation-en",  # listed only, like Debian
        "main/Contents-amd64.gz",
        "Contents-i386.gz",
        "main/dep11/Components-amd64.yml.gz",
        "main/dep11/icons-64x64.tar.gz",
        "main/dep11/icons-64x64@2.tar.gz",
        "contrib/cnf/Commands-i386.xz",
    ):
        assert expected in names
    assert not (sample_repo.dist_dir / "main/i18n/Translation-en").exists()
    for sibling in (sample_repo.inrelease, sample_repo.release_gpg):
        assert sibling.is_file()


def test_by_hash_objects(sample_repo: RepoInfo) -> None:
    dist = sample_repo.dist_dir
    sha = _release_files(sample_repo.release, "SHA256")
    md5 = _release_files(sample_repo.release, "MD5Sum")
    for name in sha:
        if name.endswith("/Release") or not (dist / name).exists():
            continue
        parent = (dist / name).parent
        assert (parent / "by-hash/SHA256" / sha[name][1]).read_bytes() == (dist / name).read_bytes()
        assert (parent / "by-hash/MD5Sum" / md5[name][1]).is_file()
    assert all((sample_repo.root / p).is_file() for p in sample_repo.by_hash)


def test_packages_match_pool(sample_repo: RepoInfo) -> None:
    dist = sample_repo.dist_dir
    amd64 = _stanzas(lzma.decompress((dist / "main/binary-amd64/Packages.xz").read_bytes()))
    assert (dist / "main/binary-amd64/Packages").read_bytes() == gzip.decompress(
        (dist / "main/binary-amd64/Packages.gz").read_bytes()
    )
    names = {(s["Package"], s["Architecture"]) for s in amd64}
    # arch-specific + "all" packages of the component, nothing from i386 or contrib
    assert names == {
        ("hello", "amd64"),
        ("hello-doc", "all"),
        ("lib+plus", "amd64"),
        ("epoch-tool", "amd64"),
        ("native-data", "all"),
    }
    all_only = _stanzas((dist / "main/binary-all/Packages").read_bytes())
    assert {s["Package"] for s in all_only} == {"hello-doc", "native-data"}
    for s in amd64:
        pool = sample_repo.root / s["Filename"]
        data = pool.read_bytes()
        assert int(s["Size"]) == len(data)
        assert s["SHA256"] == hashlib.sha256(data).hexdigest()
        assert s["MD5sum"] == hashlib.md5(data).hexdigest()
    lib = next(s for s in amd64 if s["Package"] == "lib+plus")
    assert lib["Filename"] == "pool/main/lib+/lib+plus/lib+plus_1.0~rc1+dfsg-1_amd64.deb"
    assert lib["Version"] == "1.0~rc1+dfsg-1"
    epoch = next(s for s in amd64 if s["Package"] == "epoch-tool")
    assert epoch["Filename"].endswith("/epoch-tool_0.9.1-2_amd64.deb")
    contrib = _stanzas((dist / "contrib/binary-i386/Packages").read_bytes())
    assert {s["Section"] for s in contrib} == {"contrib/misc"}


def test_debs_are_real(sample_repo: RepoInfo) -> None:
    pkg = sample_repo.package("lib+plus", "i386")
    deb = sample_repo.root / pkg.filename
    out = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Version", "Architecture"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == [
        *("Package:", "lib+plus"),
        *("Version:", "1.0~rc1+dfsg-1"),
        *("Architecture:", "i386"),
    ]
    assert 2048 < pkg.size < 2048 + 2048  # incompressible payload, ~1 KiB of overhead
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./usr/share/doc/lib+plus/payload" in listing


def test_sources_translations_contents(sample_repo: RepoInfo) -> None:
    dist = sample_repo.dist_dir
    sources = _stanzas(gzip.decompress((dist / "main/source/Sources.gz").read_bytes()))
    hello = next(s for s in sources if s["Package"] == "hello")
    assert hello["Binary"] == "hello, hello-doc"
    assert hello["Directory"] == "pool/main/h/hello"
    for line in hello["Checksums-Sha256"].splitlines()[1:]:
        digest, size, name = line.split()
        data = (sample_repo.root / hello["Directory"] / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (int(size), digest)
    assert len(hello["Files"].splitlines()) == 4  # "" + dsc, orig, debian
    native = next(s for s in sources if s["Package"] == "native-data")
    assert len(native["Files"].splitlines()) == 3  # "" + dsc, tar.xz

    tr = _stanzas(bz2.decompress((dist / "main/i18n/Translation-en.bz2").read_bytes()))
    packages = _stanzas((dist / "main/binary-amd64/Packages").read_bytes())
    md5s = {s["Package"]: s["Description-md5"] for s in packages}
    assert {s["Package"]: s["Description-md5"] for s in tr if s["Package"] in md5s} == md5s

    contents = gzip.decompress((dist / "main/Contents-amd64.gz").read_bytes()).decode()
    assert "usr/share/doc/hello/payload" in contents
    assert "misc/hello" in contents
    suite_contents = gzip.decompress((dist / "Contents-amd64.gz").read_bytes()).decode()
    assert "contrib/misc/contrib-tool" in suite_contents


def test_options(tmp_path: Path, repo_key: TestKey) -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    info = build_repo(
        tmp_path / "r",
        repo_key,
        suite="testing",
        codename="trixie",
        components=("main",),
        arches=("amd64",),
        packages=[PackageSpec("big", "1.0-1", "amd64", size=100_000)],
        sources_without_files=True,
        by_hash=False,
        compressions=(".gz",),
        contents=False,
        translations=False,
        dep11=False,
        cnf=False,
        real_debs=False,
        valid_until=until,
        release_hashes=("SHA512",),
        codename_symlink=True,
    )
    fields = _release_fields(info.release.read_text())
    assert fields["Valid-Until"] == "Wed, 02 Jan 2030 03:04:05 UTC"
    assert "Acquire-By-Hash" not in fields and "MD5Sum" not in fields
    assert set(_release_files(info.release, "SHA512")) == {
        "main/binary-amd64/Packages",
        "main/binary-amd64/Packages.gz",
        "main/binary-amd64/Release",
        "main/binary-all/Packages",
        "main/binary-all/Packages.gz",
        "main/binary-all/Release",
        "main/source/Sources",
        "main/source/Sources.gz",
        "main/source/Release",
    }
    assert not list(info.dist_dir.rglob("by-hash"))
    assert (tmp_path / "r/dists/trixie").resolve() == info.dist_dir.resolve()
    assert info.package("big").size == 100_000  # random bytes, not a .deb
    src = _stanzas(gzip.decompress((info.dist_dir / "main/source/Sources.gz").read_bytes()))
    assert "Files" not in src[0] and "Checksums-Sha256" in src[0]


def test_flat_repo(tmp_path: Path, repo_key: TestKey) -> None:
    info = build_repo(tmp_path / "r", repo_key, flat=True, flat_dir="debs")
    assert info.dist_dir == tmp_path / "r/debs"
    stanzas = _stanzas((info.dist_dir / "Packages").read_bytes())
    assert all(s["Filename"].startswith("debs/") for s in stanzas)
    assert all((info.root / s["Filename"]).is_file() for s in stanzas)
    fields = _release_fields(info.release.read_text())
    assert fields["Suite"] == "debs" and "Components" not in fields
    assert info.deb_line("http://h/").startswith("deb [signed-by=")
    assert info.deb_line("http://h/").endswith(" http://h/ debs/")


def test_update_repo(tmp_path: Path, repo_key: TestKey) -> None:
    info = build_repo(tmp_path / "r", repo_key, date=datetime(2024, 1, 1, tzinfo=UTC))
    old_hello = info.package("hello", "amd64")
    old_lib = info.package("lib+plus", "amd64")
    old_release = info.release.read_bytes()
    new = update_repo(
        info,
        repo_key,
        bump=["hello"],
        add=[PackageSpec("newpkg", "0.1-1", "i386")],
        remove=["lib+plus"],
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
    )
    assert new.release.read_bytes() != old_release
    assert new.date > info.date
    assert new.package("hello", "amd64").spec.version == "2.10-3+upd1"
    assert (new.root / old_hello.filename).is_file()  # old pool file kept
    assert not (new.root / old_lib.filename).exists()  # removed
    assert not any(s.name == "lib+plus" for s in new.sources)
    assert new.package("newpkg").filename == "pool/main/n/newpkg/newpkg_0.1-1_i386.deb"
    assert set(info.by_hash) <= set(new.by_hash)
    assert all((new.root / p).is_file() for p in new.by_hash)
    packages = (new.dist_dir / "main/binary-amd64/Packages").read_text()
    assert "2.10-3+upd1" in packages and "lib+plus" not in packages
    assert "Valid-Until: Wed, 01 Jan 2031" in new.release.read_text()
    test_release_hashes_match_files(new)
    assert bump_version("1-1+upd9") == "1-1+upd10"


def test_default_build_is_fast(tmp_path: Path, repo_key: TestKey) -> None:
    start = time.monotonic()
    build_repo(tmp_path / "r", repo_key)
    assert time.monotonic() - start < 3.0


def test_deterministic_pool(tmp_path: Path, repo_key: TestKey) -> None:
    a = build_repo(tmp_path / "a", repo_key, date=datetime.now(UTC) - timedelta(days=1))
    b = build_repo(tmp_path / "b", repo_key)
    assert [(p.filename, p.sha256) for p in a.packages] == [
        (p.filename, p.sha256) for p in b.packages
    ]
