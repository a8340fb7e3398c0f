"""Release sanity checks after the signature: expiry, rollback/replay, suite identity. Pure.

A valid signature proves who made a Release, not that it is the current one for the suite
that was asked for. apt refuses a Release whose ``Valid-Until`` has passed and one whose
``Suite``/``Codename`` names another distribution (an attacker could otherwise replay an old,
validly signed Release with known-vulnerable packages, or serve another suite's Release).
We also refuse a Release whose ``Date`` is older than the one already published (a mirror
never goes back in time), and, as apt does (``Acquire::Max-FutureTime``), one dated more than
``max_future`` ahead of this machine's clock: apt clients would refuse it as "not valid
yet", and once published it would also make upstream's next, correctly dated Release look
like a rollback. No I/O: the caller passes the published Release and the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aptmirror.debian.release import Release
from aptmirror.errors import ReleaseRejectedError

__all__ = ["check_release", "dist_matches"]

_FMT = "%Y-%m-%d %H:%M:%S UTC"


def _fmt(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_FMT)


def dist_matches(dist: str, release: Release) -> bool:
    """Does the requested ``dist`` name this Release, by ``Suite`` or by ``Codename``?

    apt accepts either (``stable`` and ``bookworm`` reach the same Release). For an old
    ``codename/updates`` style dist, the part before the ``/`` is accepted too.
    """
    names = {n for n in (release.suite, release.codename) if n}
    wanted = dist.strip("/")
    return wanted in names or wanted.split("/", 1)[0] in names


def check_release(
    release: Release,
    *,
    dist: str | None,
    now: datetime,
    tolerance: timedelta = timedelta(0),
    published: Release | None = None,
    max_future: timedelta | None = None,
) -> list[str]:
    """Raise ReleaseRejectedError for an expired, rolled-back or foreign Release.

    ``dist`` is the suite asked for (None for a flat repository: nothing to compare);
    ``now`` an aware datetime; ``published`` the Release currently published for this suite
    (None on a first run). Returns warnings for what could not be checked.
    """
    warnings: list[str] = []
    if release.valid_until is not None and now > release.valid_until + tolerance:
        late = now - release.valid_until
        raise ReleaseRejectedError(
            f"Release expired: Valid-Until {_fmt(release.valid_until)} passed "
            f"{_age(late)} ago; upstream serves a stale (possibly replayed) Release. Use "
            "another upstream, or accept it with 'set valid_until_tolerance SECONDS'"
        )
    if dist is not None:
        if not (release.suite or release.codename):
            warnings.append(f"Release names no Suite or Codename; cannot check it is {dist!r}")
        elif not dist_matches(dist, release):
            raise ReleaseRejectedError(
                f"Release is for Suite {release.suite or '-'} / Codename "
                f"{release.codename or '-'}, not for the requested {dist!r}; upstream serves "
                "another distribution's Release under this name"
            )
    if max_future is not None and release.date is not None and release.date > now + max_future:
        raise ReleaseRejectedError(
            f"Release Date {_fmt(release.date)} is {_age(release.date - now)} ahead of this "
            f"machine's clock ({_fmt(now)}): apt clients would refuse it as not valid yet; "
            "the published suite is kept. If this machine's clock is behind, correct it "
            "(NTP); else accept it with 'set max_future_time SECONDS'"
        )
    if published is not None and published.date is not None:
        if release.date is None:
            warnings.append("Release has no Date; cannot check it is newer than the published")
        elif release.date < published.date:
            raise ReleaseRejectedError(
                f"Release Date {_fmt(release.date)} is older than the published "
                f"Release's ({_fmt(published.date)}): a rollback or replay of an old "
                "Release; the published suite is kept"
            )
    return warnings


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds} s"
