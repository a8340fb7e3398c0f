"""Signature checks of Release files with the real ``gpgv``.

``InRelease`` is verified and its signed text is taken from gpgv's own output (never from
our parse of the armour), ``Release`` is checked against ``Release.gpg``. Keyrings come from
the repository's ``signed-by`` option, else from the system's trusted keyrings, as apt does.
Armoured ``.asc`` keyrings are dearmoured into a temporary file, as apt does, because gpgv
reads only binary keyrings; an armoured key block written inline in deb822 ``Signed-By:`` is
written to a temporary keyring the same way.

Fail closed: every error names what was checked, the key id and gpgv's reason, and says how
to fix it. (``sqv``, apt's newer verifier, is not used: gpgv is what Debian 12's apt uses.)
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aptmirror.errors import SignatureError
from aptmirror.frozen import frozen

SYSTEM_KEYRINGS: tuple[str, ...] = (
    "/etc/apt/trusted.gpg",
    "/etc/apt/trusted.gpg.d",
    "/usr/share/keyrings",
)
ARMOR_BEGIN = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
FIX_HINT = (
    "to trust the signing key add [signed-by=/path/to/key.gpg] to the deb line (Signed-By: "
    "in a .sources file), or skip the check with 'set gpg_verify off' (not recommended)"
)

#: A keyring: a file (binary or armoured), or the bytes of an inline armoured key block.
KeySource = Path | bytes


def is_inline_key(value: str) -> bool:
    """True for a ``signed-by`` value that is an armoured key block, not a path."""
    return ARMOR_BEGIN.decode() in value


def signed_by_sources(values: Sequence[str]) -> list[KeySource]:
    """Keyrings named by ``signed-by``: files (made absolute) or inline key blocks.

    A named file that does not exist is an error (apt refuses it too): silently falling
    back to fewer keys would hide a typo.
    """
    out: list[KeySource] = []
    for value in values:
        if is_fingerprint(value):
            continue  # a key pin, see pinned_fingerprints
        if is_inline_key(value):
            out.append(value.encode())
            continue
        path = Path(value)
        if not path.exists():
            raise SignatureError(f"signed-by keyring {value} does not exist")
        # Absolute: gpgv reads a bare "--keyring name.gpg" from its homedir, not the cwd.
        out.extend(p.absolute() for p in keyring_files([value]))
    return out


@frozen
class VerifiedText:
    """The signed content gpgv vouched for, and which key signed it."""

    content: bytes
    fingerprint: str
    primary: str = ""  # fingerprint of the primary key when a subkey signed


def is_fingerprint(value: str) -> bool:
    """apt's ``signed-by`` may name keys by full fingerprint (``!`` = this subkey exactly)."""
    return re.fullmatch(r"[0-9A-Fa-f]{40}!?", value.replace(" ", "")) is not None


def pinned_fingerprints(values: Sequence[str]) -> frozenset[str]:
    return frozenset(v.replace(" ", "").rstrip("!").upper() for v in values if is_fingerprint(v))


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
def _binary_keyrings(keyrings: Sequence[KeySource]) -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory(prefix="aptmirror-gpg-") as tmp:
        out: list[Path] = []
        for i, ring in enumerate(keyrings):
            if isinstance(ring, bytes):
                inline = Path(tmp) / f"{i}-inline.asc"
                inline.write_bytes(ring)
                ring = inline
            try:
                head = ring.read_bytes()[:4096]
            except OSError as exc:
                raise SignatureError(f"cannot read keyring {ring}: {exc.strerror}") from exc
            if ARMOR_BEGIN in head:
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


def _run_gpgv(args: list[str], keyrings: Sequence[KeySource], what: str) -> tuple[bytes, str, str]:
    if not keyrings:
        raise SignatureError(f"{what}: no keyring to check the signature with; {FIX_HINT}")
    with _binary_keyrings(keyrings) as rings:
        cmd = ["gpgv", "--status-fd", "2"]
        for ring in rings:
            cmd += ["--keyring", str(ring)]
        try:
            proc = subprocess.run(cmd + args, capture_output=True, check=False)
        except FileNotFoundError as exc:
            raise SignatureError("gpgv is not installed (apt-get install gpgv)") from exc
    status = proc.stderr.decode(errors="replace")
    fingerprint = primary = ""
    for line in status.splitlines():
        if line.startswith("[GNUPG:] VALIDSIG "):
            parts = line.split()
            fingerprint = parts[2]
            primary = parts[11] if len(parts) > 11 else fingerprint
    if proc.returncode != 0 or not fingerprint:
        raise SignatureError(f"{what}: signature check failed: {failure_reason(status)}")
    return proc.stdout, fingerprint, primary


def failure_reason(status: str) -> str:
    """gpgv's reason from its ``--status-fd`` output, with the key id and how to fix it."""
    for line in status.splitlines():
        parts = [*line.split(), "?", "?"]
        if line.startswith("[GNUPG:] NO_PUBKEY"):
            return f"signed by unknown key {parts[2]} (not in the keyring); {FIX_HINT}"
        if line.startswith("[GNUPG:] BADSIG"):
            return (
                f"BAD signature by key {parts[2]} (content was altered after signing, or "
                "corrupted in transit); nothing of this suite is published"
            )
        if line.startswith("[GNUPG:] EXPKEYSIG"):
            return f"signed by expired key {parts[2]}; update the keyring ({FIX_HINT})"
        if line.startswith("[GNUPG:] REVKEYSIG"):
            return f"signed by revoked key {parts[2]}"
        if line.startswith("[GNUPG:] NODATA"):
            return "no signature found (not a signed file)"
    lines = [ln for ln in status.splitlines() if not ln.startswith("[GNUPG:]")]
    return " ".join(lines).strip() or "gpgv failed"


def _looks_like_html(data: bytes) -> bool:
    head = data[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def verify_inrelease(data: bytes, keyrings: Sequence[KeySource], what: str) -> VerifiedText:
    """Verify a clearsigned InRelease; returns the signed text as gpgv extracted it."""
    with tempfile.TemporaryDirectory(prefix="aptmirror-inrel-") as tmp:
        signed = Path(tmp) / "InRelease"
        signed.write_bytes(data)
        try:
            content, fpr, primary = _run_gpgv(["--output", "-", str(signed)], keyrings, what)
        except SignatureError as exc:
            if not _looks_like_html(data):
                raise
            hint = "the server sent an HTML page (a proxy's or captive portal's?), not a Release"
            raise SignatureError(f"{exc}; {hint}") from exc
    return VerifiedText(content, fpr, primary)


def verify_detached(
    data: bytes, signature: bytes, keyrings: Sequence[KeySource], what: str
) -> VerifiedText:
    """Verify Release against Release.gpg; returns it with the signing key's fingerprint."""
    with tempfile.TemporaryDirectory(prefix="aptmirror-rel-") as tmp:
        rel = Path(tmp) / "Release"
        sig = Path(tmp) / "Release.gpg"
        rel.write_bytes(data)
        sig.write_bytes(signature)
        _, fpr, primary = _run_gpgv([str(sig), str(rel)], keyrings, what)
    return VerifiedText(data, fpr, primary)
