"""Trust end to end (issue 5): real keys, real gpgv, the real CLI on a loopback upstream.

Keyrings (binary, armoured, inline deb822 ``Signed-By``, system keyrings), per-repository
``gpg_verify``, Release sanity (expired, replayed, foreign suite, missing signature), the
checksum policy and planted symlinks. Every refusal exits 1, names the suite and the reason,
and publishes nothing.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aptmirror.testing import Fault, RepoInfo, TestKey, build_repo, update_repo

from .conftest import (
    CliResult,
    ServeFn,
    base_dir,
    mirror_root,
    repo_lines,
    run_cli,
    tree_snapshot,
    write_mirror_list,
)

pytestmark = pytest.mark.usefixtures("fast_retries")


SMALL = {"arches": ("amd64",), "components": ("main",), "contents": False, "dep11": False}


def small_repo(tmp: Path, key: TestKey, **options: object) -> RepoInfo:
    return build_repo(tmp / "repo", key, **{**SMALL, **options})  # type: ignore[arg-type]


def run(cfg: Path, capsys: pytest.CaptureFixture[str]) -> CliResult:
    return run_cli(cfg, capsys)


def suite_dir(tmp: Path, url: str, info: RepoInfo) -> Path:
    return mirror_root(tmp, url) / "dists" / info.suite


def assert_refused(res: CliResult, *needles: str) -> None:
    assert res.code == 1, res.output
    for needle in needles:
        assert needle in res.output, f"{needle!r} not in:\n{res.output}"
    assert "0 of 1 suites published" in res.output


# --------------------------------------------------------------------------- keyrings


def test_armoured_asc_keyring(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url, repo_key.armored))
    res = run(cfg, capsys)
    assert res.code == 0, res.output
    assert (suite_dir(tmp_path, up.url, info) / "InRelease").is_file()


def _sources_file(tmp: Path, url: str, info: RepoInfo, signed_by: str) -> None:
    block = "\n".join(" " + (line or ".") for line in signed_by.strip("\n").split("\n"))
    d = tmp / "mirror.list.d"
    d.mkdir(exist_ok=True)
    (d / "repo.sources").write_text(
        f"Types: deb\nURIs: {url}\nSuites: {info.suite}\nComponents: main\n"
        f"Architectures: amd64\nSigned-By:\n{block}\n"
    )


def test_inline_signed_by_in_deb822(
    tmp_path: Path,
    repo_key: TestKey,
    fresh_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, [])
    _sources_file(tmp_path, up.url, info, fresh_key.armored.read_text())
    res = run(cfg, capsys)
    assert_refused(res, "not in the keyring", repo_key.fingerprint[-16:], "[signed-by=")
    assert not suite_dir(tmp_path, up.url, info).exists()
    _sources_file(tmp_path, up.url, info, repo_key.armored.read_text())
    res = run(cfg, capsys)
    assert res.code == 0, res.output


def test_system_keyrings_fallback(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    line = f"deb [arch=amd64] {up.url} {info.suite} main"
    parts = tmp_path / "trusted.gpg.d"
    parts.mkdir()
    sets = {"etc_trusted": "", "etc_trusted_parts": str(parts), "share_keyrings": ""}
    cfg = write_mirror_list(tmp_path, [line], settings=sets)
    res = run(cfg, capsys)
    assert_refused(res, "no keyring to check the signature with", "[signed-by=", "gpg_verify off")
    shutil.copy(repo_key.keyring, parts / "repo.gpg")
    res = run(cfg, capsys)
    assert res.code == 0, res.output


def test_gpg_verify_off_for_one_repository(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    info.inrelease.unlink()
    info.release_gpg.unlink()
    up = serve(info.root)
    lines = repo_lines(info, up.url)
    cfg = write_mirror_list(tmp_path, lines)
    res = run(cfg, capsys)
    assert_refused(res, f"{up.url}dists/{info.suite}", "no InRelease and no Release.gpg")
    cfg = write_mirror_list(tmp_path, [*lines, f"gpg_verify {up.url} off"])
    res = run(cfg, capsys)
    assert res.code == 0, res.output
    assert "signature NOT checked" in res.output


# --------------------------------------------------------------------------- Release sanity


def test_expired_valid_until(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    info = small_repo(tmp_path, repo_key, valid_until=past, date=past - timedelta(days=1))
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    res = run(cfg, capsys)
    assert_refused(res, "Release expired", "valid_until_tolerance")
    assert not suite_dir(tmp_path, up.url, info).exists()
    tolerant = write_mirror_list(
        tmp_path, repo_lines(info, up.url), settings={"valid_until_tolerance": "10800"}
    )
    assert run(tolerant, capsys).code == 0


def test_a_release_dated_in_the_future_is_not_published(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """Upstream's clock two days ahead: apt clients would refuse the Release ("not valid
    yet"), so it is not published (the suite stays as it was), and upstream's next, correctly
    dated Release is then taken, not refused as a rollback."""
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    assert run(cfg, capsys).code == 0
    before = (suite_dir(tmp_path, up.url, info) / "InRelease").read_bytes()
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    info = update_repo(info, repo_key, bump=("hello",), date=ahead)
    res = run(cfg, capsys)
    assert_refused(res, f"{up.url}dists/{info.suite}", "ahead of this machine's clock")
    assert (suite_dir(tmp_path, up.url, info) / "InRelease").read_bytes() == before
    info = update_repo(info, repo_key, bump=("hello",), date=datetime.now(UTC))
    res = run(cfg, capsys)
    assert res.code == 0, res.output
    assert (suite_dir(tmp_path, up.url, info) / "InRelease").read_bytes() != before


def test_replayed_older_release(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    old = {n: (info.dist_dir / n).read_bytes() for n in ("InRelease", "Release", "Release.gpg")}
    assert run(cfg, capsys).code == 0
    info = update_repo(info, repo_key, bump=("hello",))
    assert run(cfg, capsys).code == 0
    published = base_dir(tmp_path) / "mirror"
    before = tree_snapshot(published)
    for name, data in old.items():  # an attacker replays the old, validly signed files
        (info.dist_dir / name).write_bytes(data)
    res = run(cfg, capsys)
    assert_refused(res, "older than the published", "rollback or replay")
    assert tree_snapshot(published) == before


def test_release_of_another_suite(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    os.symlink(info.suite, info.root / "dists" / "testing")  # serves stable as "testing"
    os.symlink(info.suite, info.root / "dists" / info.codename)
    up = serve(info.root)
    kr = info.keyring
    cfg = write_mirror_list(tmp_path, [f"deb [arch=amd64 signed-by={kr}] {up.url} testing main"])
    res = run(cfg, capsys)
    assert_refused(res, "Suite stable / Codename bookworm, not for the requested 'testing'")
    by_codename = f"deb [arch=amd64 signed-by={kr}] {up.url} {info.codename} main"
    cfg = write_mirror_list(tmp_path, [by_codename])
    res = run(cfg, capsys)
    assert res.code == 0, res.output  # apt accepts the codename as well as the suite


# --------------------------------------------------------------------------- integrity


def test_weak_hashes_warn_and_verify_checksums_off(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key, release_hashes=("MD5Sum",))
    up = serve(info.root)
    hello = info.package("hello", "amd64").filename
    up.add_fault(f"/{hello}", Fault("corrupt"))
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url), settings={"nthreads": "2"})
    res = run(cfg, capsys)
    assert res.code == 1, res.output  # a corrupted body never passes the hash check
    assert "listed with MD5/SHA1 only" in res.output
    cfg = write_mirror_list(
        tmp_path, repo_lines(info, up.url), settings={"verify_checksums": "off", "nthreads": "2"}
    )
    res = run(cfg, capsys)
    assert res.code == 0, res.output  # size-only: the same-size corruption gets through
    assert "checked by size only" in res.output


# --------------------------------------------------------------------------- safe writes


def test_planted_symlink_in_the_pool_is_refused(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = small_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    outside = tmp_path / "outside"
    outside.mkdir()
    pool_main = mirror_root(tmp_path, up.url) / "pool" / "main"
    pool_main.parent.mkdir(parents=True)
    os.symlink(outside, pool_main)
    res = run(cfg, capsys)
    assert_refused(res, "outside", "remove that symlink")
    assert list(outside.iterdir()) == []
    assert not suite_dir(tmp_path, up.url, info).exists()
    pool_main.unlink()
    assert run(cfg, capsys).code == 0
