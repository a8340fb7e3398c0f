"""Fetch one URL into one file, verified.

The body is streamed into a hidden temporary file beside the destination while every
declared hash is computed; only when size and hashes match is it renamed into place, so a
truncated, corrupted or HTML body never appears under the final name. Retries with
exponential backoff and jitter wrap each attempt; later features (Range resume, rate limits,
several upstream sources) slot in at ``_attempt``.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from aptmirror.errors import FetchError, HTTPStatusError, VerificationError
from aptmirror.fetch.transport import HttpTransport
from aptmirror.model import HASHLIB_NAMES, Checksums

PARTIAL_SUFFIX = ".aptmirror-partial"


class Outcome(Enum):
    DOWNLOADED = "downloaded"
    NOT_FOUND = "not-found"


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """What to download, where to, and what it must hash to.

    ``expected`` is None only for files whose proof comes later (Release files, checked by
    gpgv); those are capped at ``max_size`` bytes.
    """

    url: str
    dest: Path
    expected: Checksums | None
    optional: bool = False  # a 404/410 is an outcome, not an error
    max_size: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class FetchResult:
    request: FetchRequest
    outcome: Outcome
    size: int = 0
    sha256: str | None = None


@dataclass(slots=True)
class FetchStats:
    """Counters a run reports; mutated only by the fetcher."""

    requests: int = 0
    files: int = 0
    bytes: int = 0
    retries: int = 0
    failures: int = 0
    by_url_error: dict[str, str] = field(default_factory=dict)


def partial_path(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}{PARTIAL_SUFFIX}")


def _keep_upstream_mtime(path: Path, last_modified: str | None) -> None:
    """Give the file upstream's modification time, as wget -N did.

    The mirror's web server then answers apt's If-Modified-Since like upstream would; with
    local download times two publications within one second could look unchanged.
    """
    if not last_modified:
        return
    try:
        when = email.utils.parsedate_to_datetime(last_modified).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return
    os.utime(path, (when, when))


class _Hasher:
    def __init__(self, expected: Checksums | None) -> None:
        names = {"SHA256"}
        if expected is not None:
            names.update(name for name, _ in expected.hashes if name in HASHLIB_NAMES)
        self._hashes = {name: hashlib.new(HASHLIB_NAMES[name]) for name in names}
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        for h in self._hashes.values():
            h.update(chunk)

    def hexdigest(self, name: str) -> str:
        return self._hashes[name].hexdigest()


def check_digests(url: str, hasher: _Hasher, expected: Checksums) -> None:
    """Raise VerificationError unless size and every declared hash match."""
    if hasher.size != expected.size:
        raise VerificationError(url, f"size {hasher.size} != expected {expected.size}")
    for name, digest in expected.hashes:
        if name in HASHLIB_NAMES and hasher.hexdigest(name) != digest.lower():
            raise VerificationError(url, f"{name} mismatch: got {hasher.hexdigest(name)}")


class Fetcher:
    """Downloads with retries; shared by every stage of a run."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        attempts: int = 3,
        base_delay: float = 1.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._transport = transport
        self._attempts = max(1, attempts)
        self._base_delay = base_delay
        self._sleep = sleep
        self.stats = FetchStats()

    async def fetch(self, req: FetchRequest) -> FetchResult:
        """Download ``req`` or raise FetchError naming the URL and every attempt's cause."""
        causes: list[str] = []
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._attempt(req)
            except FetchError as exc:
                causes.append(f"attempt {attempt}: {exc.reason}")
                if not exc.retryable or attempt == self._attempts:
                    self.stats.failures += 1
                    raise FetchError(req.url, "; ".join(causes), retryable=False) from exc
                self.stats.retries += 1
                delay = self._base_delay * 2 ** (attempt - 1)
                await self._sleep(delay * (0.5 + random.random()))
        raise AssertionError("unreachable")

    async def _attempt(self, req: FetchRequest) -> FetchResult:
        self.stats.requests += 1
        async with self._transport.get(req.url) as resp:
            if resp.status in (404, 410) and req.optional:
                return FetchResult(req, Outcome.NOT_FOUND)
            if resp.status != 200:
                raise HTTPStatusError(req.url, resp.status)
            limit = req.expected.size if req.expected is not None else req.max_size
            if resp.content_length is not None and resp.content_length > limit:
                raise VerificationError(
                    req.url, f"server announces {resp.content_length} bytes, expected {limit}"
                )
            hasher = _Hasher(req.expected)
            tmp = partial_path(req.dest)
            req.dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                await self._stream(resp.chunks(), tmp, hasher, limit, req.url)
                if req.expected is not None:
                    check_digests(req.url, hasher, req.expected)
                _keep_upstream_mtime(tmp, resp.headers.get("Last-Modified"))
                os.replace(tmp, req.dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        self.stats.files += 1
        self.stats.bytes += hasher.size
        return FetchResult(req, Outcome.DOWNLOADED, hasher.size, hasher.hexdigest("SHA256"))

    @staticmethod
    async def _stream(
        chunks: AsyncIterator[bytes], tmp: Path, hasher: _Hasher, limit: int, url: str
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                hasher.update(chunk)
                if hasher.size > limit:
                    raise VerificationError(url, f"body exceeds {limit} bytes")
                out.write(chunk)
