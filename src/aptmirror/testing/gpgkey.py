"""Throwaway OpenPGP signing keys for test repositories.

One job: make a short-lived ed25519 key with the real ``gpg`` binary, export it as a binary
keyring (for ``gpgv --keyring`` and apt's ``signed-by``) and an armored copy, and sign a
``Release`` file the way Debian's archive does (``InRelease`` clearsigned, ``Release.gpg``
detached and armored, SHA512 digests).

Must not import other ``aptmirror`` subpackages: ``aptmirror.testing`` is self-contained.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = ["GpgError", "TestKey", "make_key", "sign_release"]

# gpg-agent puts its socket under the homedir; UNIX socket paths are limited to ~108 bytes.
_MAX_HOMEDIR_LEN = 60


class GpgError(RuntimeError):
    """A gpg command failed; the message carries its output."""


@dataclass
class TestKey:
    """A throwaway signing key: its gpg homedir and exported public keyrings."""

    __test__ = False  # not a pytest test class

    homedir: Path
    fingerprint: str
    keyring: Path
    armored: Path
    _own_homedir: bool = False

    def close(self) -> None:
        """Stop the gpg-agent of this homedir (and remove it if it is a private temp dir)."""
        _kill_agent(self.homedir)
        if self._own_homedir:
            shutil.rmtree(self.homedir, ignore_errors=True)

    def __enter__(self) -> TestKey:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _run_gpg(homedir: Path, *args: str, stdin: bytes | None = None) -> bytes:
    cmd = [
        "gpg",
        "--batch",
        "--quiet",
        "--no-tty",
        "--homedir",
        str(homedir),
        "--pinentry-mode",
        "loopback",
        "--passphrase",
        "",
        *args,
    ]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    if proc.returncode != 0:
        raise GpgError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n"
            + proc.stderr.decode("utf-8", "replace")
        )
    return proc.stdout


def _kill_agent(homedir: Path) -> None:
    if homedir.is_dir():
        subprocess.run(
            ["gpgconf", "--homedir", str(homedir), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


def make_key(workdir: Path, name: str = "aptmirror test") -> TestKey:
    """Create an ed25519 signing key; keyrings land in ``workdir``.

    The gpg homedir is ``workdir/gnupg`` unless that path is too long for gpg-agent's socket,
    in which case a private ``/tmp/amk*`` directory is used (removed by :meth:`TestKey.close`).
    The agent is stopped before returning; signing starts a new one, which ``close()`` stops.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    homedir = (workdir / "gnupg").absolute()
    own = False
    if len(str(homedir)) > _MAX_HOMEDIR_LEN:
        homedir = Path(tempfile.mkdtemp(prefix="amk", dir="/tmp"))
        own = True
    homedir.mkdir(mode=0o700, parents=True, exist_ok=True)
    homedir.chmod(0o700)
    try:
        uid = f"{name} <test@aptmirror.invalid>"
        _run_gpg(homedir, "--quick-gen-key", uid, "ed25519", "sign", "never")
        listing = _run_gpg(homedir, "--with-colons", "--list-secret-keys").decode()
        fprs = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")]
        if not fprs:
            raise GpgError(f"no fingerprint in gpg listing:\n{listing}")
        fingerprint = fprs[-1]
        keyring = workdir / "keyring.gpg"
        keyring.write_bytes(_run_gpg(homedir, "--export", fingerprint))
        armored = workdir / "keyring.asc"
        armored.write_bytes(_run_gpg(homedir, "--armor", "--export", fingerprint))
    except BaseException:
        _kill_agent(homedir)
        if own:
            shutil.rmtree(homedir, ignore_errors=True)
        raise
    _kill_agent(homedir)
    return TestKey(homedir, fingerprint, keyring, armored, own)


def sign_release(key: TestKey, release_path: Path) -> tuple[Path, Path]:
    """Write ``InRelease`` and ``Release.gpg`` next to ``release_path``; return both paths."""
    release_path = Path(release_path)
    inrelease = release_path.with_name("InRelease")
    detached = release_path.with_name("Release.gpg")
    common = ("--yes", "--local-user", key.fingerprint, "--digest-algo", "SHA512")
    # Sign to temporary names, then rename: a concurrent reader never sees a half-written file.
    tmp_in = inrelease.with_name(".InRelease.tmp")
    tmp_det = detached.with_name(".Release.gpg.tmp")
    _run_gpg(key.homedir, *common, "--clearsign", "-o", str(tmp_in), str(release_path))
    _run_gpg(
        key.homedir, *common, "--detach-sign", "--armor", "-o", str(tmp_det), str(release_path)
    )
    os.replace(tmp_det, detached)
    os.replace(tmp_in, inrelease)
    return inrelease, detached
