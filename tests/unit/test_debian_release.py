"""Release parsing and InRelease clearsign stripping."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aptmirror.debian.release import looks_like_release, parse_release, strip_clearsign
from aptmirror.errors import FormatError, UnsafePathError
from aptmirror.model import Checksums


def digests(data: bytes) -> dict[str, str]:
    return {
        "MD5Sum": hashlib.md5(data).hexdigest(),
        "SHA1": hashlib.sha1(data).hexdigest(),
        "SHA256": hashlib.sha256(data).hexdigest(),
        "SHA512": hashlib.sha512(data).hexdigest(),
    }


PKG = digests(b"packages")
PKG_XZ = digests(b"packages.xz")

RELEASE = f"""\
Origin: Debian
Label: Debian
Suite: stable
Version: 12.5
Codename: bookworm
Date: Sat, 10 Feb 2024 10:06:03 UTC
Valid-Until: Sat, 17 Feb 2024 10:06:03 +0100
Acquire-By-Hash: yes
Architectures: all amd64 arm64
Components: main contrib
Description: Debian 12.5 Released 10 February 2024
 with a continuation line
MD5Sum:
 {PKG["MD5Sum"]}      8 main/binary-amd64/Packages
 {PKG_XZ["MD5Sum"]}     11 main/binary-amd64/Packages.xz
SHA1:
 {PKG["SHA1"]}      8 main/binary-amd64/Packages
SHA256:
 {PKG["SHA256"]}      8 main/binary-amd64/Packages
 {PKG_XZ["SHA256"]}     11 main/binary-amd64/Packages.xz
SHA512:
 {PKG["SHA512"].upper()}      8 main/binary-amd64/Packages
"""


def test_parse_release_fields() -> None:
    release = parse_release(RELEASE)
    assert release.suite == "stable"
    assert release.codename == "bookworm"
    assert release.date == datetime(2024, 2, 10, 10, 6, 3, tzinfo=UTC)
    assert release.valid_until == datetime(
        2024, 2, 17, 10, 6, 3, tzinfo=timezone(timedelta(hours=1))
    )
    assert release.acquire_by_hash is True
    assert release.architectures == ("all", "amd64", "arm64")
    assert release.components == ("main", "contrib")
    assert release.get("origin") == "Debian"
    assert (
        release.get("Description")
        == "Debian 12.5 Released 10 February 2024\nwith a continuation line"
    )
    assert release.get("Missing") is None
    assert all(name not in ("MD5Sum", "SHA256") for name, _ in release.fields)


def test_parse_release_merges_all_hash_sections() -> None:
    files = parse_release(RELEASE).files
    assert list(files) == ["main/binary-amd64/Packages", "main/binary-amd64/Packages.xz"]
    packages = files["main/binary-amd64/Packages"]
    assert packages == Checksums(
        8,
        (
            ("SHA512", PKG["SHA512"]),  # lower-cased
            ("SHA256", PKG["SHA256"]),
            ("SHA1", PKG["SHA1"]),
            ("MD5Sum", PKG["MD5Sum"]),
        ),
    )
    assert packages.strongest() == ("SHA512", PKG["SHA512"])
    xz = files["main/binary-amd64/Packages.xz"]
    assert xz.hashes == (("SHA256", PKG_XZ["SHA256"]), ("MD5Sum", PKG_XZ["MD5Sum"]))


def test_by_hash_absent_or_no() -> None:
    assert (
        parse_release(
            RELEASE.replace("Acquire-By-Hash: yes", "Acquire-By-Hash: no")
        ).acquire_by_hash
        is False
    )
    without = RELEASE.replace("Acquire-By-Hash: yes\n", "")
    assert parse_release(without).acquire_by_hash is False


def test_no_date() -> None:
    text = RELEASE.replace("Date: Sat, 10 Feb 2024 10:06:03 UTC\n", "")
    assert parse_release(text).date is None


def test_naive_date_becomes_utc() -> None:
    text = RELEASE.replace("10:06:03 UTC", "10:06:03 -0000")
    assert parse_release(text).date == datetime(2024, 2, 10, 10, 6, 3, tzinfo=UTC)


def test_invalid_date() -> None:
    with pytest.raises(FormatError, match="Date"):
        parse_release(RELEASE.replace("Sat, 10 Feb 2024 10:06:03 UTC", "yesterday"))


def test_malformed_checksum_line_names_section_and_line() -> None:
    text = RELEASE.replace(
        f" {PKG['SHA1']}      8 main/binary-amd64/Packages",
        f" {PKG['SHA1']}      8 main/binary-amd64/Packages extra",
    )
    lineno = text.splitlines().index(f" {PKG['SHA1']}      8 main/binary-amd64/Packages extra") + 1
    with pytest.raises(FormatError, match=rf"SHA1 section, line {lineno}: expected"):
        parse_release(text)


def test_too_few_fields() -> None:
    text = RELEASE.replace(f" {PKG['SHA1']}      8 main", f" {PKG['SHA1']} main")
    with pytest.raises(FormatError, match="SHA1 section"):
        parse_release(text)


def test_size_conflict() -> None:
    text = RELEASE.replace(f" {PKG['SHA1']}      8 ", f" {PKG['SHA1']}      9 ")
    with pytest.raises(FormatError, match="size"):
        parse_release(text)


def test_invalid_digest_and_size() -> None:
    with pytest.raises(FormatError, match="invalid digest"):
        parse_release(RELEASE.replace(PKG["SHA1"], "zz" * 20))
    with pytest.raises(FormatError, match="invalid digest"):
        parse_release(RELEASE.replace(PKG["SHA1"], PKG["SHA1"][:-1]))
    with pytest.raises(FormatError, match="invalid size"):
        parse_release(RELEASE.replace(f" {PKG['SHA1']}      8 ", f" {PKG['SHA1']}     -8 "))


def test_unsafe_path_in_release() -> None:
    text = RELEASE.replace(
        f" {PKG['SHA1']}      8 main/binary-amd64/Packages",
        f" {PKG['SHA1']}      8 ../../etc/passwd",
    )
    with pytest.raises(UnsafePathError):
        parse_release(text)


def test_release_paths_are_normalised() -> None:
    text = RELEASE.replace("8 main/binary-amd64/Packages\n", "8 ./main//binary-amd64/Packages\n")
    assert "main/binary-amd64/Packages" in parse_release(text).files


def test_not_a_release() -> None:
    html = "<!DOCTYPE html>\n<html><body>Login required</body></html>\n"
    assert not looks_like_release(html)
    with pytest.raises(FormatError, match="not a Release file"):
        parse_release(html)
    no_hashes = "Suite: stable\nCodename: bookworm\n"
    assert not looks_like_release(no_hashes)
    with pytest.raises(FormatError, match="not a Release file"):
        parse_release(no_hashes)
    assert looks_like_release(RELEASE)


def test_flat_release_without_suite() -> None:
    # what `apt-ftparchive release .` writes for a flat repository
    text = f"Date: Sat, 10 Feb 2024 10:06:03 UTC\nSHA256:\n {PKG['SHA256']} 8 Packages\n"
    release = parse_release(text)
    assert release.suite is None and release.codename is None
    assert list(release.files) == ["Packages"]


def test_only_first_paragraph_and_comments() -> None:
    text = "# comment\n\n" + RELEASE + "\nSuite: other\n"
    assert parse_release(text).suite == "stable"


def test_release_crlf() -> None:
    assert parse_release(RELEASE.replace("\n", "\r\n")).files == parse_release(RELEASE).files


def test_release_garbage_line() -> None:
    with pytest.raises(FormatError, match="line 2"):
        parse_release("Suite: x\nthis is not a field\nSHA256:\n")


# ------------------------------------------------------------------ clearsign

SIGNATURE = (
    b"-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAdFiEE...\n=AfjX\n-----END PGP SIGNATURE-----\n"
)


def clearsigned(body: bytes, headers: bytes = b"Hash: SHA256\n") -> bytes:
    return b"-----BEGIN PGP SIGNED MESSAGE-----\n" + headers + b"\n" + body + SIGNATURE


def test_strip_clearsign_roundtrip() -> None:
    body = RELEASE.encode()
    assert strip_clearsign(clearsigned(body)) == body
    assert parse_release(strip_clearsign(clearsigned(body)).decode()).suite == "stable"


def test_strip_clearsign_dash_escaping() -> None:
    body = b"Suite: x\n- -----BEGIN PGP SIGNATURE-----\n- - dashed\nEnd: 1\n"
    assert strip_clearsign(clearsigned(body)) == (
        b"Suite: x\n-----BEGIN PGP SIGNATURE-----\n- dashed\nEnd: 1\n"
    )


def test_strip_clearsign_crlf_and_several_hash_headers() -> None:
    data = clearsigned(b"Suite: x\n", b"Hash: SHA256\nHash: SHA512\n").replace(b"\n", b"\r\n")
    assert strip_clearsign(data) == b"Suite: x\n"


def test_strip_clearsign_leading_blank_lines_and_trailing_blank() -> None:
    assert strip_clearsign(b"\n\n" + clearsigned(b"A: 1\n") + b"\n\n") == b"A: 1\n"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><head><title>Captive portal</title></head></html>\n",
        RELEASE.encode(),  # a plain Release is not a clearsigned message
        b"",
        b"junk\n" + clearsigned(b"A: 1\n"),  # text before the armor
        clearsigned(b"A: 1\n") + b"Suite: injected\n",  # text after the signature
        clearsigned(b"A: 1\n", b"Not a header line\n"),
        clearsigned(b"A: 1\n-----BEGIN PGP SIGNED MESSAGE-----\n"),  # unescaped armor
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nA: 1\n",  # no signature
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n",  # ends in headers
        clearsigned(b"A: 1\n").replace(b"-----END PGP SIGNATURE-----\n", b""),
        clearsigned(b"A: 1\n") + clearsigned(b"B: 2\n"),  # two messages
    ],
)
def test_strip_clearsign_rejects(data: bytes) -> None:
    with pytest.raises(FormatError):
        strip_clearsign(data)
