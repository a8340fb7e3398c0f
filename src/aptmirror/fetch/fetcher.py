"""Fetch one URL into one file, verified.

The body is streamed into a hidden temporary file beside the destination while the
strongest declared hash is computed (:mod:`aptmirror.fetch.body`); only when size and hash
match is it renamed into place, so a truncated, corrupted or HTML body never appears under
the final name. Several upstream sources are balanced by :mod:`aptmirror.fetch.sources`.

Writing and hashing happen in the event loop's thread, between two reads: they are page-
cache writes, and hashlib releases the GIL for them anyway. Measured on the 15,054-file
benchmark mirror in one process: 7.3 s with them inline, 11 s with one I/O thread (each
file's hand-off to it and back cost more than the write); several pool processes
(:mod:`aptmirror.sync.pool_procs`) are what spreads the work over the cores.

Around each attempt:

* **retries** — connection errors, timeouts, 408/425/429/5xx and bad bodies are retried
  (``attempts`` in all) after an exponential backoff with jitter, at least as long as a
  ``Retry-After`` the server sent (capped); a 404/410 on an optional file is an outcome and
  never retried, on a required file it is final. A give-up names the URL, every attempt's
  cause and the last HTTP status.
* **resume** — a body cut off mid-way (in this run, or by a killed earlier run) leaves the
  partial file and a small sidecar (``.NAME.aptmirror-partial.meta``: URL and validator);
  the next attempt asks for the rest with ``Range: bytes=N-`` + ``If-Range``. A 200 (the
  server ignored the Range, or the validator changed) restarts from byte 0; the prefix is
  re-hashed first, so the hashes are always over the whole file. A bad hash discards it.
* **pace** — every chunk goes through the run's global :class:`RateLimiter`; with slow-rate
  protection, a transfer whose average rate over a ``startup``-second window (the first
  window is the start-up grace) is below the floor (:func:`slow_floor`: ``slow_rate``, at
  most half its fair share of the run's throughput) is aborted and retried (resuming).
  Time spent waiting for our own rate limit does not count against the transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit, urlunsplit

from aptmirror.dates import parse_date
from aptmirror.errors import FetchError, HTTPStatusError, VerificationError
from aptmirror.fetch.body import (
    BodyWriter,
    Hasher,
    discard,
    hash_prefix,
    meta_name,
    partial_name,
)
from aptmirror.fetch.direct import DirectSink, Fallback, Lane
from aptmirror.fetch.http1 import ConnectionPool, Endpoint, Headers, ProtocolError, describe
from aptmirror.fetch.pace import SlowRate, SlowWindow, Traffic
from aptmirror.fetch.ratelimit import RateLimiter
from aptmirror.fetch.sources import SourceBalancer, origin
from aptmirror.fetch.transport import REDIRECT_STATUSES, HttpTransport, Response
from aptmirror.frozen import frozen
from aptmirror.model import Checksums
from aptmirror.observe.events import (
    Emit,
    FileDone,
    FileFailed,
    FileProgress,
    FileSkipped,
    FileStarted,
    ignore,
)

_CONTENT_RANGE_RE = re.compile(r"^bytes\s+(\d+)-(\d+)/(\d+|\*)$", re.ASCII)


class Outcome(Enum):
    DOWNLOADED = "downloaded"
    NOT_FOUND = "not-found"


@frozen
class FetchRequest:
    """What to download, where to, and what it must hash to.

    ``expected`` is None only for files whose proof comes later (Release files, checked by
    gpgv); those are capped at ``max_size`` bytes.
    """

    url: str
    dest: str | os.PathLike[str]  # a string is cheaper: the pool stage makes thousands
    expected: Checksums | None
    optional: bool = False  # a 404/410 is an outcome, not an error
    max_size: int = 256 * 1024 * 1024
    # the same file on other upstream sources of the repository (checked against the same
    # ``expected``); attempts are spread over all of them, see Fetcher.fetch
    mirrors: tuple[str, ...] = ()
    # the caller knows no partial file of ``dest`` exists (its directory was missing): the
    # first attempt skips looking for one
    fresh: bool = False
    # ``dest`` did not exist when planned: a body verified in memory is written straight to
    # it, without a partial file and a rename (see BodyWriter's ``in_place``)
    in_place: bool = False

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # pool worker processes get thousands: a constructor call with the path as a string
        # pickles several times faster than dataclass state (and a Path as its parts)
        return (FetchRequest, (self.url, os.fspath(self.dest), self.expected, self.optional,
                               self.max_size, self.mirrors, self.fresh,
                               self.in_place))  # fmt: skip


@frozen
class FetchResult:
    request: FetchRequest
    outcome: Outcome
    size: int = 0
    sha256: str | None = None
    transferred: int = 0  # bytes received in this attempt (size minus a resumed prefix)
    # when it started, if no FileStarted/FileProgress was emitted for it (see FileDone)
    started: float | None = None


@dataclass(slots=True)
class FetchStats:
    """Counters a run reports; mutated only by the fetcher (and :meth:`add`, which adds a
    pool worker process's counters to the run's)."""

    requests: int = 0
    files: int = 0
    bytes: int = 0
    retries: int = 0
    failures: int = 0
    resumed: int = 0  # transfers continued from a partial file with a Range request
    resumed_bytes: int = 0  # bytes not fetched again thanks to that

    def add(self, other: FetchStats) -> None:
        self.requests += other.requests
        self.files += other.files
        self.bytes += other.bytes
        self.retries += other.retries
        self.failures += other.failures
        self.resumed += other.resumed
        self.resumed_bytes += other.resumed_bytes


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP date) in seconds from now, or None."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parse_date(text).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _validator(resp: Response) -> str | None:
    """What If-Range may carry: a strong ETag, else Last-Modified (as apt sends)."""
    etag = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.headers.get("Last-Modified") or None


def _public_url(url: str) -> str:
    """``url`` without ``user:password@``."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class Fetcher:
    """Downloads with retries, resume and pacing; shared by every stage of a run."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        attempts: int = 5,
        base_delay: float = 2.0,
        max_delay: float = 60.0,
        max_retry_after: float = 120.0,
        resume: bool = True,
        resume_min_size: int = 1 << 20,
        limiter: RateLimiter | None = None,
        slow_rate: SlowRate | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        emit: Emit | None = None,
    ) -> None:
        self._transport = transport
        self._attempts = max(1, attempts)
        self._base_delay = max(0.0, base_delay)
        self._max_delay = max_delay
        self._max_retry_after = max_retry_after
        self._resume = resume
        self._resume_min_size = resume_min_size
        self._limiter = limiter
        self._slow = slow_rate if slow_rate is not None and slow_rate.bytes_per_second > 0 else None
        self._sleep = sleep
        self._clock = clock
        self._emit: Emit = emit or ignore  # observers (progress, logs, state)
        self._sources = SourceBalancer()
        self._traffic = Traffic()  # every transfer's bytes: the slow-rate fair share
        self._made_dirs: set[str] = set()  # directories this fetcher made or found
        self.stats = FetchStats()

    @property
    def limiter(self) -> RateLimiter | None:
        return self._limiter

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (1-based): exponential, jittered,
        never shorter than the server's ``Retry-After`` (itself capped)."""
        delay = min(self._max_delay, self._base_delay * 2.0 ** (attempt - 1))
        delay *= 0.5 + random.random()
        if retry_after is not None:
            delay = max(delay, min(retry_after, self._max_retry_after))
        return delay

    async def fetch(self, req: FetchRequest, lane: Lane | None = None) -> FetchResult:
        """Download ``req`` or raise FetchError naming the URL and every attempt's cause.

        With ``req.mirrors`` each attempt goes to the source with the least load for its
        weight (measured throughput, divided down by recent errors); a source that fails is
        penalised, one that answers a final error (404, refused) is not asked again for this
        file, and every source is tried before giving up (attempts = max(attempts, sources)).
        """
        first: FetchError | None = None  # how a direct first attempt failed
        route = self._direct_route(req)
        if route is not None:
            held = lane if lane is not None else Lane()  # one of its own: given back below
            try:
                result = await self._direct(req, *route, held)
            except Fallback:
                pass
            except OSError as exc:
                raise self._disk_error(req, exc) from exc
            except FetchError as exc:
                first = exc
            else:
                self._emit_result(result, 1)
                return result
            finally:
                if held is not lane:
                    held.release()
        if lane is not None:  # the general path takes a place in the limits of its own
            lane.release()
        urls = list(dict.fromkeys((req.url, *req.mirrors))) if req.mirrors else [req.url]
        several = len(urls) > 1
        # the balancer is only asked (and told) when there is a choice to make
        sources = self._sources if several else None
        attempts = max(self._attempts, len(urls))
        causes: list[str] = []
        failed_here: dict[str, int] = {}  # url -> failed attempts of this file there
        excluded: set[str] = set()
        missing_at: list[str] = []  # secondary sources that answered 404 for an optional file
        last_status: int | None = None
        retry_after: float | None = None
        for attempt in range(1, attempts + 1):
            live = [u for u in urls if u not in excluded]
            if not live:
                break
            url = sources.pick(live) if sources is not None else req.url
            if attempt > 1:
                self.stats.retries += 1
                if req.fresh:  # the failed attempt may have left a partial file
                    req = dataclasses.replace(req, fresh=False)
            if failed_here.get(url):  # another source that has not failed yet needs no wait
                await self._sleep(self.backoff(failed_here[url], retry_after))
            one = dataclasses.replace(req, url=url, mirrors=()) if several else req
            started = self._clock() if sources is not None else 0.0
            if sources is not None:
                sources.begin(url)
            try:
                if first is not None:  # attempt 1 was made directly
                    failure, first = first, None
                    raise failure
                result = await self._attempt(one, tuple(urls) if several else ())
            except OSError as exc:  # the local disk (full, read-only), not the network
                if sources is not None:
                    sources.release(url)
                raise self._disk_error(req, exc) from exc
            except FetchError as exc:
                if sources is not None:
                    sources.end(url, ok=False, bad_data=isinstance(exc, VerificationError))
                retry_after = None
                status = exc.status if isinstance(exc, HTTPStatusError) else None
                if isinstance(exc, HTTPStatusError):
                    last_status = exc.status
                    retry_after = exc.retry_after
                where = f" ({origin(url)})" if several else ""
                causes.append(f"attempt {attempt}{where}: {exc.reason}")
                failed_here[url] = failed_here.get(url, 0) + 1
                if not exc.retryable:
                    excluded.add(url)
                final = attempt == attempts or len(excluded) == len(urls)
                self._emit(FileFailed(req.url, exc.reason, attempt, status, final))
                if final:
                    self.stats.failures += 1
                    reason = "; ".join(causes)
                    if last_status is not None:
                        reason += f" (last HTTP status {last_status})"
                    raise FetchError(req.url, reason, retryable=False) from exc
                continue
            if sources is not None and url != req.url and result.outcome is Outcome.NOT_FOUND:
                # only the primary source (where the Release came from) may say a file is
                # absent; another one that lacks it is penalised only if the primary has it
                sources.release(url)
                missing_at.append(url)
                causes.append(f"attempt {attempt} ({origin(url)}): not found")
                failed_here[url] = failed_here.get(url, 0) + 1
                excluded.add(url)
                continue
            if sources is not None:
                if result.outcome is Outcome.DOWNLOADED:
                    for lacking in missing_at:
                        sources.penalise(lacking)
                seconds = self._clock() - started
                sources.end(url, ok=True, nbytes=result.transferred, seconds=seconds)
                result = dataclasses.replace(result, request=req)
            self._emit_result(result, attempt)
            return result
        # every source excluded, the last one a secondary source lacking the file
        self.stats.failures += 1
        raise FetchError(req.url, "; ".join(causes), retryable=False)

    def _disk_error(self, req: FetchRequest, exc: OSError) -> FetchError:
        """A failure of the local disk (full, read-only), not the network: final."""
        self.stats.failures += 1
        reason = f"cannot write {req.dest}: {exc.strerror or exc}"
        return FetchError(req.url, reason, retryable=False)

    def _direct_route(self, req: FetchRequest) -> tuple[ConnectionPool, Endpoint, bytes] | None:
        """Where a small file's first attempt is written directly (:mod:`.direct`), or None
        for the general path: a file of ``resume_min_size`` or more (it is resumable), one
        with other sources, a URL :meth:`HttpTransport.plain` does not take, a rate limit."""
        expected = req.expected
        if (
            req.mirrors
            or expected is None
            or expected.size >= self._resume_min_size
            or (self._limiter is not None and self._limiter.rate is not None)
        ):
            return None
        return self._transport.plain(req.url)

    async def _direct(
        self, req: FetchRequest, pool: ConnectionPool, ep: Endpoint, head: bytes, lane: Lane
    ) -> FetchResult:
        """One attempt through a :class:`DirectSink` on ``lane``'s connection; raises like
        :meth:`_attempt`, or :class:`Fallback` when the general path must make it."""
        dest = os.fspath(req.dest)
        tmp = partial_name(dest)
        expected = req.expected
        assert expected is not None
        if not req.fresh and self._resume and os.path.lexists(meta_name(tmp)):
            raise Fallback  # a cut-off earlier transfer: the general path resumes it
        self.stats.requests += 1
        try:
            conn = await lane.connection(pool, ep)
        except (OSError, ProtocolError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
            raise FetchError(req.url, describe(exc)) from exc
        sink = DirectSink(
            conn,
            req.url,
            dest,
            tmp,
            expected,
            emit=self._emit,
            traffic=self._traffic,
            slow=self._slow,
            made_dirs=self._made_dirs,
            in_place=req.in_place,
        )
        try:
            lane.watch(sink)
            conn.start(head, sink)
            await sink.done
            failure = sink.failure()
            status = conn.status
            headers = Headers(conn.raw_headers) if failure is None and status != 200 else None
        finally:
            sink.close()
            lane.done(conn)
        if failure is not None:
            raise failure
        if headers is not None:  # not a 200: decided as on the general path (_receive)
            if status in (404, 410) and req.optional:
                discard(tmp)
                return FetchResult(req, Outcome.NOT_FOUND)
            if status in REDIRECT_STATUSES:
                raise Fallback  # HttpTransport.open follows it
            retry_after = parse_retry_after(headers.get("Retry-After"))
            raise HTTPStatusError(req.url, status, retry_after=retry_after)
        assert sink.writer is not None
        hasher = sink.writer.hasher
        size = hasher.size
        self.stats.files += 1
        self.stats.bytes += size
        return FetchResult(req, Outcome.DOWNLOADED, size, hasher.sha256(), size, sink.started)

    def _resume_point(
        self, req: FetchRequest, tmp: str, sources: Sequence[str] = ()
    ) -> tuple[int, str | None]:
        """(bytes already in the partial file, validator) when it can be continued: it was
        fetched from ``req.url`` or from another of the file's ``sources``. The validator
        then goes to this source in ``If-Range``: mirrors that keep upstream's modification
        times (rsync -t, Debian's mirror scripts) give the same ``Last-Modified`` and, from
        nginx or Apache, the same ``ETag``, and continue the file; any other answers 200
        and the file starts again, as it did always."""
        if not self._resume or req.expected is None or req.fresh:
            return 0, None
        try:
            size = os.stat(tmp, follow_symlinks=False).st_size
            with open(meta_name(tmp), encoding="utf-8") as fh:
                meta = json.loads(fh.read())
        except (OSError, ValueError):
            return 0, None
        urls = {_public_url(u) for u in (req.url, *sources)}
        if not isinstance(meta, dict) or meta.get("url") not in urls:
            return 0, None
        validator = meta.get("validator")
        if not isinstance(validator, str) or not validator or not 0 < size < req.expected.size:
            return 0, None
        return size, validator

    def _write_meta(
        self, req: FetchRequest, tmp: str, resp: Response, *, any_size: bool = False
    ) -> bool:
        """Record how to resume ``tmp``; False when it cannot be resumed.

        Up front only for files of ``resume_min_size`` or more (they write every chunk as it
        arrives, so even a killed run can resume them); a smaller transfer gets its sidecar
        only when it is cut off (``any_size``), which is enough to resume it in this run.
        """
        too_small = req.expected is not None and req.expected.size < self._resume_min_size
        meta = meta_name(tmp)
        validator = _validator(resp)
        unwanted = req.expected is None or not self._resume or (too_small and not any_size)
        if unwanted or not validator:
            # the file starts afresh: a sidecar an earlier cut-off transfer left (one that
            # could not be resumed) would outlive it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(meta)
            return False
        os.makedirs(os.path.dirname(tmp) or ".", exist_ok=True)
        # the sidecar may sit in the published tree: never write credentials into it
        with open(meta, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"url": _public_url(req.url), "validator": validator}) + "\n")
        return True

    async def _attempt(self, req: FetchRequest, sources: Sequence[str] = ()) -> FetchResult:
        """One request for ``req.url``; ``sources``: every URL of the file (several
        upstream sources), for a partial file one of the others left."""
        tmp = partial_name(os.fspath(req.dest))
        offset, validator = self._resume_point(req, tmp, sources)
        headers = {"Range": f"bytes={offset}-", "If-Range": str(validator)} if offset else {}
        self.stats.requests += 1
        resp = await self._transport.open(req.url, headers)
        try:
            return await self._receive(req, resp, tmp, offset)
        finally:
            resp.release()

    async def _receive(
        self, req: FetchRequest, resp: Response, tmp: str, offset: int
    ) -> FetchResult:
        if resp.status in (404, 410) and req.optional:
            discard(tmp)
            return FetchResult(req, Outcome.NOT_FOUND)
        if offset and resp.status == 416:
            discard(tmp)
            raise FetchError(req.url, f"HTTP 416 for a resume at byte {offset}; restarting")
        if offset and resp.status == 206:
            self._check_content_range(req, resp, offset, tmp)
        elif resp.status == 200:
            offset = 0  # Range ignored or validator changed: start again
        else:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise HTTPStatusError(req.url, resp.status, retry_after=retry_after)
        limit = req.expected.size if req.expected is not None else req.max_size
        if resp.content_length is not None and offset + resp.content_length > limit:
            discard(tmp)
            raise VerificationError(
                req.url,
                f"server announces {offset + resp.content_length} bytes, expected {limit}",
            )
        hasher = Hasher(req.expected)
        size = req.expected.size if req.expected is not None else resp.content_length
        dest = os.fspath(req.dest)
        self._emit(FileStarted(req.url, dest, size, offset))
        writer = BodyWriter(
            tmp, hasher, append=offset > 0, made_dirs=self._made_dirs, in_place=req.in_place
        )
        resumable = False
        try:
            if offset:
                hash_prefix(tmp, offset, hasher)
                resumable = True
                self.stats.resumed += 1
                self.stats.resumed_bytes += offset
            else:
                resumable = self._write_meta(req, tmp, resp)
            writer.write_through = resumable
            await self._stream(resp, writer, limit, req.url)
            last_modified = resp.headers.get("Last-Modified")
            writer.finish(req.url, req.expected, dest, last_modified, resumable)
        except VerificationError:
            writer.close()
            discard(tmp)
            raise
        except BaseException:
            # cut off mid-body (or interrupted): keep what we have for a Range resume
            if not resumable and writer.total > 0:
                resumable = self._write_meta(req, tmp, resp, any_size=True)
            if resumable:
                with contextlib.suppress(OSError):
                    writer.flush()
            writer.close()
            if not resumable or hasher.size == 0:
                discard(tmp)
            raise
        self.stats.files += 1
        self.stats.bytes += hasher.size - offset
        return FetchResult(
            req, Outcome.DOWNLOADED, hasher.size, hasher.sha256(), hasher.size - offset
        )

    def _emit_result(self, result: FetchResult, attempt: int) -> None:
        req = result.request
        if result.outcome is Outcome.NOT_FOUND:
            self._emit(FileSkipped(req.url))
            return
        path = os.fspath(req.dest)
        done = FileDone(
            req.url, path, result.size, result.transferred, result.sha256, attempt,
            started=result.started,
        )  # fmt: skip
        self._emit(done)

    @staticmethod
    def _check_content_range(req: FetchRequest, resp: Response, offset: int, tmp: str) -> None:
        match = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", "").strip())
        total = req.expected.size if req.expected is not None else None
        if (
            match is None
            or int(match.group(1)) != offset
            or (match.group(3) != "*" and total is not None and int(match.group(3)) != total)
        ):
            discard(tmp)
            got = resp.headers.get("Content-Range")
            raise FetchError(req.url, f"bad Content-Range {got!r} for a resume at byte {offset}")

    async def _stream(self, resp: Response, writer: BodyWriter, limit: int, url: str) -> None:
        self._traffic.streaming += 1
        try:
            await self._stream_to(resp, writer, limit, url)
        finally:
            self._traffic.streaming -= 1

    async def _stream_to(self, resp: Response, writer: BodyWriter, limit: int, url: str) -> None:
        traffic = self._traffic
        window = SlowWindow(self._slow, traffic, self._clock) if self._slow is not None else None
        while chunk := await resp.read():
            if writer.add(chunk):
                writer.flush()
            if writer.total > limit:
                raise VerificationError(url, f"body exceeds {limit} bytes")
            traffic.received += len(chunk)
            self._emit(FileProgress(url, len(chunk)))
            if self._limiter is not None and self._limiter.rate is not None:
                before = self._clock()
                await self._limiter.consume(len(chunk))
                if window is not None:
                    window.paused += self._clock() - before
            if window is None or writer.total >= limit:  # nothing to abort once complete
                continue
            too_slow = window.check(len(chunk))
            if too_slow is not None:
                raise FetchError(url, too_slow)
