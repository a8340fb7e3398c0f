"""Stage 1: fetch a suite's InRelease (else Release + Release.gpg), verify it with gpgv,
then check it is sane (not expired, not older than the published one, for the suite asked).

Nothing of the suite is trusted before this succeeds; the parsed Release then decides every
other file of the suite. :func:`verify_release_files` and :func:`keyrings_for` are shared
with ``apt-mirror verify``, which re-checks the published Release files the same way.
"""

from __future__ import annotations

import asyncio
import filecmp
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from aptmirror.debian.release import Release, parse_release, strip_clearsign
from aptmirror.errors import FetchError, FormatError, SignatureError
from aptmirror.fetch.fetcher import FetchRequest, Outcome
from aptmirror.frozen import frozen
from aptmirror.model import HASH_NAMES, Settings
from aptmirror.storage.safety import ensure_inside
from aptmirror.sync.context import RunContext
from aptmirror.sync.jobs import RepoJob
from aptmirror.verify.gpg import (
    KeySource,
    VerifiedText,
    keyring_files,
    pinned_fingerprints,
    signed_by_sources,
    verify_detached,
    verify_inrelease,
)
from aptmirror.verify.sanity import check_release

RELEASE_FILES = ("InRelease", "Release", "Release.gpg")
WEAK_HASHES = frozenset(HASH_NAMES[2:])  # SHA1, MD5Sum


@frozen
class VerifiedRelease:
    job: RepoJob
    release: Release
    files: dict[str, Path]  # present Release files: name -> staged path in skel
    fingerprint: str


@frozen
class CheckedText:
    """The Release text to trust, who signed it, and Release files not to publish."""

    text: bytes
    fingerprint: str  # "" when the signature was not checked
    drop: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


async def _fetch_optional(ctx: RunContext, job: RepoJob, name: str, dest: Path) -> bool:
    req = FetchRequest(job.url(name), dest, None, optional=True, max_size=64 * 1024 * 1024)
    result = await ctx.fetcher.fetch(req)
    return result.outcome is Outcome.DOWNLOADED


def gpg_check_enabled(settings: Settings, job: RepoJob) -> bool:
    """The repository's own ``gpg_verify`` if given, else the global one."""
    return (job.gpg_verify or settings.gpg_verify) != "off"


def system_keyrings(settings: Settings) -> list[Path]:
    """apt's trusted keyrings (configurable; an empty setting drops that place)."""
    places = [settings.etc_trusted, settings.etc_trusted_parts, settings.share_keyrings]
    return [p.absolute() for p in keyring_files([p for p in places if p])]


def keyrings_for(settings: Settings, job: RepoJob) -> list[KeySource]:
    """The line's ``signed-by`` keyrings; only without one, the system's trusted keyrings.

    ``signed-by`` naming fingerprints only (as apt allows) means: the system's keyrings,
    but only those keys may have signed (see :func:`_check_pins`).
    """
    own = signed_by_sources(job.signed_by)
    return own if own else list(system_keyrings(settings))


def _check_pins(job: RepoJob, signer: VerifiedText, what: str) -> None:
    pins = pinned_fingerprints(job.signed_by)
    if pins and not {signer.fingerprint.upper(), signer.primary.upper()} & pins:
        raise SignatureError(
            f"{what}: signed by key {signer.fingerprint}, which is not one of the signed-by "
            f"fingerprints ({', '.join(sorted(pins))})"
        )


def describe(job: RepoJob) -> str:
    return f"{job.name} ({', '.join(str(loc) for loc in job.locations)})"


def verify_release_files(
    settings: Settings, job: RepoJob, data: Mapping[str, bytes]
) -> CheckedText:
    """Check the Release files present (name -> bytes); raise SignatureError/FormatError."""
    what = describe(job)
    check = gpg_check_enabled(settings, job)
    rings = keyrings_for(settings, job) if check else []
    text: bytes | None = None
    fingerprint = ""
    drop: set[str] = set()
    companion: Future[VerifiedText] | None = None
    if "InRelease" in data:
        if check:
            with ThreadPoolExecutor(1) as pool:
                if "Release" in data and "Release.gpg" in data:  # checked meanwhile
                    companion = pool.submit(
                        verify_detached,
                        data["Release"],
                        data["Release.gpg"],
                        rings,
                        f"{what} Release",
                    )
                verified = verify_inrelease(data["InRelease"], rings, f"{what} InRelease")
                _check_pins(job, verified, f"{what} InRelease")
                text, fingerprint = verified.content, verified.fingerprint
        else:
            text = strip_clearsign(data["InRelease"])
    if "Release" in data and text is not None:
        # InRelease decides. Release + Release.gpg are published beside it only when they
        # carry the same text (upstream may have changed between the fetches) and, when
        # checked, a valid signature (a stale or rotated-key Release.gpg is apt's problem no
        # more than ours: apt reads InRelease first).
        reason = _companion_problem(data, text, rings if check else None, job, what, companion)
        if reason is not None:
            drop.update(name for name in ("Release", "Release.gpg") if name in data)
            return CheckedText(text, fingerprint, frozenset(drop), (reason,))
        return CheckedText(text, fingerprint, frozenset(drop))
    if "Release" in data:
        plain = data["Release"]
        if check and "Release.gpg" in data:
            detached = verify_detached(plain, data["Release.gpg"], rings, f"{what} Release")
            _check_pins(job, detached, f"{what} Release")
            fingerprint = detached.fingerprint
        elif check and text is None:
            raise SignatureError(
                f"{what}: upstream has no InRelease and no Release.gpg, so the Release cannot "
                "be verified; if this repository is really unsigned, 'set gpg_verify off' "
                "(or 'gpg_verify URL off' for this repository only)"
            )
        elif check and plain != text:
            drop.add("Release")  # unsigned and not the signed InRelease text: never publish
        if text is None:
            text = plain
    if text is None:
        raise FormatError(f"{what}: neither InRelease nor Release exists upstream")
    return CheckedText(text, fingerprint, frozenset(drop))


def _companion_problem(
    data: Mapping[str, bytes],
    text: bytes,
    rings: Sequence[KeySource] | None,
    job: RepoJob,
    what: str,
    checked: Future[VerifiedText] | None = None,
) -> str | None:
    """Why Release/Release.gpg must not be published beside a verified InRelease, or None
    (``checked``: the check of Release.gpg, already done)."""
    if data["Release"] != text:
        return f"{what}: Release differs from InRelease (upstream changed mid-fetch); not published"
    if rings is None or "Release.gpg" not in data:
        return None  # the same text as the verified InRelease: harmless to publish
    try:
        if checked is not None:
            detached = checked.result()
        else:
            detached = verify_detached(
                data["Release"], data["Release.gpg"], rings, f"{what} Release"
            )
        _check_pins(job, detached, f"{what} Release")
    except SignatureError as exc:
        return f"{exc}; publishing InRelease only"
    return None


def published_release(suite_dir: Path) -> Release | None:
    """The Release currently published in ``suite_dir`` (verified when it was published)."""
    for name in ("InRelease", "Release"):
        path = suite_dir / name
        try:
            data = path.read_bytes()
            text = strip_clearsign(data) if name == "InRelease" else data
            return parse_release(text.decode("utf-8", errors="replace"))
        except (OSError, FormatError):
            continue
    return None


def _sanity(ctx: RunContext, job: RepoJob, release: Release) -> None:
    published = published_release(ctx.mirror / ctx.suite_rel(job))
    for warning in check_release(
        release,
        dist=None if job.is_flat else job.dist,
        now=ctx.now(),
        tolerance=timedelta(seconds=ctx.settings.valid_until_tolerance),
        published=published,
        max_future=timedelta(seconds=ctx.settings.max_future_time),
    ):
        ctx.warn(f"{job.name}: {warning}")
    weak = [p for p, c in release.files.items() if (c.strongest() or ("", ""))[0] in WEAK_HASHES]
    if weak:
        ctx.warn(
            f"{job.name}: {len(weak)} file(s) listed with MD5/SHA1 only (e.g. {weak[0]}); "
            "they are checked with that weaker hash"
        )


async def fetch_release(ctx: RunContext, job: RepoJob) -> VerifiedRelease | None:
    """Fetch, verify and sanity-check; on failure record it in ``ctx`` and return None."""
    suite_skel = ctx.skel / ctx.suite_rel(job)
    staged: dict[str, Path] = {}
    try:
        ensure_inside(suite_skel, ctx.skel / ctx.local_root(job))
        ensure_inside(ctx.mirror / ctx.suite_rel(job), ctx.mirror / ctx.local_root(job))
        # the three at once (a smaller window for upstream to change between them)
        dests = {name: suite_skel / f".{name}.new" for name in RELEASE_FILES}
        fetched = await asyncio.gather(
            *(_fetch_optional(ctx, job, n, dest) for n, dest in dests.items()),
            return_exceptions=True,
        )
        staged = {name: dests[name] for name, ok in zip(dests, fetched, strict=True) if ok is True}
        for outcome in fetched:
            if isinstance(outcome, BaseException):
                raise outcome
        # gpgv in a thread: the suites of a run are checked at the same time
        data = {n: p.read_bytes() for n, p in staged.items()}
        checked = await asyncio.to_thread(verify_release_files, ctx.settings, job, data)
        for name in checked.drop:
            if name in staged:
                staged.pop(name).unlink()
        for warning in checked.warnings:
            ctx.warn(warning)
        try:
            release = parse_release(checked.text.decode("utf-8", errors="replace"))
        except FormatError as exc:
            raise FormatError(f"{describe(job)}: {exc}") from exc
        _sanity(ctx, job, release)
    except (FetchError, SignatureError, FormatError) as exc:
        if isinstance(exc, FetchError):
            ctx.fail(job, exc.url, exc.reason)
        else:
            ctx.fail(job, job.url("InRelease"), str(exc))
        for path in staged.values():
            path.unlink(missing_ok=True)
        return None
    if not gpg_check_enabled(ctx.settings, job):
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
    return VerifiedRelease(job, release, final, checked.fingerprint)
