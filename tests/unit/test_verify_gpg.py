"""gpgv verification with real keys: binary/armoured/inline keyrings, fail-closed messages,
system keyring fallback, and the real Debian bookworm InRelease when this host has it."""

from __future__ import annotations

import glob
from dataclasses import replace
from pathlib import Path

import pytest

from aptmirror.errors import SignatureError
from aptmirror.model import Location, Settings
from aptmirror.sync.jobs import RepoJob
from aptmirror.sync.release import keyrings_for, system_keyrings, verify_release_files
from aptmirror.testing import TestKey, make_key, sign_release
from aptmirror.verify.gpg import signed_by_sources, verify_detached, verify_inrelease

TEXT = b"Origin: t\nSuite: stable\nDate: Sat, 21 Nov 2026 10:00:00 UTC\nSHA256:\n"


@pytest.fixture(scope="module")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> TestKey:
    key = make_key(tmp_path_factory.mktemp("other"))
    yield key  # type: ignore[misc]
    key.close()


@pytest.fixture
def signed(tmp_path: Path, repo_key: TestKey) -> dict[str, bytes]:
    rel = tmp_path / "Release"
    rel.write_bytes(TEXT)
    inrel, det = sign_release(repo_key, rel)
    return {"InRelease": inrel.read_bytes(), "Release": TEXT, "Release.gpg": det.read_bytes()}


def job(*signed_by: str, gpg_verify: str | None = None) -> RepoJob:
    return RepoJob(
        uri="http://h/debian/",
        dist="stable",
        components=("main",),
        arches=("amd64",),
        binary=True,
        source=False,
        signed_by=signed_by,
        locations=(Location("mirror.list", 3),),
        gpg_verify=gpg_verify,  # type: ignore[arg-type]
    )


def test_binary_keyring(signed: dict[str, bytes], repo_key: TestKey) -> None:
    out = verify_inrelease(signed["InRelease"], [repo_key.keyring], "x")
    assert out.content == TEXT
    assert out.fingerprint == repo_key.fingerprint


def test_armoured_keyring(signed: dict[str, bytes], repo_key: TestKey) -> None:
    out = verify_detached(TEXT, signed["Release.gpg"], [repo_key.armored], "x")
    assert out.fingerprint == repo_key.fingerprint and out.content == TEXT
    assert verify_inrelease(signed["InRelease"], [repo_key.armored], "x").content == TEXT


def test_inline_signed_by_block(signed: dict[str, bytes], repo_key: TestKey) -> None:
    block = repo_key.armored.read_text()
    rings = signed_by_sources([block])
    assert rings == [block.encode()]
    checked = verify_release_files(Settings(), job(block), signed)
    assert checked.text == TEXT and checked.fingerprint == repo_key.fingerprint


def test_unknown_key_names_key_and_fix(
    signed: dict[str, bytes], repo_key: TestKey, other_key: TestKey
) -> None:
    with pytest.raises(SignatureError) as err:
        verify_release_files(Settings(), job(str(other_key.keyring)), signed)
    msg = str(err.value)
    assert "http://h/debian/dists/stable (mirror.list:3) InRelease" in msg
    assert repo_key.fingerprint[-16:] in msg and "not in the keyring" in msg
    assert "[signed-by=" in msg and "set gpg_verify off" in msg


def test_tampered_is_bad_signature(signed: dict[str, bytes], repo_key: TestKey) -> None:
    data = signed["InRelease"].replace(b"Suite: stable", b"Suite: stablE")
    with pytest.raises(SignatureError, match=r"BAD signature by key [0-9A-F]{16}"):
        verify_inrelease(data, [repo_key.keyring], "x")


def test_release_gpg_missing_without_inrelease_fails(
    signed: dict[str, bytes], repo_key: TestKey
) -> None:
    with pytest.raises(SignatureError, match=r"no InRelease and no Release.gpg.*gpg_verify off"):
        verify_release_files(Settings(), job(str(repo_key.keyring)), {"Release": TEXT})


def test_unsigned_release_beside_inrelease_is_dropped(
    signed: dict[str, bytes], repo_key: TestKey
) -> None:
    data = {"InRelease": signed["InRelease"], "Release": TEXT + b"X: y\n"}
    checked = verify_release_files(Settings(), job(str(repo_key.keyring)), data)
    assert checked.drop == {"Release"} and checked.text == TEXT


def test_gpg_verify_off_per_repository(signed: dict[str, bytes]) -> None:
    checked = verify_release_files(Settings(), job(gpg_verify="off"), {"Release": TEXT})
    assert checked.text == TEXT and checked.fingerprint == ""
    off = replace(Settings(), gpg_verify="off")
    assert verify_release_files(off, job(), {"Release": TEXT}).text == TEXT
    with pytest.raises(SignatureError):  # per repository "on" beats a global "off"
        verify_release_files(off, job(gpg_verify="on"), {"Release": TEXT})


def test_signed_by_fingerprint_pins_a_system_key(
    tmp_path: Path, signed: dict[str, bytes], repo_key: TestKey, other_key: TestKey
) -> None:
    settings = replace(
        Settings(), etc_trusted=str(repo_key.keyring), etc_trusted_parts="", share_keyrings=""
    )
    ok = verify_release_files(settings, job(repo_key.fingerprint.lower()), signed)
    assert ok.fingerprint == repo_key.fingerprint
    with pytest.raises(SignatureError, match="not one of the signed-by fingerprints"):
        verify_release_files(settings, job(other_key.fingerprint), signed)


def test_missing_signed_by_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="does not exist"):
        signed_by_sources([str(tmp_path / "nope.gpg")])


def test_system_keyrings_are_configurable(
    tmp_path: Path, signed: dict[str, bytes], repo_key: TestKey, other_key: TestKey
) -> None:
    parts = tmp_path / "trusted.gpg.d"
    parts.mkdir()
    (parts / "repo.asc").write_bytes(repo_key.armored.read_bytes())
    (parts / "ignored.txt").write_text("not a keyring")
    settings = replace(
        Settings(),
        etc_trusted=str(other_key.keyring),
        etc_trusted_parts=str(parts),
        share_keyrings="",
    )
    assert system_keyrings(settings) == [other_key.keyring.absolute(), parts / "repo.asc"]
    assert keyrings_for(settings, job()) == system_keyrings(settings)
    checked = verify_release_files(settings, job(), signed)
    assert checked.fingerprint == repo_key.fingerprint
    # signed-by replaces the system keyrings entirely, as in apt
    with pytest.raises(SignatureError, match="not in the keyring"):
        verify_release_files(settings, job(str(other_key.keyring)), signed)
    nothing = replace(settings, etc_trusted="", etc_trusted_parts="")
    with pytest.raises(SignatureError, match="no keyring"):
        verify_release_files(nothing, job(), signed)


# ----------------------------------------------------------------------- the real Debian file

DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


def _debian_inrelease() -> Path | None:
    found = sorted(glob.glob("/var/lib/apt/lists/*debian*_dists_bookworm_InRelease"))
    return Path(found[0]) if found else None


@pytest.mark.skipif(
    _debian_inrelease() is None or not DEBIAN_KEYRING.is_file(),
    reason="needs /var/lib/apt/lists/*_dists_bookworm_InRelease (apt-get update on Debian 12) "
    "and /usr/share/keyrings/debian-archive-keyring.gpg (package debian-archive-keyring)",
)
def test_real_debian_bookworm_inrelease() -> None:
    """Signature only: the file may be past its Valid-Until on this host."""
    path = _debian_inrelease()
    assert path is not None
    data = path.read_bytes()
    out = verify_inrelease(data, [DEBIAN_KEYRING], str(path))
    assert b"Codename: bookworm" in out.content
    assert len(out.fingerprint) == 40
    at = data.index(b"Codename: bookworm") + len("Codename: ")
    changed = bytearray(data)
    changed[at] = ord("B")
    with pytest.raises(SignatureError, match="BAD signature"):
        verify_inrelease(bytes(changed), [DEBIAN_KEYRING], str(path))
