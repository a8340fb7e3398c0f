"""Several repositories merged into one published tree (``mirror_path URL PATH`` shared).

Two signed upstream repositories on two loopback servers (different keys, suites and
packages) are stored under ``mirror/merged/debian``: each suite is its own ``dists/SUITE``
snapshot, the pool files merge, and cleaning the shared tree keeps both repositories' files.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aptmirror.testing import RepoInfo, TestKey, update_repo
from aptmirror.testing._repomodel import PackageSpec
from aptmirror.testing.aptclient import AptClient

from .conftest import (
    ServeFn,
    base_dir,
    make_repo,
    repo_lines,
    run_cli,
    var_dir,
    write_mirror_list,
)

ALPHA = (
    PackageSpec("alpha", "1.0-1", "amd64"),
    PackageSpec("alpha-data", "1.0-1", "all", source="alpha"),
    PackageSpec("alpha-extra", "2.0", "amd64"),
)
BETA = (
    PackageSpec("beta", "3.1-2", "amd64"),
    PackageSpec("beta-doc", "3.1-2", "all", section="doc", source="beta"),
)
MERGED = "merged/debian"


def _repo(
    tmp_path: Path, key: TestKey, name: str, suite: str, pkgs: tuple[PackageSpec, ...]
) -> RepoInfo:
    return make_repo(
        tmp_path, key, name, suite=suite, codename=suite, components=("main",),
        arches=("amd64",), packages=list(pkgs),
    )  # fmt: skip


def _pool(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in (root / "pool").rglob("*") if p.is_file()}


def _removals(script: Path) -> list[str]:
    return [line for line in script.read_text().splitlines() if line.startswith("rm ")]


def _sha256sum_check(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sha256sum", "--quiet", "-c", "../var/SHA256"],
        cwd=base_dir(tmp_path) / "mirror",
        capture_output=True,
        text=True,
        check=False,
    )


def test_two_repositories_merged_into_one_tree(
    tmp_path: Path,
    repo_key: TestKey,
    fresh_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = _repo(tmp_path, repo_key, "a", "stable", ALPHA)
    b = _repo(tmp_path, fresh_key, "b", "extra", BETA)
    up_a, up_b = serve(a.root), serve(b.root)
    lines = [
        *repo_lines(a, up_a.url),
        *repo_lines(b, up_b.url),
        f"mirror_path {up_a.url} {MERGED}",
        f"mirror_path {up_b.url} {MERGED}/",
        f"clean {up_a.url}",
        f"clean {up_b.url}",
    ]
    cfg = write_mirror_list(tmp_path, lines)
    first = run_cli(cfg, capsys)
    assert first.code == 0, first.output

    mirror = base_dir(tmp_path) / "mirror"
    tree = mirror / MERGED
    assert sorted(p.name for p in mirror.iterdir()) == ["merged"]  # nothing under host:port
    for suite in ("stable", "extra"):
        link = tree / "dists" / suite
        assert link.is_symlink() and (link / "InRelease").is_file(), suite
    expected = {p.filename for p in a.packages} | {p.filename for p in b.packages}
    assert expected <= _pool(tree)
    assert _pool(tree) == _pool(a.root) | _pool(b.root)
    check = _sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    all_list = (var_dir(tmp_path) / "ALL").read_text().split()
    assert all(p.startswith(f"{MERGED}/pool/") for p in all_list), all_list[:5]
    assert _removals(var_dir(tmp_path) / "clean.sh") == []  # nothing of either to delete
    assert "0 bytes in 0 files" in first.stdout, first.stdout

    # _autoclean deletes nothing of either repository
    auto = write_mirror_list(tmp_path, lines, settings={"_autoclean": "1"})
    before = _pool(tree)
    second = run_cli(auto, capsys)
    assert second.code == 0, second.output
    assert _pool(tree) == before

    # one upstream drops a package: exactly its files go, the other repository's stay
    dropped = next(p.filename for p in a.packages if p.spec.name == "alpha-extra")
    update_repo(a, repo_key, remove=["alpha-extra"])
    third = run_cli(auto, capsys)
    assert third.code == 0, third.output
    assert dropped in before
    assert _pool(tree) == {f for f in before if "/alpha-extra/" not in f}  # .deb, .dsc, tar
    assert {p.filename for p in b.packages} <= _pool(tree)
    check = _sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr

    # real apt against the merged tree: one package from each suite, each with its own key
    served = serve(tree)
    apt = AptClient(
        tmp_path / "apt",
        [
            f"deb [signed-by={a.keyring}] {served.url} stable main",
            f"deb [signed-by={b.keyring}] {served.url} extra main",
        ],
        arches=("amd64",),
    )
    apt.update()
    apt.download(["alpha", "beta"])
    debs = sorted(p.name.split("_")[0] for p in apt.download_dir.glob("*.deb"))
    assert debs == ["alpha", "beta"], debs


def test_deb822_mirror_path_and_verify(
    tmp_path: Path,
    repo_key: TestKey,
    fresh_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = _repo(tmp_path, repo_key, "a", "stable", ALPHA)
    b = _repo(tmp_path, fresh_key, "b", "extra", BETA)
    up_a, up_b = serve(a.root), serve(b.root)
    cfg = write_mirror_list(
        tmp_path, [*repo_lines(a, up_a.url), f"mirror_path {up_a.url} {MERGED}"]
    )
    (tmp_path / "mirror.list.d").mkdir()
    (tmp_path / "mirror.list.d" / "b.sources").write_text(
        f"Types: deb\nURIs: {up_b.url}\nSuites: extra\nComponents: main\n"
        f"Architectures: amd64\nSigned-By: {b.keyring}\nMirror-Path: {MERGED}\nClean: yes\n"
    )
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    tree = base_dir(tmp_path) / "mirror" / MERGED
    assert (tree / "dists" / "stable" / "InRelease").is_file()
    assert (tree / "dists" / "extra" / "InRelease").is_file()
    assert _removals(var_dir(tmp_path) / "clean.sh") == []

    from aptmirror.cli import main

    capsys.readouterr()
    code = main(["verify", str(cfg)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "extra" in out


def test_same_pool_path_with_other_contents_fails_the_second_repository(
    tmp_path: Path,
    repo_key: TestKey,
    fresh_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = _repo(tmp_path, repo_key, "a", "stable", (PackageSpec("shared", "1.0", "amd64"),))
    b = _repo(
        tmp_path, fresh_key, "b", "extra", (PackageSpec("shared", "1.0", "amd64", size=9000),)
    )
    up_a, up_b = serve(a.root), serve(b.root)
    lines = [
        *repo_lines(a, up_a.url),
        *repo_lines(b, up_b.url),
        f"mirror_path {up_a.url} {MERGED}",
        f"mirror_path {up_b.url} {MERGED}",
    ]
    result = run_cli(write_mirror_list(tmp_path, lines), capsys)
    assert result.code == 1, result.output
    assert f"{up_a.url} stores other contents at {MERGED}/pool/" in result.output, result.output
    tree = base_dir(tmp_path) / "mirror" / MERGED
    assert (tree / "dists" / "stable" / "InRelease").is_file()
    assert not (tree / "dists" / "extra").exists()
