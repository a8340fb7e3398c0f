"""Failures never publish: a bad upstream leaves the previously published mirror untouched.

Every test follows the same pattern: a good first run publishes the sample repository; the
whole published tree (paths, symlink targets, file hashes) is snapshotted; upstream then
publishes a new state and misbehaves (fault injection, a bad signature, a broken or
malicious index); the next run must exit 1, name the failing URL (or path) and the reason,
and leave every previously published byte where it was — the only thing allowed to appear
is a *verified* new pool file (pool files are fetched before publication, as ftpsync does;
no published index refers to them yet). Then the fault is cleared and a third run succeeds
and publishes the new state.

Retries keep their real count but a near-zero backoff (the ``fast_retries`` fixture) so
the tests stay fast.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aptmirror.errors import StorageError
from aptmirror.testing import (
    Fault,
    RepoInfo,
    TestKey,
    ThreadedUpstream,
    build_repo,
    sign_release,
    update_repo,
)

from .conftest import (
    CliResult,
    ServeFn,
    base_dir,
    mirror_root,
    release_sha256,
    repo_lines,
    run_cli,
    sha256_file,
    url_dir,
    var_dir,
    write_mirror_list,
)

# --------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("fast_retries")


# Every binary of two source packages, so the old source versions vanish whole (bumping only
# some binaries of a source would rewrite that source's old .dsc with a new Binary: list).
BUMP = ("hello", "hello-doc", "contrib-tool", "contrib-data")


@dataclass
class Scenario:
    """A repository served on loopback, mirrored once successfully."""

    tmp: Path
    key: TestKey
    info: RepoInfo
    up: ThreadedUpstream
    config: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def mirror(self) -> Path:
        """The mirrored repository root (``base/mirror/127.0.0.1:PORT``)."""
        return mirror_root(self.tmp, f"http://127.0.0.1:{self.up.server.port}/")

    @property
    def published(self) -> Path:
        """``base/mirror``: everything a web server would serve."""
        return base_dir(self.tmp) / "mirror"

    def run(self) -> CliResult:
        return run_cli(self.config, self.capsys)

    def update(self, bump: tuple[str, ...] = BUMP) -> RepoInfo:
        self.info = update_repo(self.info, self.key, bump=bump)
        return self.info


def new_scenario(
    tmp_path: Path,
    key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    settings: dict[str, str],
) -> Scenario:
    """The sample repository served on loopback and a mirror.list for it; not mirrored yet."""
    info = build_repo(tmp_path / "repo", key)
    up = serve(info.root)
    config = write_mirror_list(tmp_path, repo_lines(info, up.url), settings=settings)
    return Scenario(tmp_path, key, info, up, config, capsys)


@pytest.fixture
def scenario(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> Scenario:
    sc = new_scenario(tmp_path, repo_key, serve, capsys, {"nthreads": "4"})
    first = sc.run()
    assert first.code == 0, first.output
    assert_published(sc)
    return sc


# --------------------------------------------------------------------------- tree checks

Entry = tuple[str, str]  # ("d", "") | ("l", target) | ("f", sha256)


def tree_state(root: Path) -> dict[str, Entry]:
    """Every path under ``root`` (symlinks not followed) with its symlink target or hash."""
    out: dict[str, Entry] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                out[rel] = ("l", os.readlink(p))
            elif p.is_dir():
                out[rel] = ("d", "")
            else:
                out[rel] = ("f", sha256_file(p))
    return out


def upstream_pool(info: RepoInfo) -> dict[str, str]:
    """Every pool file of ``info``: path relative to the repository root -> SHA256."""
    out = {p.filename: p.sha256 for p in info.packages}
    for s in info.sources:
        for f in s.files:
            out[f"{s.directory}/{f.name}"] = f.sha256
    return out


def assert_unchanged(sc: Scenario, before: dict[str, Entry]) -> None:
    """Everything published before is byte-identical; only verified new pool files appeared
    (and hidden partial files of cut-off transfers, kept to be resumed)."""
    after = tree_state(sc.published)
    changed = {rel: (old, after.get(rel)) for rel, old in before.items() if after.get(rel) != old}
    assert not changed, f"published tree changed: {changed}"
    prefix = sc.mirror.relative_to(sc.published).as_posix() + "/"
    new_pool = upstream_pool(sc.info)
    for rel in sorted(set(after) - set(before)):
        kind, value = after[rel]
        if kind == "d" and rel.startswith(prefix + "pool/"):
            continue
        inner = rel.removeprefix(prefix)
        if rel.endswith((".aptmirror-partial", ".aptmirror-partial.meta")):
            continue  # a cut-off transfer kept for a Range resume (never a final name)
        assert kind == "f" and inner in new_pool, f"unexpected new entry {rel} ({kind})"
        assert value == new_pool[inner], f"unverified pool file published: {rel}"


def assert_published(sc: Scenario) -> None:
    """The mirror serves exactly the upstream's current state, consistently."""
    suite = sc.mirror / "dists" / sc.info.suite
    for name in ("InRelease", "Release", "Release.gpg"):
        assert (suite / name).read_bytes() == (sc.info.dist_dir / name).read_bytes(), name
    listed = release_sha256(sc.info.release.read_text())
    for comp in sc.info.components:
        for arch in (*sc.info.arches, "all"):
            assert f"{comp}/binary-{arch}/Packages.xz" in listed
    checked = 0
    for name, (size, digest) in listed.items():
        path = suite / name
        if not path.exists():
            continue
        assert path.stat().st_size == size, name
        assert sha256_file(path) == digest, name
        checked += 1
    assert checked >= len(sc.info.indexes)
    for rel, digest in upstream_pool(sc.info).items():
        path = sc.mirror / rel
        assert path.is_file(), f"missing pool file {rel}"
        assert sha256_file(path) == digest, rel


def assert_failed(res: CliResult, *needles: str) -> None:
    assert res.code == 1, res.output
    for needle in needles:
        assert needle in res.output, f"{needle!r} not in output:\n{res.output}"


def fails_then_recovers(
    sc: Scenario,
    break_upstream: Callable[[], None],
    needles: Callable[[], tuple[str, ...]],
    repair: Callable[[], None],
) -> CliResult:
    """Snapshot, update upstream + break it, run (must fail, unchanged), repair, run (ok)."""
    before = tree_state(sc.published)
    sc.update()
    break_upstream()
    res = sc.run()
    assert_failed(res, *needles())
    assert "0 of 1 suites published" in res.output, res.output
    assert_unchanged(sc, before)
    repair()
    ok = sc.run()
    assert ok.code == 0, ok.output
    assert_published(sc)
    return res


# --------------------------------------------------------------------------- pool files


def _hello_amd64(sc: Scenario) -> str:
    return sc.info.package("hello", "amd64").filename


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault("corrupt"), "SHA256 mismatch"),
        (Fault("truncate", after_bytes=100), "attempt 5"),
        (Fault("wrong_length", extra_length=10), "attempt 5"),
    ],
    ids=["corrupt", "truncate", "wrong-length"],
)
def test_bad_pool_file_every_attempt(scenario: Scenario, fault: Fault, reason: str) -> None:
    sc = scenario

    def break_upstream() -> None:
        sc.up.add_fault(f"/{_hello_amd64(sc)}", fault)
        sc.up.reset_log()

    def repair() -> None:
        sc.up.clear_faults()

    fails_then_recovers(sc, break_upstream, lambda: (sc.up.url + _hello_amd64(sc), reason), repair)


def test_pool_file_never_visible_when_bad(scenario: Scenario) -> None:
    """A corrupted body leaves neither the final name nor a partial file behind."""
    sc = scenario
    sc.update()
    rel = _hello_amd64(sc)
    sc.up.add_fault(f"/{rel}", Fault("corrupt"))
    res = sc.run()
    assert_failed(res, sc.up.url + rel)
    assert sc.up.count(f"/{rel}", "GET") == 5  # every attempt, then give up
    dest = sc.mirror / rel
    assert not dest.exists()
    assert not [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}")]


def test_server_error_burst_is_retried(scenario: Scenario) -> None:
    sc = scenario
    sc.update()
    rel = _hello_amd64(sc)
    sc.up.add_fault(f"/{rel}", Fault("status", status=500, times=1))
    sc.up.reset_log()
    res = sc.run()
    assert res.code == 0, res.output
    statuses = [r.status for r in sc.up.requests if r.path == f"/{rel}" and r.method == "GET"]
    assert statuses == [500, 200]
    assert_published(sc)


def test_server_error_every_attempt(scenario: Scenario) -> None:
    sc = scenario

    def break_upstream() -> None:
        sc.up.add_fault(f"/{_hello_amd64(sc)}", Fault("status", status=503))

    res = fails_then_recovers(
        sc, break_upstream, lambda: (sc.up.url + _hello_amd64(sc), "HTTP 503"), sc.up.clear_faults
    )
    assert "attempt 5" in res.output


# --------------------------------------------------------------------------- Release files


def _suite_url(sc: Scenario) -> str:
    return f"{sc.up.url}dists/{sc.info.suite}"


@pytest.mark.parametrize(
    "patterns",
    [("*/InRelease",), ("*/InRelease", "*/Release", "*/Release.gpg")],
    ids=["inrelease", "all-release-files"],
)
def test_captive_portal_release(scenario: Scenario, patterns: tuple[str, ...]) -> None:
    sc = scenario

    def break_upstream() -> None:
        for pattern in patterns:
            sc.up.add_fault(f"/dists/{sc.info.suite}/{pattern.lstrip('*/')}", Fault("html"))

    res = fails_then_recovers(
        sc,
        break_upstream,
        lambda: (f"{_suite_url(sc)}/InRelease", "no signature found", "an HTML page"),
        sc.up.clear_faults,
    )
    assert "Hotel WiFi" not in res.output


def test_release_signed_by_another_key(scenario: Scenario, fresh_key: TestKey) -> None:
    """The keyring named by signed-by does not hold the signing key."""
    sc = scenario

    def break_upstream() -> None:
        sign_release(fresh_key, sc.info.release)

    def repair() -> None:
        sign_release(sc.key, sc.info.release)

    res = fails_then_recovers(
        sc,
        break_upstream,
        lambda: (_suite_url(sc), fresh_key.fingerprint[-16:], "not in the keyring"),
        repair,
    )
    assert sc.key.fingerprint[-16:] not in res.output


def test_tampered_inrelease(scenario: Scenario) -> None:
    """One byte of the signed text changed: BADSIG, even though Release + Release.gpg are fine."""
    sc = scenario

    def break_upstream() -> None:
        data = bytearray(sc.info.inrelease.read_bytes())
        at = data.index(b"Label: aptmirror test") + len("Label: ")
        data[at] = ord("A")
        sc.info.inrelease.write_bytes(bytes(data))

    def repair() -> None:
        sign_release(sc.key, sc.info.release)

    fails_then_recovers(
        sc, break_upstream, lambda: (f"{_suite_url(sc)}/InRelease", "BAD signature"), repair
    )


# --------------------------------------------------------------------------- indexes


def test_required_packages_index_missing(scenario: Scenario) -> None:
    sc = scenario

    def break_upstream() -> None:
        # every variant and every by-hash object of main/binary-amd64
        sc.up.add_fault(f"/dists/{sc.info.suite}/main/binary-amd64/*", Fault("status", status=404))

    fails_then_recovers(
        sc,
        break_upstream,
        lambda: (f"{_suite_url(sc)}/main/binary-amd64/Packages",),
        sc.up.clear_faults,
    )


def test_packages_index_hash_mismatch(scenario: Scenario) -> None:
    """The served Packages files differ from what the signed Release says (changed after signing).

    The files are changed in place, so their by-hash hard links serve the bad bytes too.
    """
    sc = scenario

    def break_upstream() -> None:
        for p in (sc.info.dist_dir / "main" / "binary-amd64").glob("Packages*"):
            data = bytearray(p.read_bytes())
            data[len(data) // 2] ^= 0xFF
            with p.open("r+b") as fh:  # in place: by-hash hard links change as well
                fh.write(data)

    def repair() -> None:
        sc.update()

    fails_then_recovers(
        sc,
        break_upstream,
        lambda: (f"{_suite_url(sc)}/main/binary-amd64/Packages", "mismatch"),
        repair,
    )


# --------------------------------------------------------------------------- malicious indexes


def _compress(data: bytes, ext: str) -> bytes:
    if ext == ".gz":
        return gzip.compress(data, mtime=0)
    if ext == ".xz":
        return lzma.compress(data)
    assert ext == "", ext
    return data


def _decompress(data: bytes, ext: str) -> bytes:
    if ext == ".gz":
        return gzip.decompress(data)
    if ext == ".xz":
        return lzma.decompress(data)
    assert ext == "", ext
    return data


_HASH_FIELDS = {"MD5Sum": "md5", "SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


def rewrite_index(
    info: RepoInfo, key: TestKey, base: str, transform: Callable[[bytes], bytes]
) -> None:
    """Change every variant of the index ``base`` (e.g. ``main/binary-amd64/Packages``).

    Writes the variants that exist (atomically, so older by-hash links keep their bytes),
    updates size and hashes of every listed variant in the Release, adds by-hash objects and
    re-signs ``InRelease``/``Release.gpg`` with ``key``: a validly signed, malicious archive.
    """
    dist = info.dist_dir
    text = info.release.read_text()
    listed = [n for n in release_sha256(text) if n == base or n.rsplit(".", 1)[0] == base]
    source = next(n for n in listed if (dist / n).exists())
    plain = transform(_decompress((dist / source).read_bytes(), source[len(base) :]))
    new: dict[str, bytes] = {}
    for name in listed:
        data = _compress(plain, name[len(base) :])
        new[name] = data
        path = dist / name
        if path.exists():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
    lines = []
    field = ""
    for line in text.splitlines():
        if not line.startswith(" "):
            field = line.split(":", 1)[0]
        elif field in _HASH_FIELDS and line.split()[2] in new:
            name = line.split()[2]
            data = new[name]
            digest = hashlib.new(_HASH_FIELDS[field], data).hexdigest()
            line = f" {digest} {len(data):>8} {name}"
            if (dist / name).exists():
                link = dist / name.rpartition("/")[0] / "by-hash" / field / digest
                link.parent.mkdir(parents=True, exist_ok=True)
                link.unlink(missing_ok=True)
                os.link(dist / name, link)
        lines.append(line)
    info.release.write_text("\n".join(lines) + "\n")
    sign_release(key, info.release)


def _stanza(fields: list[tuple[str, str]]) -> bytes:
    return ("\n" + "\n".join(f"{k}: {v}" for k, v in fields) + "\n").encode()


@pytest.fixture
def evil_name() -> Iterator[str]:
    """A unique file name; anything of that name outside the test's tree is removed at the end."""
    name = f"aptmirror-evil-{uuid.uuid4().hex}"
    yield name
    for parent in (Path("/tmp"), Path("/etc")):
        (parent / name).unlink(missing_ok=True)


def _no_escape(sc: Scenario, name: str, before: dict[str, Entry]) -> None:
    assert not (Path("/tmp") / name).exists()
    assert not (Path("/etc") / name).exists()
    assert_unchanged(sc, before)
    found = [p for p in sc.tmp.rglob(f"*{name}*") if not p.is_relative_to(sc.info.root)]
    assert not found, f"malicious file written: {found}"


def test_packages_filename_escaping_the_tree(scenario: Scenario, evil_name: str) -> None:
    sc = scenario
    before = tree_state(sc.published)
    sc.update()
    payload = b"evil payload\n"
    # served upstream where a naive client would ask for it, so a download would succeed
    (sc.info.root / "tmp").mkdir(exist_ok=True)
    (sc.info.root / "tmp" / evil_name).write_bytes(payload)
    filename = "../" * 24 + f"tmp/{evil_name}"
    stanza = _stanza(
        [
            ("Package", "evil"),
            ("Version", "1.0"),
            ("Architecture", "amd64"),
            ("Maintainer", "x <x@example.invalid>"),
            ("Description", "evil"),
            ("Filename", filename),
            ("Size", str(len(payload))),
            ("MD5sum", hashlib.md5(payload).hexdigest()),
            ("SHA256", hashlib.sha256(payload).hexdigest()),
        ]
    )
    rewrite_index(sc.info, sc.key, "main/binary-amd64/Packages", lambda t: t + stanza)

    res = sc.run()
    assert_failed(res, filename, "'..'")
    _no_escape(sc, evil_name, before)

    sc.update()  # upstream fixed: a clean, newly signed archive
    ok = sc.run()
    assert ok.code == 0, ok.output
    assert_published(sc)


def test_sources_absolute_directory(scenario: Scenario, evil_name: str) -> None:
    sc = scenario
    before = tree_state(sc.published)
    sc.update()
    payload = b"root::0:0::/root:/bin/sh\n"
    (sc.info.root / "etc").mkdir(exist_ok=True)
    (sc.info.root / "etc" / evil_name).write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    sha = hashlib.sha256(payload).hexdigest()
    stanza = _stanza(
        [
            ("Package", "evil"),
            ("Binary", "evil"),
            ("Version", "1.0"),
            ("Maintainer", "x <x@example.invalid>"),
            ("Architecture", "any"),
            ("Format", "3.0 (native)"),
            ("Files", f"\n {md5} {len(payload)} {evil_name}"),
            ("Checksums-Sha256", f"\n {sha} {len(payload)} {evil_name}"),
            ("Directory", "/etc"),
        ]
    ).replace(b": \n", b":\n")
    rewrite_index(sc.info, sc.key, "main/source/Sources", lambda t: t + stanza)

    res = sc.run()
    assert_failed(res, "'/etc'", "absolute path")
    _no_escape(sc, evil_name, before)

    sc.update()
    ok = sc.run()
    assert ok.code == 0, ok.output
    assert_published(sc)


# --------------------------------------------------------------------------- network


def test_upstream_unreachable(scenario: Scenario, serve: ServeFn) -> None:
    """Connection refused (server gone, port closed): exit 1 naming the URL; then it's back."""
    sc = scenario
    port = sc.up.server.port
    url = sc.up.url

    def break_upstream() -> None:
        sc.up.stop()

    def repair() -> None:
        sc.up = serve(sc.info.root, port=port)
        assert sc.up.url == url

    fails_then_recovers(
        sc, break_upstream, lambda: (f"{url}dists/{sc.info.suite}/InRelease",), repair
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_repository_does_not_block_others(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """One dead repository: the other is still published, the run exits 1 naming the dead URL."""
    info = build_repo(tmp_path / "repo", repo_key)
    up = serve(info.root)
    dead = f"http://127.0.0.1:{_closed_port()}/debian/"
    lines = repo_lines(info, up.url) + repo_lines(info, dead)
    config = write_mirror_list(tmp_path, lines)
    res = run_cli(config, capsys)
    assert_failed(res, f"{dead}dists/{info.suite}/InRelease", "1 of 2 suites published")
    sc = Scenario(tmp_path, repo_key, info, up, config, capsys)
    assert_published(sc)
    assert not mirror_root(tmp_path, dead).exists()


# --------------------------------------------------------------------------- changed pool file


def _repoint(filename: str, data: bytes) -> Callable[[bytes], bytes]:
    """Packages transform: the stanza of ``filename`` gets ``data``'s size and hashes."""

    def transform(text: bytes) -> bytes:
        out = []
        for stanza in text.decode().split("\n\n"):
            if f"\nFilename: {filename}\n" in f"\n{stanza}\n":
                fields = {
                    "Size": str(len(data)),
                    "MD5sum": hashlib.md5(data).hexdigest(),
                    "SHA256": hashlib.sha256(data).hexdigest(),
                }
                lines = stanza.split("\n")
                for i, line in enumerate(lines):
                    key = line.split(":", 1)[0]
                    if key in fields:
                        lines[i] = f"{key}: {fields[key]}"
                stanza = "\n".join(lines)
            out.append(stanza)
        return "\n\n".join(out).encode()

    return transform


def test_pool_file_changed_in_place_is_not_replaced_by_failed_run(scenario: Scenario) -> None:
    """Upstream re-publishes a pool file under the same name with other bytes (third-party
    repositories do). While the old indexes stay published the old bytes must stay too: the
    new file may only replace the old one when the suite is published."""
    sc = scenario
    before = tree_state(sc.published)
    sc.update()
    rel = sc.info.package("native-data").filename
    data = b"rebuilt with the same version\n" * 100
    (sc.info.root / rel).write_bytes(data)
    for arch in (*sc.info.arches, "all"):
        rewrite_index(sc.info, sc.key, f"main/binary-{arch}/Packages", _repoint(rel, data))
    sc.up.add_fault(f"/{_hello_amd64(sc)}", Fault("corrupt"))

    res = sc.run()
    assert_failed(res, sc.up.url + _hello_amd64(sc))
    assert tree_state(sc.published)[f"{sc.mirror.name}/{rel}"] == before[f"{sc.mirror.name}/{rel}"]
    assert_unchanged(sc, before)

    sc.up.clear_faults()
    ok = sc.run()
    assert ok.code == 0, ok.output
    assert (sc.mirror / rel).read_bytes() == data
    suite = sc.mirror / "dists" / sc.info.suite
    assert (suite / "InRelease").read_bytes() == sc.info.inrelease.read_bytes()


def test_a_short_pool_file_left_by_a_killed_run_is_fetched_again(scenario: Scenario) -> None:
    """A pool file is written in place once verified (fetch.body): a run killed during that
    write leaves a prefix of the right bytes under the final name. The next run, with the
    same indexes, sees the wrong size, fetches the file again and publishes."""
    sc = scenario
    rel = _hello_amd64(sc)
    whole = (sc.mirror / rel).read_bytes()
    (sc.mirror / rel).write_bytes(whole[: len(whole) // 2])
    sc.up.reset_log()
    res = sc.run()
    assert res.code == 0, res.output
    assert sc.up.count(f"/{rel}", "GET") == 1
    assert (sc.mirror / rel).read_bytes() == whole
    assert_published(sc)


# --------------------------------------------------------------------------- more faults


def test_pool_file_404(scenario: Scenario) -> None:
    sc = scenario

    def break_upstream() -> None:
        sc.up.add_fault(f"/{_hello_amd64(sc)}", Fault("status", status=404))

    res = fails_then_recovers(
        sc, break_upstream, lambda: (sc.up.url + _hello_amd64(sc), "HTTP 404"), sc.up.clear_faults
    )
    assert "attempt 2" not in res.output  # a 404 on a required file is final at once


def test_stalled_pool_file_times_out_and_is_retried(scenario: Scenario) -> None:
    sc = scenario
    sc.config = write_mirror_list(
        sc.tmp, repo_lines(sc.info, sc.up.url), settings={"nthreads": "4", "read_timeout": "0.5"}
    )
    sc.update()
    rel = _hello_amd64(sc)
    sc.up.add_fault(f"/{rel}", Fault("stall", seconds=30, times=1))
    sc.up.reset_log()
    res = sc.run()
    assert res.code == 0, res.output
    assert sc.up.count(f"/{rel}", "GET") == 2  # the stalled attempt, then a good one
    assert_published(sc)


def test_release_changing_mid_run_publishes_one_consistent_state(scenario: Scenario) -> None:
    """Upstream publishes a new state right after the run verified its InRelease (at the
    first index request): the run still mirrors the state it verified — indexes come by hash
    and the archive keeps old by-hash objects — and the next run mirrors the new one."""
    sc = scenario
    old = sc.update()
    old_inrelease = old.inrelease.read_bytes()
    changed: list[RepoInfo] = []

    def publish_new_state(path: str) -> None:
        if not changed:
            changed.append(update_repo(old, sc.key, bump=("epoch-tool",)))

    sc.up.add_hook(f"/dists/{old.suite}/main/binary-amd64/*", publish_new_state)
    res = sc.run()
    assert res.code == 0, res.output
    assert changed, "the hook never ran: the test did not change upstream mid-run"
    suite = sc.mirror / "dists" / sc.info.suite
    assert (suite / "InRelease").read_bytes() == old_inrelease
    listed = release_sha256(strip_signature(old_inrelease))
    for name, (size, digest) in listed.items():
        path = suite / name
        if path.exists():
            assert (path.stat().st_size, sha256_file(path)) == (size, digest), name
    sc.info = changed[0]
    sc.up.clear_faults()
    again = sc.run()
    assert again.code == 0, again.output
    assert_published(sc)


def strip_signature(inrelease: bytes) -> str:
    text = inrelease.decode()
    return text.split("\n\n", 1)[1].split("-----BEGIN PGP SIGNATURE-----")[0]


# --------------------------------------------------------------------------- Release companions


def test_release_from_an_older_generation_is_not_published(scenario: Scenario) -> None:
    """Upstream changed between the InRelease and the Release fetch: InRelease decides, the
    stale Release + Release.gpg are left out (they would contradict the published indexes)."""
    sc = scenario
    old_release = sc.info.release.read_bytes()
    old_sig = sc.info.release_gpg.read_bytes()
    sc.update()
    sc.info.release.write_bytes(old_release)
    sc.info.release_gpg.write_bytes(old_sig)
    res = sc.run()
    assert res.code == 0, res.output
    assert "Release differs from InRelease" in res.output
    suite = sc.mirror / "dists" / sc.info.suite
    assert (suite / "InRelease").read_bytes() == sc.info.inrelease.read_bytes()
    assert not (suite / "Release").exists() and not (suite / "Release.gpg").exists()


def test_release_gpg_by_an_unknown_key_does_not_fail_a_verified_inrelease(
    scenario: Scenario, fresh_key: TestKey
) -> None:
    sc = scenario
    sc.update()
    other = sc.tmp / "other-sig"
    other.mkdir()
    copy = other / "Release"
    copy.write_bytes(sc.info.release.read_bytes())
    sign_release(fresh_key, copy)
    sc.info.release_gpg.write_bytes((other / "Release.gpg").read_bytes())
    res = sc.run()
    assert res.code == 0, res.output
    assert "publishing InRelease only" in res.output
    suite = sc.mirror / "dists" / sc.info.suite
    assert (suite / "InRelease").read_bytes() == sc.info.inrelease.read_bytes()
    assert not (suite / "Release.gpg").exists()


def test_disk_error_while_building_a_snapshot_fails_cleanly(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC while the new snapshot is built: exit 1 naming the problem, the old suite stays
    published exactly, no half-built snapshot is left, and the next run succeeds."""
    import aptmirror.storage.publish as publish

    sc = scenario
    before = tree_state(sc.published)
    sc.update()
    real_link, real_copy = os.link, publish.shutil.copy2
    calls = {"n": 0}

    def full(dest: object) -> bool:
        """The fifth file written into the new snapshot, and everything after it."""
        if f"/.{sc.info.suite}." not in str(dest):
            return False
        calls["n"] += 1
        return calls["n"] >= 5

    def link(src: object, dest: object, *args: object, **kw: object) -> None:
        if full(dest):
            raise OSError(28, "No space left on device")
        real_link(src, dest, *args, **kw)  # type: ignore[arg-type]

    def copy2(src: object, dest: object, **kw: object) -> object:
        if full(dest):
            raise OSError(28, "No space left on device")
        return real_copy(src, dest, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(publish.os, "link", link)
    monkeypatch.setattr(publish.shutil, "copy2", copy2)
    res = sc.run()
    assert_failed(res, "cannot build the new snapshot", "No space left on device")
    assert_unchanged(sc, before)
    dists = sc.mirror / "dists"
    assert [p.name for p in dists.iterdir() if p.name.startswith(".")] == [
        os.readlink(dists / sc.info.suite)
    ]
    monkeypatch.undo()  # the disk has room again
    ok = sc.run()
    assert ok.code == 0, ok.output
    assert_published(sc)


def test_disk_full_while_linking_by_hash_fails_the_suite_cleanly(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No inodes left for skel's by-hash links (link and copy fail): the suite fails with
    a message naming the index, the old suite stays published, no traceback."""
    import aptmirror.sync.indexes as indexes

    sc = scenario
    before = tree_state(sc.published)
    sc.update()

    def full(src: Path, dest: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(indexes, "link_or_copy", full)
    res = sc.run()
    assert_failed(res, "cannot write its by-hash copy in skel: No space left on device")
    assert "Traceback" not in res.output
    assert_unchanged(sc, before)
    monkeypatch.undo()
    assert sc.run().code == 0
    assert_published(sc)


@pytest.mark.parametrize("kind", ["StorageError", "OSError"])
def test_a_run_stopped_by_a_disk_error_is_recorded_as_failed(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """var/ cannot be written (a full disk): the run stops with exit 1 naming the file, and
    the report, the state DB and ``apt-mirror health`` say it failed (they kept the last
    good run's word before)."""
    import aptmirror.sync.run as runmod
    from aptmirror.cli import main

    sc = scenario
    before = tree_state(sc.published)
    sc.update()
    new = var_dir(sc.tmp) / "NEW"
    problem = f"cannot create temporary file for {new}: No space left on device"
    if kind == "OSError":  # one no caller turned into a StorageError
        problem = f"{new}: No space left on device"

    def full(*args: object, **kw: object) -> None:
        if kind == "OSError":
            raise OSError(28, "No space left on device", str(new))
        raise StorageError(problem)

    monkeypatch.setattr(runmod, "VarFiles", full)
    res = sc.run()
    assert_failed(res, problem)
    assert_unchanged(sc, before)
    report = json.loads((var_dir(sc.tmp) / "run-report.json").read_text())
    assert report["exit_code"] == 1 and problem in json.dumps(report["failures"])
    with sqlite3.connect(var_dir(sc.tmp) / "aptmirror.db") as db:
        last = db.execute("SELECT status, exit_code FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    assert last == ("failed", 1)
    sc.capsys.readouterr()
    assert main(["health", str(sc.config)]) != 0
    assert "failed" in sc.capsys.readouterr().out


def test_a_suite_that_cannot_be_updated_stays_in_the_var_lists(scenario: Scenario) -> None:
    """Upstream down for the suite's Release: the suite stays published as it was, and so
    do its files in ``var/ALL``, ``MD5``, ``SHA1`` and ``SHA256`` (the Perl tool re-read its
    old indexes), so ``sha256sum -c ../var/SHA256`` still checks the whole served mirror."""
    sc = scenario
    var = var_dir(sc.tmp)
    lists = ("ALL", "MD5", "SHA1", "SHA256")
    before = {name: sorted((var / name).read_text().splitlines()) for name in lists}
    assert before["ALL"] and before["SHA256"]
    sc.update()
    sc.up.add_fault("/dists/*", Fault("status", status=404, times=1000))
    res = sc.run()
    assert_failed(res, "neither InRelease nor Release exists upstream")
    assert {name: sorted((var / name).read_text().splitlines()) for name in lists} == before
    assert (var / "NEW").read_text() == ""
    check = subprocess.run(
        ["sha256sum", "--quiet", "-c", "../var/SHA256"],
        cwd=sc.published,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_optional_index_failing_is_reported(scenario: Scenario) -> None:
    """A Translation file answering 403 is left out (it is optional) but not silently."""
    sc = scenario
    sc.update()
    sc.up.add_fault("*/i18n/*", Fault("status", status=403))
    res = sc.run()
    assert res.code == 0, res.output
    assert "not mirrored this run" in res.output and "HTTP 403" in res.output
    assert "Translation-en" in res.output


def test_a_failing_repository_does_not_stop_cleaning_the_others(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """Repository A fails (its InRelease is corrupted); B's obsolete files are still cleaned,
    A's tree is not touched (its old indexes stay published and may need any file)."""
    info_a = build_repo(tmp_path / "a", repo_key)
    info_b = build_repo(tmp_path / "b", repo_key)
    up_a, up_b = serve(info_a.root), serve(info_b.root)
    lines = [*repo_lines(info_a, up_a.url), *repo_lines(info_b, up_b.url)]
    lines += [f"clean {up_a.url}", f"clean {up_b.url}"]
    settings = {"nthreads": "4", "_autoclean": "1", "wipe_size_ratio": "1", "wipe_count_ratio": "1"}
    config = write_mirror_list(tmp_path, lines, settings=settings)
    assert run_cli(config, capsys).code == 0
    root_a, root_b = mirror_root(tmp_path, up_a.url), mirror_root(tmp_path, up_b.url)
    before_a = tree_state(root_a)
    old_b = info_b.package("epoch-tool", "amd64").filename
    update_repo(info_a, repo_key, remove=["epoch-tool"])
    update_repo(info_b, repo_key, remove=["epoch-tool"])
    up_a.add_fault("*/InRelease", Fault("corrupt"))
    up_a.add_fault("*/Release*", Fault("status", status=404))
    res = run_cli(config, capsys)
    assert_failed(res, f"Cleaning skipped for {url_dir(up_a.url)}")
    assert tree_state(root_a) == before_a
    assert not (root_b / old_b).exists()


def test_leftovers_of_a_killed_publish_are_removed_by_the_next_one(scenario: Scenario) -> None:
    """A half-built snapshot and a temporary link from a killed run go with the next publish;
    a user's own file that merely starts like a snapshot name is left alone."""
    sc = scenario
    dists = sc.mirror / "dists"
    suite = sc.info.suite
    stale = dists / f".{suite}.20200101T000000"
    (stale / "main").mkdir(parents=True)
    (stale / "main" / "Packages").write_text("half built\n")
    (dists / f".{suite}.20200101T000000.link").symlink_to(stale.name)
    mine = dists / f".{suite}.my-notes"
    mine.write_text("keep me\n")
    sc.update()
    res = sc.run()
    assert res.code == 0, res.output
    names = sorted(p.name for p in dists.iterdir())
    assert names == sorted([f".{suite}.my-notes", os.readlink(dists / suite), suite])
    assert_published(sc)
