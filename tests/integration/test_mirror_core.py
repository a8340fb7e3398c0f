"""Core mirroring against a real signed sample repository served on loopback.

Each test builds (or reuses, read-only) a repository made by ``aptmirror.testing``, serves
it with :class:`ThreadedUpstream`, runs the real CLI and checks the mirror file by file
against what the builder wrote — never against aptmirror's own parsers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from aptmirror.testing import RepoInfo, TestKey, update_repo

from .conftest import (
    ServeFn,
    make_repo,
    mirror_root,
    repo_lines,
    request_paths,
    run_cli,
    run_cli_subprocess,
    sha256_file,
    tree_snapshot,
    url_dir,
    var_dir,
    write_mirror_list,
)

RELEASE_NAMES = {"InRelease", "Release", "Release.gpg"}
COMPRESSED = (".gz", ".xz", ".bz2", ".lzma", ".zst")

# --------------------------------------------------------------------------- ground truth


def release_entries(release: Path, field: str = "SHA256") -> dict[str, tuple[str, int]]:
    """``path -> (digest, size)`` from one hash section of an upstream Release file."""
    out: dict[str, tuple[str, int]] = {}
    inside = False
    for line in release.read_text().splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == f"{field}:"
            continue
        if inside:
            digest, size, name = line.split()
            out[name] = (digest, int(size))
    return out


def pool_truth(info: RepoInfo) -> dict[str, tuple[int, str, str]]:
    """Every pool file the builder wrote: ``relpath -> (size, sha256, md5)``."""
    out = {p.filename: (p.size, p.sha256, p.md5) for p in info.packages}
    for s in info.sources:
        for f in s.files:
            out[f"{s.directory}/{f.name}"] = (f.size, f.sha256, f.md5)
    return out


def is_compressed(path: str) -> bool:
    return path.endswith(COMPRESSED)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def var_lines(tmp_path: Path, name: str) -> list[str]:
    return (var_dir(tmp_path) / name).read_text().splitlines()


def digest_lines(tmp_path: Path, name: str) -> dict[str, str]:
    """``path -> digest`` from var/MD5|SHA1|SHA256; every line must be ``<hex>  <path>``."""
    out: dict[str, str] = {}
    for line in var_lines(tmp_path, name):
        digest, sep, path = line.partition("  ")
        assert sep and digest and path, f"bad {name} line {line!r}"
        assert out.setdefault(path, digest) == digest, f"conflicting {name} for {path}"
    return out


def assert_suite_matches_release(
    suite_dir: Path, release: Path, only: set[str] | None = None
) -> None:
    """Every file the Release lists (or those in ``only``) is in ``suite_dir`` with the
    Release's size and hash."""
    entries = release_entries(release)
    assert entries, "upstream Release lists nothing"
    for rel, (digest, size) in sorted(entries.items()):
        if only is not None and rel not in only:
            continue
        f = suite_dir / rel
        assert f.is_file(), f"{rel} listed in Release but missing from the mirror"
        assert f.stat().st_size == size, f"{rel}: wrong size"
        assert sha256_file(f) == digest, f"{rel}: wrong SHA256"


def assert_pool_complete(root: Path, info: RepoInfo) -> None:
    truth = pool_truth(info)
    assert truth
    for rel, (size, sha256, _md5) in sorted(truth.items()):
        f = root / rel
        assert f.is_file(), f"pool file {rel} missing"
        assert f.stat().st_size == size and sha256_file(f) == sha256, f"{rel} corrupt"


# --------------------------------------------------------------------------- 1. full mirror


def test_full_mirror_of_default_repo(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sample_repo
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert "1 of 1 suites published" in res.stdout

    root = mirror_root(tmp_path, up.url)
    assert root.name.startswith("127.0.0.1:"), "non-default port must stay in the path"
    dists = root / "dists"
    suite = dists / info.suite

    # dists/SUITE is a symlink to a snapshot directory beside it.
    assert suite.is_symlink()
    target = suite.resolve()
    assert target.is_dir() and target.parent == dists.resolve()
    assert target.name != info.suite

    # Release files published byte for byte.
    for name in RELEASE_NAMES:
        assert (suite / name).read_bytes() == (info.dist_dir / name).read_bytes(), name

    # Everything the Release lists (only our components/arches exist in this repo), including
    # the listed-but-not-served uncompressed variants, with the Release's size and hash.
    entries = release_entries(info.release)
    listed = set(entries)
    for must in (
        "main/binary-amd64/Packages.xz",
        "main/binary-i386/Packages.gz",
        "main/binary-all/Packages",
        "contrib/source/Sources.xz",
        "Contents-amd64.gz",
        "main/Contents-all.gz",
        "main/i18n/Translation-en.bz2",
        "main/dep11/Components-amd64.yml.gz",
        "main/dep11/icons-64x64@2.tar.gz",
        "contrib/cnf/Commands-i386.xz",
        "main/binary-amd64/Release",
    ):
        assert must in listed, f"sample repo no longer lists {must}"
    listed_only = {p.removeprefix(f"dists/{info.suite}/") for p in info.listed_only}
    assert listed_only, "sample repo should list uncompressed variants it does not serve"
    assert_suite_matches_release(suite, info.release)

    # Nothing else in the snapshot but the Release files and by-hash objects.
    published = {p.relative_to(target).as_posix() for p in target.rglob("*") if not p.is_dir()}
    extra = {p for p in published if "/by-hash/" not in f"/{p}"} - listed - RELEASE_NAMES
    assert not extra, f"unexpected files published: {sorted(extra)}"

    # by-hash: every upstream by-hash object, and a SHA256 object for every listed index.
    for rel in info.by_hash:
        rel_suite = rel.removeprefix(f"dists/{info.suite}/")
        mirrored = suite / rel_suite
        assert mirrored.is_file(), f"by-hash object {rel} missing"
        assert mirrored.read_bytes() == (info.root / rel).read_bytes()
    for rel, (digest, _size) in entries.items():
        obj = suite / os.path.dirname(rel) / "by-hash" / "SHA256" / digest
        assert obj.is_file(), f"no by-hash/SHA256 object for {rel}"
        assert sha256_file(obj) == digest

    # Pool: every file of every Packages/Sources, with the right SHA256.
    assert_pool_complete(root, info)

    # var/ lists (COMPAT B.6).
    prefix = url_dir(up.url)
    truth = pool_truth(info)
    expected_paths = {f"{prefix}/{rel}" for rel in truth}
    all_lines = var_lines(tmp_path, "ALL")
    assert set(all_lines) == expected_paths
    assert set(var_lines(tmp_path, "NEW")) == {f"{up.url}{rel}" for rel in truth}
    md5 = digest_lines(tmp_path, "MD5")
    sha256 = digest_lines(tmp_path, "SHA256")
    assert md5 == {f"{prefix}/{rel}": v[2] for rel, v in truth.items()}
    deb_sha = {f"{prefix}/{p.filename}": p.sha256 for p in info.packages}
    assert deb_sha.items() <= sha256.items()
    for path, digest in sha256.items():
        assert truth[path.removeprefix(prefix + "/")][1] == digest
    assert var_lines(tmp_path, "SHA1") == []  # the sample Packages carry no SHA1 field

    # The documented check, run for real.
    mirror = tmp_path / "base" / "mirror"
    proc = subprocess.run(
        ["sha256sum", "--strict", "-c", "../var/SHA256"],
        cwd=mirror,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": OK") == len(var_lines(tmp_path, "SHA256")) > 0


def test_full_mirror_via_subprocess(tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn) -> None:
    """The real ``python -m aptmirror.cli``: relative config, base_path and signed-by paths,
    one architecture (plus ``all``)."""
    up = serve(sample_repo.root)
    shutil.copy(sample_repo.keyring, tmp_path / "keyring.gpg")
    lines = [
        "set base_path ./rel-base",
        "set run_postmirror 0",
        # A bare relative keyring (relative to the cwd), which gpgv alone would look up
        # in its homedir.
        *repo_lines(sample_repo, up.url, Path("keyring.gpg"), arches=["amd64"]),
    ]
    assert "signed-by=keyring.gpg]" in lines[2]
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "mirror.list").write_text("\n".join(lines) + "\n")
    res = run_cli_subprocess("conf/mirror.list", cwd=tmp_path)
    assert res.code == 0, res.output
    assert "Downloading" in res.stdout and "archive" in res.stdout
    root = tmp_path / "rel-base" / "mirror" / url_dir(up.url)
    suite = root / "dists" / sample_repo.suite

    # Exactly the Release-listed files for amd64 + all (+ sources, i18n, dep11 icons…).
    wanted = {p for p in release_entries(sample_repo.release) if "i386" not in p}
    published = {
        p.relative_to(suite).as_posix()
        for p in suite.rglob("*")
        if p.is_file() and "/by-hash/" not in f"/{p.relative_to(suite)}"
    }
    assert published - RELEASE_NAMES == wanted
    assert_suite_matches_release(suite, sample_repo.release, only=wanted)
    assert not any("i386" in p for p in request_paths(up))
    assert (root / sample_repo.package("hello", "amd64").filename).is_file()
    assert not (root / sample_repo.package("hello", "i386").filename).exists()
    assert (root / sample_repo.package("hello-doc").filename).is_file()  # arch all
    proc = subprocess.run(
        ["sha256sum", "-c", "../var/SHA256"],
        cwd=tmp_path / "rel-base" / "mirror",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- 2. incremental


def test_incremental_runs_fetch_only_what_changed(
    tmp_path: Path,
    repo_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = make_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    assert run_cli(cfg, capsys).code == 0
    root = mirror_root(tmp_path, up.url)
    mirror = tmp_path / "base" / "mirror"
    before = tree_snapshot(mirror)

    # Nothing changed upstream: only the Release files are requested; mirror untouched.
    up.reset_log()
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    suite_path = f"/dists/{info.suite}/"
    assert sorted(request_paths(up, None)) == sorted(suite_path + n for n in RELEASE_NAMES)
    assert tree_snapshot(mirror) == before
    assert var_lines(tmp_path, "NEW") == []
    assert set(var_lines(tmp_path, "ALL")) == {
        f"{url_dir(up.url)}/{rel}" for rel in pool_truth(info)
    }

    # Upstream publishes a new version of one package.
    old_release = release_entries(info.release)
    old_pool = pool_truth(info)
    new = update_repo(info, repo_key, bump=["native-data"])
    new_release = release_entries(new.release)
    new_pool = pool_truth(new)
    added_pool = set(new_pool) - set(old_pool)
    assert added_pool, "the bump should add pool files"
    assert all(old_pool[p] == new_pool[p] for p in set(old_pool) & set(new_pool)), (
        "test premise: the builder must not rewrite surviving pool files"
    )
    changed = {p for p, v in new_release.items() if old_release.get(p) != v}
    assert any("binary-all/Packages" in p for p in changed)

    up.reset_log()
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    got = request_paths(up, None)
    assert all(r.status == 200 for r in up.requests), up.requests

    # Index requests: exactly the changed files, by hash; an uncompressed variant whose
    # compressed sibling changed is made locally, not downloaded.
    expected_index: set[str] = set()
    for rel in changed:
        stem = rel
        for ext in COMPRESSED:
            stem = stem.removesuffix(ext)
        derivable = not is_compressed(rel) and any(
            (stem + ext) in new_release for ext in COMPRESSED
        )
        if not derivable:
            digest = new_release[rel][0]
            expected_index.add(f"{suite_path}{os.path.dirname(rel)}/by-hash/SHA256/{digest}")
    release_reqs = {suite_path + n for n in RELEASE_NAMES}
    index_reqs = {p for p in got if p.startswith(suite_path)} - release_reqs
    assert index_reqs == expected_index
    assert release_reqs <= set(got)
    pool_reqs = [p for p in got if not p.startswith("/dists/")]
    assert sorted(pool_reqs) == sorted(f"/{p}" for p in added_pool)

    # The new versions are published and consistent.
    suite = root / "dists" / info.suite
    assert (suite / "InRelease").read_bytes() == new.inrelease.read_bytes()
    assert_suite_matches_release(suite, new.release)
    assert_pool_complete(root, new)
    assert set(var_lines(tmp_path, "NEW")) == {f"{up.url}{p}" for p in added_pool}
    pkgs = (suite / "main" / "binary-all" / "Packages").read_text()
    assert f"Version: {new.package('native-data').spec.version}" in pkgs
    assert new.package("native-data").spec.version != info.package("native-data").spec.version
    # By-hash objects of the previous generation survive (clients mid-update).
    old_obj = f"main/binary-all/by-hash/SHA256/{old_release['main/binary-all/Packages.xz'][0]}"
    assert (suite / old_obj).is_file()


# --------------------------------------------------------------------------- 3. URL forms


def test_skel_keeps_only_the_current_by_hash_generation(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """The staging tree does not grow by a copy of every changed index at each update
    (hundreds of MB a day for Debian's Contents and Packages): once a suite's new indexes
    are published, skel holds the by-hash objects of that generation only. The published
    suite still serves the previous generation's by-hash objects (apt clients in between)."""
    info = make_repo(tmp_path, repo_key)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    assert run_cli(cfg, capsys).code == 0
    skel = tmp_path / "base" / "skel" / url_dir(up.url) / "dists" / info.suite

    def by_hash(tree: Path) -> set[str]:
        return {str(p.relative_to(tree)) for p in tree.rglob("*") if "/by-hash/" in str(p)}

    def current(release: Path) -> set[str]:
        entries = release_entries(release)
        dirs = {rel: rel.rpartition("/")[0] for rel in entries}
        return {f"{dirs[rel]}/by-hash/SHA256/{d}".lstrip("/") for rel, (d, _) in entries.items()}

    for bump in (["native-data"], ["hello"], ["native-data"]):
        previous = current(info.release)
        info = update_repo(info, repo_key, bump=bump)
        res = run_cli(cfg, capsys)
        assert res.code == 0, res.output
        objects = {p for p in by_hash(skel) if "/SHA256/" in p}
        assert objects and objects <= current(info.release), objects - current(info.release)
        live = by_hash(mirror_root(tmp_path, up.url) / "dists" / info.suite)
        assert previous & current(info.release) <= live  # unchanged indexes
        assert (previous - current(info.release)) & live  # the generation before


@pytest.mark.parametrize("tilde", [False, True], ids=["tilde0", "tilde1"])
def test_url_with_tilde_plus_port_and_credentials(
    tmp_path: Path,
    sample_repo: RepoInfo,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    tilde: bool,
) -> None:
    info = sample_repo
    up = serve(info.root, path_prefix="~user/deb+repo", auth=("user", "s3cret"))
    assert up.url.endswith("/~user/deb+repo/")
    url = up.url.replace("http://", "http://user:s3cret@")
    cfg = write_mirror_list(
        tmp_path, repo_lines(info, url), settings={"_tilde": "1" if tilde else "0"}
    )
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert not any(r.status == 401 for r in up.requests), "credentials were not sent"

    mirror = tmp_path / "base" / "mirror"
    hosts = [p.name for p in mirror.iterdir()]
    assert hosts == [f"127.0.0.1:{up.server.port}"], "no credentials in paths, port kept"
    root = mirror_root(tmp_path, up.url, tilde=tilde)
    user_dir = "%7Euser" if tilde else "~user"
    assert root == mirror / hosts[0] / user_dir / "deb+repo"
    assert sorted(p.name for p in (mirror / hosts[0]).iterdir()) == [user_dir]
    assert_suite_matches_release(root / "dists" / info.suite, info.release)
    for p in info.packages:
        assert (root / p.filename).is_file(), p.filename
    assert "user:s3cret" not in "".join(str(p) for p in mirror.rglob("*"))

    prefix = f"127.0.0.1:{up.server.port}/{user_dir}/deb+repo"
    assert set(var_lines(tmp_path, "ALL")) == {f"{prefix}/{r}" for r in pool_truth(info)}
    # NEW carries full URLs, credentials included (COMPAT B.6).
    new = var_lines(tmp_path, "NEW")
    assert new and all(line.startswith("http://user:s3cret@127.0.0.1:") for line in new)
    proc = subprocess.run(
        ["sha256sum", "-c", "../var/SHA256"], cwd=mirror, capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_password_only_in_new(tmp_path, res, "s3cret")
    (repo_log,) = var_dir(tmp_path).glob("*.log")
    assert "downloaded http://user:***@127.0.0.1:" in repo_log.read_text()


def assert_password_only_in_new(tmp_path: Path, res: Any, password: str) -> None:
    """The password is in no output, log, report or state DB: only in ``var/NEW``, whose
    URLs are for downloading (COMPAT B.6), and the mirror.list itself."""
    assert password not in res.output
    holding = {
        p.name
        for p in (tmp_path / "base").rglob("*")
        if p.is_file() and password.encode() in p.read_bytes()
    }
    assert holding <= {"NEW"}, holding
    assert (var_dir(tmp_path) / "aptmirror.db").is_file()


def test_wrong_credentials_fail_and_publish_nothing(
    tmp_path: Path,
    sample_repo: RepoInfo,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    up = serve(sample_repo.root, auth=("user", "right"))
    url = up.url.replace("http://", "http://user:wr0ng-pw@")
    cfg = write_mirror_list(tmp_path, repo_lines(sample_repo, url))
    res = run_cli(cfg, capsys)
    assert res.code == 1, res.output
    assert "401" in res.stdout, "the summary should say why"
    assert not (mirror_root(tmp_path, up.url) / "dists" / sample_repo.suite).exists()
    assert "http://user:***@127.0.0.1:" in res.stdout  # the failed URL, password masked
    assert_password_only_in_new(tmp_path, res, "wr0ng-pw")
    report = (var_dir(tmp_path) / "run-report.json").read_text()
    assert "user:***@" in report


# --------------------------------------------------------------------------- 4. repo shapes


def test_flat_repository(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key, flat=True, flat_dir="flat")
    up = serve(info.root)
    lines = repo_lines(info, up.url)
    assert lines[0].endswith(" flat/")
    cfg = write_mirror_list(tmp_path, lines)
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    root = mirror_root(tmp_path, up.url)
    flat = root / "flat"
    assert not flat.is_symlink() and flat.is_dir()
    for name in RELEASE_NAMES:
        if (info.dist_dir / name).exists():
            assert (flat / name).read_bytes() == (info.dist_dir / name).read_bytes()
    assert_suite_matches_release(flat, info.release)
    assert "Packages" in "".join(release_entries(info.release))
    assert_pool_complete(root, info)
    assert all(p.filename.startswith("flat/") for p in info.packages)
    assert not (root / "dists").exists()
    prefix = url_dir(up.url)
    assert set(var_lines(tmp_path, "ALL")) == {f"{prefix}/{r}" for r in pool_truth(info)}
    # A re-run requests only the Release files.
    up.reset_log()
    assert run_cli(cfg, capsys).code == 0
    assert {p.rsplit("/", 1)[1] for p in request_paths(up, None)} <= RELEASE_NAMES


def test_sources_without_files_field(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key, sources_without_files=True)
    sources = (info.dist_dir / "main" / "source" / "Sources").read_text()
    assert "Checksums-Sha256:" in sources and "\nFiles:" not in sources
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url, binary=False, source=True))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    root = mirror_root(tmp_path, up.url)
    truth = pool_truth(info)
    src_files = {f"{s.directory}/{f.name}" for s in info.sources for f in s.files}
    assert src_files
    for rel in src_files:
        f = root / rel
        assert f.is_file() and sha256_file(f) == truth[rel][1], rel
    prefix = url_dir(up.url)
    sha = digest_lines(tmp_path, "SHA256")
    assert {p: d for p, d in sha.items()} == {f"{prefix}/{r}": truth[r][1] for r in src_files}
    assert digest_lines(tmp_path, "MD5") == {}  # no MD5 known without Files:


def test_deb_src_only_config(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sample_repo
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url, binary=False, source=True))
    assert "deb " not in cfg.read_text()
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    root = mirror_root(tmp_path, up.url)
    suite = root / "dists" / info.suite
    for comp in info.components:
        assert (suite / comp / "source" / "Sources").is_file()
        assert not list((suite / comp).glob("binary-*")), "no binary indexes wanted"
    assert not list(root.rglob("*.deb")), "no .deb wanted for deb-src only"
    assert not any("/binary-" in p for p in request_paths(up))
    src_files = {f"{s.directory}/{f.name}" for s in info.sources for f in s.files}
    assert set(var_lines(tmp_path, "ALL")) == {f"{url_dir(up.url)}/{r}" for r in src_files}
    for rel in src_files:
        assert sha256_file(root / rel) == pool_truth(info)[rel][1]


def test_what_the_release_does_not_serve_is_warned_about(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt component, an architecture the repository does not build and an inline
    "comment" (read as components, as apt-mirror does) are said, with the file and line
    for the config's part; the rest is mirrored and published as usual (exit 0)."""
    info = sample_repo
    up = serve(info.root)
    comps = " ".join(info.components)
    arches = ",".join([*info.arches, "armhf"])
    base = up.url.rstrip("/") + "/"
    line = f"deb [arch={arches} signed-by={info.keyring}] {base} {info.suite} {comps} mian"
    cfg = write_mirror_list(tmp_path, [f"{line} # not a comment"])
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert (
        f"{cfg}:3: '#' starts no comment on a deb line (as in apt-mirror): '#', 'not', 'a',"
        " 'comment' are read as components; put comments on a line of their own"
    ) in res.stderr
    suite_url = f"{base}dists/{info.suite}"
    listed = " ".join(info.components)
    assert (
        f"Warning: {suite_url}: the Release has no index for components 'mian', '#', 'not',"
        f" 'a', 'comment' (it lists: {listed}); nothing is mirrored for them"
    ) in res.stdout
    release_arches = " ".join(["all", *info.arches] if info.options.binary_all else info.arches)
    assert (
        f"Warning: {suite_url}: the Release has no index for architecture 'armhf'"
        f" (it lists: {release_arches}); nothing is mirrored for it"
    ) in res.stdout
    report = json.loads((var_dir(tmp_path) / "run-report.json").read_text())
    assert [w.split(": the Release has no index for ")[1][:12] for w in report["warnings"]] == [
        "components '",
        "architecture",
    ]
    root = mirror_root(tmp_path, up.url)
    assert info.packages
    for pkg in info.packages:  # every binary package of the served parts, verified
        assert sha256_file(root / pkg.filename) == pkg.sha256, pkg.filename
    assert (root / "dists" / info.suite / "InRelease").is_file()  # published
    assert not any("mian" in p or "armhf" in p for p in request_paths(up))


def test_only_xz_indexes_listed_uncompressed_made_locally(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key, compressions=(".xz",))
    assert "dists/stable/main/binary-amd64/Packages" in info.listed_only
    assert not (info.dist_dir / "main" / "binary-amd64" / "Packages").exists()
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    suite = mirror_root(tmp_path, up.url) / "dists" / info.suite
    assert_suite_matches_release(suite, info.release)
    assert (suite / "main" / "binary-amd64" / "Packages").is_file()
    assert not list(suite.rglob("Packages.gz"))
    # The uncompressed variants were decompressed locally, never asked for.
    asked = request_paths(up)
    assert not any(p.endswith(("/Packages", "/Sources")) for p in asked)
    # Only by-hash attempts may miss (this builder has no by-hash copy of the small
    # binary-*/Release files); the canonical name is then fetched.
    missed = [r.path for r in up.requests if r.status != 200]
    assert all("/by-hash/" in p for p in missed), missed
    assert_pool_complete(mirror_root(tmp_path, up.url), info)


def test_repository_without_by_hash(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key, by_hash=False)
    assert "Acquire-By-Hash" not in info.release.read_text()
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    suite = mirror_root(tmp_path, up.url) / "dists" / info.suite
    assert_suite_matches_release(suite, info.release)
    assert not [p for p in suite.rglob("*") if p.name == "by-hash"]
    assert not any("/by-hash/" in p for p in request_paths(up))
    assert all(r.status == 200 for r in up.requests)
    assert_pool_complete(mirror_root(tmp_path, up.url), info)


# --------------------------------------------------------------------------- 5. shared files


def test_arch_all_and_shared_pool_files_downloaded_once(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sample_repo
    up = serve(info.root)
    # Two lines for the same suite (as deb-amd64 + deb-i386 would be), plus deb-src.
    lines = [
        *repo_lines(info, up.url, arches=["amd64"], source=False),
        *repo_lines(info, up.url, arches=["i386"], source=True),
    ]
    cfg = write_mirror_list(tmp_path, lines)
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    doc = info.package("hello-doc").filename
    amd64 = (info.dist_dir / "main" / "binary-amd64" / "Packages").read_text()
    i386 = (info.dist_dir / "main" / "binary-i386" / "Packages").read_text()
    assert doc in amd64 and doc in i386, "test premise: the all package is in both lists"
    pool_reqs = Counter(p for p in request_paths(up) if not p.startswith("/dists/"))
    assert set(pool_reqs) == {f"/{r}" for r in pool_truth(info)}
    assert {p: n for p, n in pool_reqs.items() if n != 1} == {}
    assert up.count("/dists/*/InRelease") == 1, "one Release fetch per suite"
    # Canonical index names are fetched at most once (by-hash URLs may repeat when two
    # indexes have identical bytes; see the report).
    index_reqs = Counter(
        p for p in request_paths(up) if p.startswith("/dists/") and "/by-hash/" not in p
    )
    assert {p: n for p, n in index_reqs.items() if n != 1} == {}
    assert len(var_lines(tmp_path, "NEW")) == len(pool_truth(info))


def test_republish_in_the_same_second_leaves_live_snapshot_alone(
    tmp_path: Path,
    repo_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two runs sharing a snapshot stamp: the live snapshot is never rebuilt in place."""
    import aptmirror.storage.publish as publish

    real_strftime = time.strftime

    def fixed_stamp(fmt: str, *args: Any) -> str:
        return "20240101T000000" if fmt == "%Y%m%dT%H%M%S" else real_strftime(fmt, *args)

    monkeypatch.setattr(time, "strftime", fixed_stamp)  # the run's snapshot stamp
    info = make_repo(tmp_path, repo_key, sources=False, contents=False, dep11=False, cnf=False)
    up = serve(info.root)
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url))
    first = run_cli(cfg, capsys)
    assert first.code == 0, first.output
    suite = mirror_root(tmp_path, up.url) / "dists" / info.suite
    old_inrelease = (suite / "InRelease").read_bytes()
    first_target = os.readlink(suite)

    new = update_repo(info, repo_key, bump=["hello"])
    seen: list[bool] = []
    real_link = os.link

    def spy(src: Path, dest: Path, *args: Any, **kw: Any) -> None:
        if f"/.{info.suite}." in str(dest):  # a file of the snapshot being built
            live = suite / "InRelease"
            seen.append(live.is_file() and live.read_bytes() == old_inrelease)
        real_link(src, dest, *args, **kw)

    monkeypatch.setattr(publish.os, "link", spy)
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert seen and all(seen), "the live snapshot changed while the new one was being built"
    assert os.readlink(suite) != first_target
    assert not (suite.parent / first_target).exists(), "old snapshot removed afterwards"
    assert (suite / "InRelease").read_bytes() == new.inrelease.read_bytes()
    assert_suite_matches_release(suite, new.release)


def test_each_line_gets_its_own_components_and_architectures(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """``deb … main contrib`` (amd64), ``deb-i386 … main`` and ``deb-src … main`` for one
    suite: no contrib for i386 and no contrib sources, as in the Perl tool (merging the
    lines' components and architectures used to mirror both)."""
    info = sample_repo
    up = serve(info.root)
    base = up.url.rstrip("/") + "/"
    kr = info.keyring
    lines = [
        f"deb [arch=amd64 signed-by={kr}] {base} {info.suite} main contrib",
        f"deb-i386 [signed-by={kr}] {base} {info.suite} main",
        f"deb-src [signed-by={kr}] {base} {info.suite} main",
    ]
    res = run_cli(write_mirror_list(tmp_path, lines), capsys)
    assert res.code == 0, res.output
    wanted = {
        p.filename
        for p in info.packages
        if p.spec.component == "main" or p.spec.arch in ("amd64", "all")
    }
    wanted |= {
        f"{s.directory}/{f.name}" for s in info.sources if s.component == "main" for f in s.files
    }
    unwanted = {p.filename for p in info.packages} - wanted
    unwanted |= {
        f"{s.directory}/{f.name}" for s in info.sources if s.component != "main" for f in s.files
    }
    assert unwanted  # the sample has contrib i386 packages and contrib sources
    assert set(var_lines(tmp_path, "ALL")) == {f"{url_dir(up.url)}/{r}" for r in wanted}
    root = mirror_root(tmp_path, up.url)
    assert not [r for r in unwanted if (root / r).exists()]
    asked = request_paths(up)
    assert not [p for p in asked if "contrib/binary-i386" in p or "contrib/source" in p]
    assert any("main/binary-i386/" in p for p in asked)
    assert any("contrib/binary-amd64/" in p for p in asked)
