"""``apt-mirror verify [configfile] [--repair] [--json PATH]`` on a real mirrored repository."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aptmirror.cli import main
from aptmirror.testing import RepoInfo, TestKey, build_repo

from .conftest import (
    ServeFn,
    mirror_root,
    repo_lines,
    run_cli,
    sha256_file,
    var_dir,
    write_mirror_list,
)


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def mirrored(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, RepoInfo]:
    """(config, mirrored repository root, upstream info) after one good run."""
    info = build_repo(tmp_path / "repo", repo_key, arches=("amd64",), dep11=False)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    return cfg, mirror_root(tmp_path, up.url), info


def report(tmp_path: Path) -> dict[str, object]:
    data = json.loads((var_dir(tmp_path) / "verify-report.json").read_text())
    assert isinstance(data, dict)
    return data


def test_good_mirror(
    tmp_path: Path, mirrored: tuple[Path, Path, RepoInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, root, info = mirrored
    old_pool = root / "pool" / "main" / "zz-old.deb"
    old_pool.parent.mkdir(parents=True, exist_ok=True)
    old_pool.write_bytes(b"left over, waiting for clean-up")
    code, out = verify(capsys, str(cfg))
    assert code == 0, out
    assert "0 missing, 0 corrupt, 1 extra" in out
    data = report(tmp_path)
    assert data["ok"] is True and data["missing"] == [] and data["corrupt"] == []
    n_pool = len(info.packages) + sum(len(s.files) for s in info.sources)
    assert isinstance(data["checked"], int) and data["checked"] > n_pool
    assert data["extra"] == [old_pool.relative_to(root.parent).as_posix()]
    suites = data["suites"]
    assert isinstance(suites, list) and suites[0]["signed_by"] == info.fingerprint


def test_corrupt_and_missing_then_repair(
    tmp_path: Path, mirrored: tuple[Path, Path, RepoInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, root, info = mirrored
    corrupt = root / info.package("hello", "amd64").filename
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: a size-only check would miss it
    corrupt.write_bytes(bytes(data))
    deleted = root / info.sources[0].directory / info.sources[0].files[0].name
    deleted.unlink()
    packages = root / "dists" / info.suite / "main" / "binary-amd64" / "Packages.gz"
    packages.write_bytes(packages.read_bytes()[:-3] + b"xyz")
    xz = packages.with_name("Packages.xz")
    by_hash = packages.parent / "by-hash" / "SHA256" / sha256_file(xz)
    by_hash.unlink()  # apt asks for this name when the Release says Acquire-By-Hash
    json_path = tmp_path / "out" / "report.json"

    code, out = verify(capsys, str(cfg), "--json", str(json_path))
    assert code == 1, out
    rel = lambda p: p.relative_to(root.parent).as_posix()  # noqa: E731
    got = json.loads(json_path.read_text())
    assert got["ok"] is False
    assert sorted(got["missing"]) == sorted([rel(deleted), rel(by_hash)])
    corrupt_paths = {c["path"]: c["reason"] for c in got["corrupt"]}
    assert set(corrupt_paths) == {rel(corrupt), rel(packages)}
    assert "SHA256 mismatch" in corrupt_paths[rel(corrupt)]
    assert "CORRUPT" in out and "MISSING" in out

    code, out = verify(capsys, str(cfg), "--repair")
    assert code == 0, out
    assert f"Removed corrupt {corrupt}" in out
    assert sha256_file(corrupt) == info.package("hello", "amd64").sha256
    assert deleted.is_file() and by_hash.is_file()
    assert report(tmp_path)["ok"] is True
    assert os.path.islink(root / "dists" / info.suite)  # republished as a snapshot


def test_bad_signature_is_reported(
    tmp_path: Path,
    mirrored: tuple[Path, Path, RepoInfo],
    fresh_key: TestKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg, root, info = mirrored
    inrelease = root / "dists" / info.suite / "InRelease"
    text = inrelease.read_bytes().replace(b"Label: aptmirror test", b"Label: aptmirror tesT")
    inrelease.unlink()  # a new inode: skel keeps the good copy
    inrelease.write_bytes(text)
    code, out = verify(capsys, str(cfg))
    assert code == 1 and "BAD signature" in out
    errors = report(tmp_path)["errors"]
    assert isinstance(errors, list) and "BAD signature" in errors[0]["reason"]


def test_plain_config_path_still_runs_the_mirror(
    tmp_path: Path, mirrored: tuple[Path, Path, RepoInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, _root, _info = mirrored
    assert run_cli(cfg, capsys).code == 0
    code, out = verify(capsys, str(tmp_path / "nope.list"))
    assert code == 2, out
