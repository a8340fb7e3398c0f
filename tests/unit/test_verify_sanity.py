"""Release sanity checks (pure): expiry with tolerance, rollback/replay, suite identity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aptmirror.debian.release import Release, parse_release
from aptmirror.errors import ReleaseRejectedError
from aptmirror.verify.sanity import check_release, dist_matches

NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
SHA = "0" * 64


def release(
    suite: str | None = "stable",
    codename: str | None = "bookworm",
    date: str | None = "Sat, 21 Nov 2026 10:00:00 UTC",
    valid_until: str | None = None,
) -> Release:
    lines = ["Origin: test"]
    if suite:
        lines.append(f"Suite: {suite}")
    if codename:
        lines.append(f"Codename: {codename}")
    if date:
        lines.append(f"Date: {date}")
    if valid_until:
        lines.append(f"Valid-Until: {valid_until}")
    lines += ["SHA256:", f" {SHA} 10 main/binary-amd64/Packages"]
    return parse_release("\n".join(lines) + "\n")


def test_good_release_passes() -> None:
    r = release(valid_until="Sat, 28 Nov 2026 10:00:00 UTC")
    assert check_release(r, dist="stable", now=NOW, published=release()) == []


def test_expired_valid_until_is_rejected() -> None:
    r = release(valid_until="Tue, 24 Nov 2026 10:00:00 UTC")
    with pytest.raises(ReleaseRejectedError, match=r"expired.*2026-11-24 10:00:00 UTC.*26 h"):
        check_release(r, dist="stable", now=NOW)


def test_tolerance_accepts_a_little_late() -> None:
    r = release(valid_until="Wed, 25 Nov 2026 11:00:00 UTC")
    with pytest.raises(ReleaseRejectedError, match="valid_until_tolerance"):
        check_release(r, dist="stable", now=NOW)
    check_release(r, dist="stable", now=NOW, tolerance=timedelta(hours=1))
    with pytest.raises(ReleaseRejectedError):
        check_release(r, dist="stable", now=NOW, tolerance=timedelta(minutes=59))


def test_valid_until_in_another_zone() -> None:
    r = release(valid_until="Wed, 25 Nov 2026 13:30:00 +0200")  # 11:30 UTC
    with pytest.raises(ReleaseRejectedError, match="11:30:00 UTC"):
        check_release(r, dist="stable", now=NOW)


def test_older_than_published_is_a_rollback() -> None:
    old = release(date="Fri, 20 Nov 2026 10:00:00 UTC")
    new = release(date="Sat, 21 Nov 2026 10:00:00 UTC")
    with pytest.raises(ReleaseRejectedError, match=r"older than the published.*rollback"):
        check_release(old, dist="stable", now=NOW, published=new)
    assert check_release(new, dist="stable", now=NOW, published=old) == []
    assert check_release(new, dist="stable", now=NOW, published=new) == []  # same: fine


def test_missing_date_is_warned_when_one_is_published() -> None:
    warnings = check_release(release(date=None), dist="stable", now=NOW, published=release())
    assert any("no Date" in w for w in warnings)


@pytest.mark.parametrize("dist", ["stable", "bookworm", "stable/", "bookworm/updates"])
def test_dist_may_be_suite_or_codename(dist: str) -> None:
    assert dist_matches(dist, release())
    check_release(release(), dist=dist, now=NOW)


def test_other_suite_is_rejected() -> None:
    with pytest.raises(
        ReleaseRejectedError, match=r"Suite oldstable / Codename bullseye.*'stable'"
    ):
        check_release(release("oldstable", "bullseye"), dist="stable", now=NOW)


def test_flat_repository_has_no_identity_to_check() -> None:
    assert check_release(release(suite=None, codename=None), dist=None, now=NOW) == []


def test_no_suite_nor_codename_is_warned() -> None:
    warnings = check_release(release(suite=None, codename=None), dist="stable", now=NOW)
    assert any("no Suite or Codename" in w for w in warnings)


def test_a_release_dated_in_the_future_is_rejected() -> None:
    """apt refuses a Release dated more than Acquire::Max-FutureTime (10 s) ahead as "not
    valid yet": it is not published."""
    ahead = release(date="Wed, 25 Nov 2026 12:00:11 UTC")  # NOW + 11 s
    with pytest.raises(ReleaseRejectedError, match=r"11 s ahead of this machine's clock"):
        check_release(ahead, dist="stable", now=NOW, max_future=timedelta(seconds=10))
    check_release(ahead, dist="stable", now=NOW, max_future=timedelta(seconds=11))
    far = release(date="Fri, 27 Nov 2026 12:00:00 UTC")
    with pytest.raises(ReleaseRejectedError, match=r"2 days ahead.*max_future_time"):
        check_release(far, dist="stable", now=NOW, max_future=timedelta(seconds=10))
