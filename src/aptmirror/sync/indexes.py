"""Stage 2: fetch every index file the config needs, as the verified Release lists them.

Each file is checked against the Release's size and strongest hash. When the Release says
``Acquire-By-Hash: yes`` the file is fetched from its by-hash URL (immune to upstream
updating mid-run) and hard-linked to its by-hash names for clients. An uncompressed variant
that the Release lists is made by decompressing a fetched variant and checking it against
the Release (Debian lists but does not serve uncompressed ``Packages``).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from aptmirror.debian.compression import decompressor_for
from aptmirror.debian.paths import by_hash_path, split_compression
from aptmirror.debian.selection import (
    IndexFile,
    group_variants,
    unserved,
)
from aptmirror.errors import FetchError, FormatError
from aptmirror.fetch.body import file_digest, partial_path, read_chunks
from aptmirror.fetch.fetcher import FetchRequest, Outcome
from aptmirror.model import Checksums
from aptmirror.storage.publish import link_or_copy
from aptmirror.sync.context import RunContext
from aptmirror.sync.jobs import job_indexes
from aptmirror.sync.release import VerifiedRelease

NOT_FOUND = ": not found upstream"
PARSEABLE_KINDS = ("packages", "sources")
# about how much bigger an index is once decompressed (to weigh one only known compressed)
PACKED_RATIO = 5


@dataclass(slots=True)
class SuiteIndexes:
    """What stage 2 left in skel for one suite."""

    verified: VerifiedRelease
    present: dict[str, Path] = field(default_factory=dict)  # relpath in suite -> skel path
    parseable: list[tuple[str, Path]] = field(default_factory=list)  # (kind, one variant)


def file_matches(path: Path, expected: Checksums) -> bool:
    """True when ``path`` exists with the declared size and strongest hash."""
    try:
        if path.stat().st_size != expected.size:
            return False
    except OSError:
        return False
    strongest = expected.strongest()
    if strongest is None:
        return True
    name, digest = strongest
    return file_digest(path, name) == digest


# Indexes up to this size are checked in the event loop: for them a thread hop costs more
# than the hashing (a no-op run's index stage: 40 -> 20 ms); bigger ones go to a thread.
INLINE_CHECK_MAX = 4 << 20


async def _matches(path: Path, expected: Checksums) -> bool:
    """:func:`file_matches`, in a thread for a big file."""
    if expected.size <= INLINE_CHECK_MAX:
        return file_matches(path, expected)
    return await asyncio.to_thread(file_matches, path, expected)


def select_for(sv: VerifiedRelease, ctx: RunContext) -> list[IndexFile]:
    return job_indexes(sv.job, sv.release.files, contents=ctx.settings.contents)


def bytes_to_plan(ctx: RunContext, sv: VerifiedRelease) -> int:
    """About how many bytes of ``Packages``/``Sources`` planning will read for the suite
    because they changed, before any is fetched: from the Release's sizes (a compressed
    variant counts ``PACKED_RATIO`` times its size when the plain one is not listed),
    counting only the indexes of which no variant is in skel with its listed size (an
    unchanged suite: 0)."""
    suite_skel = ctx.skel / ctx.suite_rel(sv.job)
    total = 0
    for variants in group_variants(select_for(sv, ctx)).values():
        if variants[0].kind not in PARSEABLE_KINDS or any(
            _has_size(suite_skel / v.path, v.checksums.size) for v in variants
        ):
            continue
        plain = [v.checksums.size for v in variants if split_compression(v.path)[1] == ""]
        total += plain[0] if plain else PACKED_RATIO * min(v.checksums.size for v in variants)
    return total


def _has_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


async def _fetch_one(
    ctx: RunContext, sv: VerifiedRelease, item: IndexFile, dest: Path, why: list[str]
) -> bool:
    """Fetch one variant; on failure append the reason to ``why``."""
    if await _matches(dest, item.checksums):
        return True
    urls = []
    strongest = item.checksums.strongest()
    if sv.release.acquire_by_hash and strongest is not None:
        urls.append(sv.job.url(by_hash_path(item.path, *strongest)))
    urls.append(sv.job.url(item.path))
    last: FetchError | None = None
    for url in urls:
        try:
            mirrors = sv.job.alt_urls(url)
            req = FetchRequest(url, dest, item.checksums, optional=True, mirrors=mirrors)
            if (await ctx.fetcher.fetch(req)).outcome is Outcome.DOWNLOADED:
                return True
            why.append(f"{url}{NOT_FOUND}")
        except FetchError as exc:
            last = exc
            why.append(f"{url}: {exc.reason}")
    if last is not None and item.required:
        ctx.fail(sv.job, last.url, last.reason)
    return False


def _decompress_to(src: Path, dest: Path, expected: Checksums) -> bool:
    """Make ``dest`` by decompressing ``src``; keep it only if it matches ``expected``."""
    _, ext = split_compression(src.name)
    dec = decompressor_for(ext)
    tmp = partial_path(dest)
    try:
        with tmp.open("wb") as fout:
            for chunk in read_chunks(src):
                fout.write(dec.feed(chunk))
            fout.write(dec.finish())
    except (FormatError, OSError):
        tmp.unlink(missing_ok=True)
        return False
    if not file_matches(tmp, expected):
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, dest)
    return True


# compression suffix -> rank: the quickest to decompress first
_DECOMPRESS_ORDER = {".lz4": 0, ".zst": 1, ".gz": 2, ".xz": 3, ".lzma": 4, ".bz2": 5}


async def _fetch_group(
    ctx: RunContext,
    sv: VerifiedRelease,
    suite_skel: Path,
    variants: list[IndexFile],
    why: list[str],
) -> dict[str, Path]:
    """Fetch the compressed variants of one index; make each uncompressed one by
    decompressing a compressed variant as soon as one is in (meanwhile the others are
    still coming), else fetch it. Returns relpath -> file, in the Release's order."""
    plain = [v for v in variants if split_compression(v.path)[1] == ""]
    packed = [v for v in variants if split_compression(v.path)[1] != ""]

    async def fetch_packed(v: IndexFile) -> Path | None:
        dest = suite_skel / v.path
        return dest if await _fetch_one(ctx, sv, v, dest, why) else None

    fetches = {v.path: asyncio.ensure_future(fetch_packed(v)) for v in packed}
    # the quickest to decompress first (bz2 is ten times slower than gzip)
    sources = sorted(packed, key=lambda v: _DECOMPRESS_ORDER.get(split_compression(v.path)[1], 9))

    async def make_plain(v: IndexFile) -> Path | None:
        dest = suite_skel / v.path
        # Already made by an earlier run: keep it (same inode), so an unchanged suite is
        # recognised as unchanged and not republished.
        if await _matches(dest, v.checksums):
            return dest
        for source in sources:
            src = await fetches[source.path]
            if src is not None and await asyncio.to_thread(_decompress_to, src, dest, v.checksums):
                return dest
        return dest if await _fetch_one(ctx, sv, v, dest, why) else None

    try:
        made = await asyncio.gather(*(make_plain(v) for v in plain))
        fetched = await asyncio.gather(*fetches.values())
    except BaseException:
        for task in fetches.values():
            task.cancel()
        raise
    found = dict(zip(fetches, fetched, strict=True))
    found.update((v.path, path) for v, path in zip(plain, made, strict=True))
    return {v.path: path for v in variants if (path := found[v.path]) is not None}


def _link_by_hash(sv: VerifiedRelease, suite_skel: Path, rel: str) -> dict[str, Path]:
    links: dict[str, Path] = {}
    if not sv.release.acquire_by_hash:
        return links
    for name, digest in sv.release.files[rel].hashes:
        link_rel = by_hash_path(rel, name, digest)
        link_or_copy(suite_skel / rel, suite_skel / link_rel)
        links[link_rel] = suite_skel / link_rel
    return links


def _warn_unserved(ctx: RunContext, sv: VerifiedRelease) -> None:
    """Warn of configured components and architectures the Release has no index for:
    nothing is mirrored for them (the Perl tool said nothing; apt-get warns)."""
    job, release = sv.job, sv.release
    if job.is_flat:
        return
    components, arches = unserved(
        release.files, job.components, job.arches, binary=job.binary, source=job.source
    )
    for names, what, listed in (
        (components, "component", release.components),
        (arches, "architecture", release.architectures),
    ):
        if names:
            plural = "s" if len(names) > 1 else ""
            said = f" (it lists: {' '.join(listed)})" if listed else ""
            ctx.warn(
                f"{job.name}: the Release has no index for {what}{plural} "
                f"{', '.join(repr(n) for n in names)}{said}; nothing is mirrored for "
                f"{'them' if plural else 'it'}"
            )


async def fetch_indexes(ctx: RunContext, sv: VerifiedRelease) -> SuiteIndexes:
    """Fetch and verify the suite's indexes into skel; failures are recorded in ``ctx``."""
    suite_skel = ctx.skel / ctx.suite_rel(sv.job)
    out = SuiteIndexes(sv, dict(sv.files))
    _warn_unserved(ctx, sv)
    groups = group_variants(select_for(sv, ctx))
    whys: dict[str, list[str]] = {base: [] for base in groups}
    # the indexes to plan from first: planning waits for this stage, and they are the
    # biggest to decompress (started first; the results are taken in the Release's order)
    first = sorted(groups, key=lambda base: groups[base][0].kind not in PARSEABLE_KINDS)
    tasks = {
        base: asyncio.ensure_future(_fetch_group(ctx, sv, suite_skel, groups[base], whys[base]))
        for base in first
    }
    fetched = await asyncio.gather(*(tasks[base] for base in groups))
    for (base, variants), got in zip(groups.items(), fetched, strict=True):
        why = whys[base]
        kind = variants[0].kind
        if not got and any(v.required for v in variants):
            reasons = "; ".join(why) or "no variant listed"
            ctx.fail(sv.job, sv.job.url(base), f"required index not available: {reasons}")
            continue
        errors = [w for w in why if not w.endswith(NOT_FOUND)]
        if errors and len(got) < len(variants):  # a 404 is upstream's choice; this is not
            missing = ", ".join(v.path for v in variants if v.path not in got)
            ctx.warn(f"{sv.job.name}: not mirrored this run: {missing}: {'; '.join(errors)}")
        for rel, path in got.items():
            out.present[rel] = path
            try:
                out.present.update(_link_by_hash(sv, suite_skel, rel))
            except OSError as exc:  # a full disk (or no inodes left): the suite fails
                reason = f"cannot write its by-hash copy in skel: {exc.strerror or exc}"
                ctx.fail(sv.job, sv.job.url(rel), reason)
        if kind in PARSEABLE_KINDS and got:
            best = sorted(got, key=lambda r: split_compression(r)[1] != "")[0]
            out.parseable.append((kind, got[best]))
    return out
