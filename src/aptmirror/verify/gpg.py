"""Signature checks of Release files with the real ``gpgv``.

``InRelease`` is verified and its signed text is taken from gpgv's own output (never from
our parse of the armour), ``Release`` is checked against ``Release.gpg``. Keyrings come from
the repository's ``signed-by`` option, else from the system's trusted keyrings, as apt does.
Armoured ``.asc`` keyrings are dearmoured into a temporary file, as apt does, because gpgv
reads only binary keyrings.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aptmirror.errors import SignatureError

SYSTEM_KEYRINGS: tuple[str, ...] = (
    "/etc/apt/trusted.gpg",
    "/etc/apt/trusted.gpg.d",
    "/usr/share/keyrings",
)


@dataclass(frozen=True, slots=True)
class VerifiedText:
    """The signed content gpgv vouched for, and which key signed it."""

    content: bytes
    fingerprint: str


def keyring_files(paths: Sequence[str]) -> list[Path]:
    """Expand directories into their ``*.gpg``/``*.asc`` files; keep existing files only."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".gpg", ".asc")))
        elif path.is_file():
            found.append(path)
    return found


@contextmanager
def _binary_keyrings(keyrings: Sequence[Path]) -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory(prefix="aptmirror-gpg-") as tmp:
        out: list[Path] = []
        for i, ring in enumerate(keyrings):
            data = ring.read_bytes()
            if b"-----BEGIN PGP PUBLIC KEY BLOCK-----" in data[:200]:
                target = Path(tmp) / f"{i}.gpg"
                _dearmor(ring, target)
                out.append(target)
            else:
                out.append(ring)
        yield out


def _dearmor(src: Path, dest: Path) -> None:
    proc = subprocess.run(
        ["gpg", "--batch", "--no-options", "--yes", "--output", str(dest), "--dearmor", str(src)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SignatureError(f"cannot read keyring {src}: {proc.stderr.decode(errors='replace')}")


def _run_gpgv(args: list[str], keyrings: Sequence[Path], what: str) -> tuple[bytes, str]:
    if not keyrings:
        raise SignatureError(
            f"{what}: no keyring to check the signature with; add [signed-by=/path/key.gpg] "
            "to the deb line or 'set gpg_verify off'"
        )
    with _binary_keyrings(keyrings) as rings:
        cmd = ["gpgv", "--status-fd", "2"]
        for ring in rings:
            cmd += ["--keyring", str(ring)]
        try:
            proc = subprocess.run(cmd + args, capture_output=True, check=False)
        except FileNotFoundError as exc:
            raise SignatureError("gpgv is not installed (apt-get install gpgv)") from exc
    status = proc.stderr.decode(errors="replace")
    fingerprint = ""
    for line in status.splitlines():
        if line.startswith("[GNUPG:] VALIDSIG "):
            fingerprint = line.split()[2]
    if proc.returncode != 0 or not fingerprint:
        raise SignatureError(f"{what}: signature check failed: {_reason(status)}")
    return proc.stdout, fingerprint


def _reason(status: str) -> str:
    for line in status.splitlines():
        parts = line.split()
        if line.startswith("[GNUPG:] NO_PUBKEY"):
            return f"signed by unknown key {parts[2]} (not in the keyring)"
        if line.startswith("[GNUPG:] BADSIG"):
            return f"BAD signature by key {parts[2]} (content was altered)"
        if line.startswith("[GNUPG:] EXPKEYSIG"):
            return f"signed by expired key {parts[2]}"
        if line.startswith("[GNUPG:] NODATA"):
            return "no signature found (not a signed file)"
    lines = [ln for ln in status.splitlines() if not ln.startswith("[GNUPG:]")]
    return " ".join(lines).strip() or "gpgv failed"


def verify_inrelease(data: bytes, keyrings: Sequence[Path], what: str) -> VerifiedText:
    """Verify a clearsigned InRelease; returns the signed text as gpgv extracted it."""
    with tempfile.TemporaryDirectory(prefix="aptmirror-inrel-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        content, fpr = _run_gpgv(["--output", "-", str(signed)], keyrings, what)
    return VerifiedText(content, fpr)


def verify_detached(data: bytes, signature: bytes, keyrings: Sequence[Path], what: str) -> str:
    """Verify Release against Release.gpg; returns the signing key's fingerprint."""
    with tempfile.TemporaryDirectory(prefix="aptmirror-rel-") as tmp:
        rel = Path(tmp) / "Release"
        sig = Path(tmp) / "Release.gpg"
        rel.write_bytes(data)
        sig.write_bytes(signature)
        _, fpr = _run_gpgv([str(sig), str(rel)], keyrings, what)
    return fpr
