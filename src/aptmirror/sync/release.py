"""Stage 1: fetch a suite's InRelease (else Release + Release.gpg) and verify it with gpgv.

Nothing of the suite is trusted before this succeeds; the parsed Release then decides every
other file of the suite.
"""

from __future__ import annotations

import filecmp
from dataclasses import dataclass
from pathlib import Path

from aptmirror.debian.release import Release, parse_release
from aptmirror.errors import FetchError, FormatError, SignatureError
from aptmirror.fetch.fetcher import FetchRequest, Outcome
from aptmirror.sync.context import RunContext
from aptmirror.sync.jobs import RepoJob
from aptmirror.verify.gpg import (
    SYSTEM_KEYRINGS,
    keyring_files,
    verify_detached,
    verify_inrelease,
)

RELEASE_FILES = ("InRelease", "Release", "Release.gpg")


@dataclass(frozen=True, slots=True)
class VerifiedRelease:
    job: RepoJob
    release: Release
    files: dict[str, Path]  # present Release files: name -> staged path in skel
    fingerprint: str


async def _fetch_optional(ctx: RunContext, job: RepoJob, name: str, dest: Path) -> bool:
    req = FetchRequest(job.url(name), dest, None, optional=True, max_size=64 * 1024 * 1024)
    result = await ctx.fetcher.fetch(req)
    return result.outcome is Outcome.DOWNLOADED


def _keyrings(job: RepoJob) -> list[Path]:
    # Absolute: gpgv reads a bare "--keyring name.gpg" from its homedir, not from the cwd.
    return [p.absolute() for p in keyring_files(job.signed_by or SYSTEM_KEYRINGS)]


def _verify(ctx: RunContext, job: RepoJob, staged: dict[str, Path]) -> tuple[bytes, str]:
    """Return (Release text, signing fingerprint) or raise SignatureError/FormatError."""
    what = f"{job.name} ({', '.join(str(loc) for loc in job.locations)})"
    check = ctx.settings.gpg_verify != "off"
    rings = _keyrings(job) if check else []
    text: bytes | None = None
    fingerprint = ""
    if "InRelease" in staged:
        data = staged["InRelease"].read_bytes()
        if check:
            verified = verify_inrelease(data, rings, f"{what} InRelease")
            text, fingerprint = verified.content, verified.fingerprint
        else:
            from aptmirror.debian.release import strip_clearsign

            text = strip_clearsign(data)
    if "Release" in staged:
        data = staged["Release"].read_bytes()
        if check and "Release.gpg" in staged:
            sig = staged["Release.gpg"].read_bytes()
            fingerprint = verify_detached(data, sig, rings, f"{what} Release")
        elif check and text is None:
            raise SignatureError(f"{what}: no InRelease and no Release.gpg, cannot verify")
        elif check and data != text:
            # Unsigned and not the signed InRelease text: never publish it.
            staged.pop("Release").unlink()
        if text is None:
            text = data
    if text is None:
        raise FormatError(f"{what}: neither InRelease nor Release exists upstream")
    return text, fingerprint


async def fetch_release(ctx: RunContext, job: RepoJob) -> VerifiedRelease | None:
    """Fetch and verify; on failure record it in ``ctx`` and return None."""
    suite_skel = ctx.skel / ctx.suite_rel(job)
    staged: dict[str, Path] = {}
    try:
        for name in RELEASE_FILES:
            dest = suite_skel / f".{name}.new"
            if await _fetch_optional(ctx, job, name, dest):
                staged[name] = dest
        text, fingerprint = _verify(ctx, job, staged)
        release = parse_release(text.decode("utf-8", errors="replace"))
    except (FetchError, SignatureError, FormatError) as exc:
        if isinstance(exc, FetchError):
            ctx.fail(job, exc.url, exc.reason)
        else:
            ctx.fail(job, job.url("InRelease"), str(exc))
        for path in staged.values():
            path.unlink(missing_ok=True)
        return None
    if ctx.settings.gpg_verify == "off":
        ctx.warn(f"{job.name}: signature NOT checked (gpg_verify off)")
    final: dict[str, Path] = {}
    for name, path in staged.items():
        target = suite_skel / name
        if target.is_file() and filecmp.cmp(path, target, shallow=False):
            path.unlink()  # unchanged: keep the old inode, so the suite is not republished
        else:
            path.replace(target)
        final[name] = target
    for name in RELEASE_FILES:
        if name not in final:
            (suite_skel / name).unlink(missing_ok=True)
    return VerifiedRelease(job, release, final, fingerprint)
