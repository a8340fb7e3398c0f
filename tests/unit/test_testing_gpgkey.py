"""Tests of aptmirror.testing.gpgkey: throwaway keys verify with the real gpgv."""

from __future__ import annotations

import subprocess
from pathlib import Path

from aptmirror.testing import TestKey, make_key, sign_release


def _gpgv(keyring: Path, *files: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["gpgv", "--keyring", str(keyring), *map(str, files)], capture_output=True, check=False
    )


def test_signatures_verify_and_tampering_fails(tmp_path: Path, repo_key: TestKey) -> None:
    release = tmp_path / "Release"
    release.write_text("Origin: test\nSuite: stable\n")
    inrelease, detached = sign_release(repo_key, release)
    assert inrelease == tmp_path / "InRelease"
    assert detached == tmp_path / "Release.gpg"
    assert b"-----BEGIN PGP SIGNED MESSAGE-----" in inrelease.read_bytes()
    assert b"Hash: SHA512" in inrelease.read_bytes()
    assert _gpgv(repo_key.keyring, inrelease).returncode == 0
    assert _gpgv(repo_key.keyring, detached, release).returncode == 0

    tampered = tmp_path / "tampered"
    tampered.write_bytes(inrelease.read_bytes().replace(b"stable", b"stab1e"))
    assert _gpgv(repo_key.keyring, tampered).returncode != 0
    release.write_text("Origin: test\nSuite: unstable\n")
    assert _gpgv(repo_key.keyring, detached, release).returncode != 0


def test_keyring_files(repo_key: TestKey) -> None:
    assert len(repo_key.fingerprint) == 40
    assert repo_key.keyring.read_bytes()[:1] != b"-"  # binary, as apt's signed-by wants
    assert repo_key.armored.read_text().startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    listing = subprocess.run(
        ["gpg", "--batch", "--show-keys", "--with-colons", str(repo_key.keyring)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert repo_key.fingerprint in listing


def test_other_key_does_not_verify(tmp_path: Path, repo_key: TestKey) -> None:
    deep = tmp_path / ("x" * 80)  # too long for gpg-agent's socket: a /tmp homedir is used
    with make_key(deep, name="other") as other:
        assert str(other.homedir).startswith("/tmp/amk")
        release = tmp_path / "Release"
        release.write_text("Origin: other\n")
        inrelease, _ = sign_release(other, release)
        assert _gpgv(other.keyring, inrelease).returncode == 0
        assert _gpgv(repo_key.keyring, inrelease).returncode != 0
        homedir = other.homedir
    assert not homedir.exists()  # close() removed the private homedir
