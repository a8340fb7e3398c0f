"""Clients reading the mirror while a run updates it never see an inconsistent state.

The mirror of an old upstream state is served on loopback while a run moves it to a new
state (twice: old → new1 → new2, so by-hash carry-over and old-snapshot deletion happen too,
with ``_autoclean`` deleting the old pool files after publication). Pool downloads are slowed
with a ``stall`` fault so each run lasts a few seconds. Meanwhile:

* reader threads loop: fetch ``InRelease``, then every index it lists that the mirror
  carries (canonical name: size + SHA256; and the ``by-hash/SHA256`` object of each
  Packages/Sources), then HEAD every pool file the fetched Packages/Sources reference, then
  ``InRelease`` again. When both ``InRelease`` fetches are identical, every index must match
  exactly and every pool file must exist with its size. By-hash objects named by an
  ``InRelease`` must stay fetchable through the next publication (at most one generation
  later), whatever the second ``InRelease`` says.
* the real ``apt-get update`` (fresh lists each time) loops and must never fail ("Hash Sum
  mismatch", "File has unexpected size", "Failed to fetch" or anything else).

The mirror is served by the stdlib's threading HTTP server rather than ``ThreadedUpstream``:
it opens each path in one ``open()`` call, as nginx does, so a snapshot directory deleted
right after the symlink swap cannot fail a request the kernel had already resolved (the
fake upstream resolves the path first and opens it later, which would be a test artefact).
Loops are bounded in count and time.
"""

from __future__ import annotations

import hashlib
import http.client
import http.server
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from aptmirror.testing import AptClient, AptError, Fault, RepoInfo, TestKey, update_repo

from .conftest import (
    ServeFn,
    base_dir,
    make_repo,
    mirror_root,
    release_sha256,
    repo_lines,
    run_cli,
    url_dir,
    write_mirror_list,
)

DEADLINE = 45.0  # seconds for the whole concurrent part
MAX_READER_ROUNDS = 400
MAX_APT_ROUNDS = 80
STALL = 0.1  # seconds per pool file (nthreads 1): each run lasts ~2-3 s
ROUNDS = (
    ("hello", "hello-doc", "lib+plus", "epoch-tool"),
    ("hello", "hello-doc", "contrib-tool", "contrib-data", "native-data"),
)
APT_FAILURES = ("Hash Sum mismatch", "File has unexpected size", "Failed to fetch")


pytestmark = pytest.mark.usefixtures("fast_retries")


# --------------------------------------------------------------------------- mirror server


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive (apt pipelines)
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms stalls

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror_server(tmp_path: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT/`` serving ``base/mirror`` (created empty if needed)."""
    root = base_dir(tmp_path) / "mirror"
    root.mkdir(parents=True, exist_ok=True)
    handler = partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# --------------------------------------------------------------------------- parsing


def pool_refs(text: str) -> dict[str, int]:
    """``path -> size`` of every file a Packages or Sources text references."""
    refs: dict[str, int] = {}
    for stanza in text.split("\n\n"):
        fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.M))
        if "Filename" in fields:
            refs[fields["Filename"]] = int(fields["Size"])
        elif "Directory" in fields:
            m = re.search(r"^Checksums-Sha256:\n((?: .*\n?)+)", stanza, re.M)
            assert m, stanza
            for line in m.group(1).splitlines():
                _, size, name = line.split()
                refs[f"{fields['Directory']}/{name}"] = int(size)
    return refs


def _parseable(name: str) -> bool:
    return re.fullmatch(r"[^/]+/(binary-[^/]+/Packages|source/Sources)", name) is not None


# --------------------------------------------------------------------------- reader


@dataclass
class Observed:
    """What the concurrent clients saw."""

    rounds: int = 0
    consistent_rounds: int = 0  # both InRelease fetches identical
    straddled: int = 0  # a publication happened between them
    generations: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    apt_runs: int = 0
    apt_errors: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)


class Reader:
    """One HTTP/1.1 client reading the mirror like a careful apt would."""

    def __init__(self, base: str, suite: str, expected: set[str], generations: list[bytes]):
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)(/.*)", base)
        assert m, base
        self.port = int(m.group(1))
        self.base = m.group(2)  # "/127.0.0.1:UPPORT/"
        self.suite = f"{self.base}dists/{suite}/"
        self.expected = expected  # index names the mirror carries (same in every state)
        self.generations = generations  # InRelease bytes of each upstream state, in order
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes, int]:
        """(status, body, Content-Length); one reconnect on a dropped keep-alive connection."""
        for attempt in (1, 2):
            try:
                self.conn.request(method, path)
                resp = self.conn.getresponse()
                body = resp.read()
                return resp.status, body, int(resp.getheader("Content-Length") or -1)
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def generation(self, inrelease: bytes) -> int:
        return self.generations.index(inrelease) if inrelease in self.generations else -1

    def round(self, obs: Observed) -> None:
        status, ir1, _ = self.get(self.suite + "InRelease")
        if status != 200:
            obs.problems.append(f"InRelease: HTTP {status}")
            return
        gen1 = self.generation(ir1)
        if gen1 < 0:
            obs.problems.append("InRelease is not any upstream state's InRelease")
            return
        listed = release_sha256(ir1.decode())
        index_problems: list[str] = []
        by_hash_problems: list[str] = []
        refs: dict[str, int] = {}
        for name in sorted(self.expected):
            size, digest = listed[name]
            status, body, _ = self.get(self.suite + name)
            if status != 200:
                index_problems.append(f"{name}: HTTP {status}")
            elif len(body) != size or hashlib.sha256(body).hexdigest() != digest:
                index_problems.append(f"{name}: {len(body)} bytes, not the listed {size}")
            elif _parseable(name):
                refs.update(pool_refs(body.decode()))
            if _parseable(name) or _parseable(name.rsplit(".", 1)[0]):
                bh = f"{name.rpartition('/')[0]}/by-hash/SHA256/{digest}"
                status, body, _ = self.get(self.suite + bh)
                if status != 200 or hashlib.sha256(body).hexdigest() != digest:
                    by_hash_problems.append(f"{bh} (for {name}): HTTP {status}")
        pool_problems: list[str] = []
        for rel, size in sorted(refs.items()):
            status, _, length = self.get(self.base + rel, "HEAD")
            if status != 200 or length != size:
                pool_problems.append(f"{rel}: HTTP {status}, {length} bytes (want {size})")
        status, ir2, _ = self.get(self.suite + "InRelease")
        gen2 = self.generation(ir2) if status == 200 else -1
        obs.rounds += 1
        obs.generations.update({gen1, gen2})
        if 0 <= gen2 - gen1 <= 1:
            obs.problems += [f"gen {gen1}->{gen2}: by-hash {p}" for p in by_hash_problems]
        if ir1 == ir2:
            obs.consistent_rounds += 1
            obs.problems += [f"gen {gen1}: index {p}" for p in index_problems]
            obs.problems += [f"gen {gen1}: pool {p}" for p in pool_problems]
        else:
            obs.straddled += 1


# --------------------------------------------------------------------------- the test


def _loop_reader(reader: Reader, obs: Observed, stop: threading.Event, deadline: float) -> None:
    try:
        for _ in range(MAX_READER_ROUNDS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            reader.round(obs)
    except Exception as exc:  # reported by the test, never swallowed
        obs.crashed.append(f"reader: {exc!r}")
    finally:
        reader.conn.close()


def _loop_apt(apt: AptClient, obs: Observed, stop: threading.Event, deadline: float) -> None:
    try:
        for _ in range(MAX_APT_ROUNDS):
            if stop.is_set() or time.monotonic() > deadline:
                return
            apt.reset_lists()
            try:
                apt.update()
            except AptError as exc:
                bad = [line for line in exc.output.splitlines() if line.startswith(("E:", "W:"))]
                kinds = [k for k in APT_FAILURES if k in exc.output]
                obs.apt_errors.append(f"{kinds or 'apt-get update failed'}: {bad or exc.output}")
            obs.apt_runs += 1
    except Exception as exc:
        obs.crashed.append(f"apt: {exc!r}")


def _wait_for_rounds(obs: Observed, n: int, deadline: float) -> None:
    """Block until the readers complete ``n`` more rounds (bounded by ``deadline``)."""
    target = obs.rounds + n
    while obs.rounds < target and time.monotonic() < deadline and not obs.crashed:
        threading.Event().wait(0.02)


def _expected_indexes(suite_dir: Path, release: str) -> set[str]:
    """Index names the mirror carries: listed in the Release and present after a quiet run."""
    return {name for name in release_sha256(release) if (suite_dir / name).is_file()}


def test_clients_never_see_an_inconsistent_mirror(
    tmp_path: Path,
    repo_key: TestKey,
    serve: ServeFn,
    mirror_server: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info: RepoInfo = make_repo(tmp_path, repo_key)
    up = serve(info.root)
    settings = {
        "nthreads": "1",
        "_autoclean": "1",
        "wipe_size_ratio": "0",
        "wipe_count_ratio": "0",
    }
    lines = [*repo_lines(info, up.url), f"clean {up.url}"]
    config = write_mirror_list(tmp_path, lines, settings=settings)
    first = run_cli(config, capsys)
    assert first.code == 0, first.output

    suite_dir = mirror_root(tmp_path, up.url) / "dists" / info.suite
    expected = _expected_indexes(suite_dir, info.release.read_text())
    assert any(_parseable(n) for n in expected), sorted(expected)
    assert len(expected) > 20
    mirrored = f"{mirror_server}{url_dir(up.url)}/"
    generations = [info.inrelease.read_bytes()]

    apt = AptClient(
        tmp_path / "apt",
        [
            f"deb [signed-by={info.keyring}] {mirrored} {info.suite} {' '.join(info.components)}",
            f"deb-src [signed-by={info.keyring}] {mirrored} {info.suite} main",
        ],
        arches=info.arches,
    )
    apt.update()  # the quiet state works (else the loop below proves nothing)

    up.add_fault("/pool/*", Fault("stall", seconds=STALL))
    obs = Observed()
    stop = threading.Event()
    deadline = time.monotonic() + DEADLINE
    threads = [
        threading.Thread(
            target=_loop_reader,
            args=(Reader(mirrored, info.suite, expected, generations), obs, stop, deadline),
        )
        for _ in range(2)
    ]
    threads.append(threading.Thread(target=_loop_apt, args=(apt, obs, stop, deadline)))
    results = []
    try:
        for t in threads:
            t.start()
        for bump in ROUNDS:
            _wait_for_rounds(obs, 3, deadline)  # the clients read the current state first
            info = update_repo(info, repo_key, bump=bump)
            generations.append(info.inrelease.read_bytes())
            started = time.monotonic()
            res = run_cli(config, capsys)
            results.append((res, time.monotonic() - started))
            assert res.code == 0, res.output
        _wait_for_rounds(obs, 3, deadline)  # and the final state
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    summary = (
        f"{obs.rounds} reader rounds ({obs.consistent_rounds} consistent, {obs.straddled} "
        f"straddling a publication), {obs.apt_runs} apt-get updates, generations seen "
        f"{sorted(obs.generations)}, run times {[round(t, 1) for _, t in results]}"
    )
    assert not obs.crashed, f"{obs.crashed}\n{summary}"
    assert not obs.problems, "\n".join(obs.problems[:30]) + f"\n{summary}"
    assert not obs.apt_errors, "\n".join(obs.apt_errors[:5]) + f"\n{summary}"
    # the loops really ran across both publications
    assert obs.generations >= {0, 1, 2}, summary
    assert obs.consistent_rounds >= 6, summary
    assert obs.apt_runs >= 4, summary
    assert all(t > 1.0 for _, t in results), summary  # the stall made each run last
    # and the end state is the new upstream, fetched by apt without error
    assert (suite_dir / "InRelease").read_bytes() == generations[-1]
    apt.reset_lists()
    apt.update()
