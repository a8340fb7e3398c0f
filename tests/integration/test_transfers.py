"""Resilient transfers through the CLI: retry settings, Range resume (also after SIGKILL).

The fake upstream cuts, stalls or ignores Range for one pool file; the request log shows
what the client asked for, and the mirror is checked the way users do
(``cd mirror && sha256sum -c ../var/SHA256``) plus the helpers of ``test_failures``.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from aptmirror.testing import Fault, RepoInfo, TestKey, ThreadedUpstream, build_repo, update_repo

from .conftest import (
    CliResult,
    ServeFn,
    base_dir,
    mirror_root,
    repo_lines,
    request_paths,
    run_cli,
    run_cli_subprocess,
    sha256_file,
    url_dir,
    var_dir,
    write_mirror_list,
)
from .test_failures import (
    BUMP,
    Scenario,
    assert_published,
    assert_unchanged,
    new_scenario,
    tree_state,
)

# the real retry loop, no backoff waits; the sample files are small: resume them all
FAST = {"nthreads": "4", "retry_delay": "0", "resume_min_size": "0"}


def _largest_pool_file(info: RepoInfo, missing_in: Path | None = None) -> tuple[str, int]:
    """The largest .deb (if ``missing_in`` is given: of those not yet mirrored there)."""
    sizes = {
        p.filename: (info.root / p.filename).stat().st_size
        for p in info.packages
        if missing_in is None or not (missing_in / p.filename).exists()
    }
    rel = max(sizes, key=lambda r: (sizes[r], r))
    return rel, sizes[rel]


def _gets(up: ThreadedUpstream, rel: str) -> list[tuple[int, str | None]]:
    return [
        (r.status, r.range_header) for r in up.requests if r.path == f"/{rel}" and r.method == "GET"
    ]


def _partials(tree: Path) -> list[Path]:
    return [p for p in tree.rglob(".*") if ".aptmirror-partial" in p.name]


def _sha256sum_check(tmp: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    proc = subprocess.run(
        ["sha256sum", "--quiet", "-c", "../var/SHA256"],
        cwd=base_dir(tmp) / "mirror",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture
def scenario(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> Scenario:
    return new_scenario(tmp_path, repo_key, serve, capsys, FAST)


def test_reset_mid_body_is_resumed_with_range(scenario: Scenario) -> None:
    sc = scenario
    rel, size = _largest_pool_file(sc.info)
    sc.up.add_fault(f"/{rel}", Fault("reset", after_bytes=size // 2, times=1))
    res = sc.run()
    assert res.code == 0, res.output
    (s1, r1), (s2, r2) = _gets(sc.up, rel)
    assert (s1, r1, s2) == (200, None, 206)
    assert r2 is not None and r2.startswith("bytes=") and 0 < int(r2[6:-1]) <= size // 2
    assert_published(sc)
    assert not _partials(sc.published)
    _sha256sum_check(sc.tmp)


def test_server_ignoring_range_restarts_cleanly(scenario: Scenario) -> None:
    sc = scenario
    rel, size = _largest_pool_file(sc.info)
    sc.up.add_fault(f"/{rel}", Fault("truncate", after_bytes=size // 2, times=1))
    sc.up.add_fault(f"/{rel}", Fault("ignore_range", times=1))
    res = sc.run()
    assert res.code == 0, res.output
    assert _gets(sc.up, rel) == [(200, None), (200, f"bytes={size // 2}-")]
    assert_published(sc)


def test_resume_off_fetches_again_from_zero(scenario: Scenario) -> None:
    sc = scenario
    sc.config = write_mirror_list(
        sc.tmp,
        repo_lines(sc.info, sc.up.url),
        settings={**FAST, "resume_partial_downloads": "off"},
    )
    rel, size = _largest_pool_file(sc.info)
    sc.up.add_fault(f"/{rel}", Fault("truncate", after_bytes=size // 2, times=1))
    res = sc.run()
    assert res.code == 0, res.output
    assert _gets(sc.up, rel) == [(200, None), (200, None)]
    assert not _partials(sc.published)


def test_retry_settings_from_mirror_list(scenario: Scenario) -> None:
    """retry_attempts 2: two requests, then a give-up naming every attempt and the status."""
    sc = scenario
    sc.config = write_mirror_list(
        sc.tmp,
        repo_lines(sc.info, sc.up.url),
        settings={**FAST, "retry_attempts": "2"},
    )
    rel, _ = _largest_pool_file(sc.info)
    sc.up.add_fault(f"/{rel}", Fault("status", status=503))
    res = sc.run()
    assert res.code == 1, res.output
    line = next(line for line in res.output.splitlines() if rel in line and "attempt" in line)
    assert line.strip() == (
        f"{sc.up.url}{rel}: attempt 1: HTTP 503; attempt 2: HTTP 503 (last HTTP status 503)"
    )
    assert len(_gets(sc.up, rel)) == 2
    sc.up.clear_faults()
    assert sc.run().code == 0


def test_sigkill_in_pool_stage_then_resume(scenario: Scenario) -> None:
    """A real CLI process killed mid-transfer: the published mirror is untouched, and the
    next run continues the partial file with a Range request and publishes a correct mirror."""
    sc = scenario
    first = sc.run()
    assert first.code == 0, first.output
    sc.info = update_repo(sc.info, sc.key, bump=BUMP)
    before = tree_state(sc.published)
    rel, size = _largest_pool_file(sc.info, missing_in=sc.mirror)
    half = size // 2
    sc.up.add_fault(f"/{rel}", Fault("stall", after_bytes=half, seconds=60))
    sc.up.reset_log()

    partial = sc.mirror / Path(rel).parent / f".{Path(rel).name}.aptmirror-partial"
    with (sc.tmp / "killed.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aptmirror.cli", str(sc.config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not (partial.exists() and partial.stat().st_size >= half):
                assert proc.poll() is None, (sc.tmp / "killed.log").read_text()
                assert time.monotonic() < deadline, "the pool stage never reached the stall"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert "Downloading" in (sc.tmp / "killed.log").read_text()
    assert partial.stat().st_size == half
    assert Path(f"{partial}.meta").is_file()
    assert_unchanged(sc, before)  # killed before publishing: nothing published changed

    sc.up.clear_faults()
    sc.up.reset_log()
    res: CliResult = run_cli_subprocess(sc.config, timeout=60)
    assert res.code == 0, res.output
    assert _gets(sc.up, rel) == [(206, f"bytes={half}-")]  # only the rest was fetched
    assert sha256_file(sc.mirror / rel) == sha256_file(sc.info.root / rel)
    assert not partial.exists() and not Path(f"{partial}.meta").exists()
    assert_published(sc)
    _sha256sum_check(sc.tmp)
    assert (var_dir(sc.tmp) / "SHA256").stat().st_size > 0
    assert mirror_root(sc.tmp, sc.up.url) == sc.mirror


def test_a_partial_file_goes_once_upstream_replaced_its_version(scenario: Scenario) -> None:
    """A cut-off transfer leaves a partial file to resume; once upstream has replaced that
    version, nothing will resume it: the next clean-up lists it (and its ``.meta``), while
    a partial file of a still referenced version stays."""
    sc = scenario
    lines = [*repo_lines(sc.info, sc.up.url), f"clean {sc.up.url}"]
    sc.config = write_mirror_list(sc.tmp, lines, settings={**FAST, "retry_attempts": "1"})
    assert sc.run().code == 0
    sc.info = update_repo(sc.info, sc.key, bump=BUMP)
    rel, size = _largest_pool_file(sc.info, missing_in=sc.mirror)
    sc.up.add_fault(f"/{rel}", Fault("truncate", after_bytes=size // 2))
    assert sc.run().code == 1  # the suite is not published: no clean-up yet
    partial = sc.mirror / Path(rel).parent / f".{Path(rel).name}.aptmirror-partial"
    meta = Path(f"{partial}.meta")
    assert partial.is_file() and meta.is_file()
    # a partial file of a version still listed, left by some earlier run
    kept = next(p.filename for p in sc.info.packages if p.filename != rel)
    kept_partial = sc.mirror / Path(kept).parent / f".{Path(kept).name}.aptmirror-partial"
    kept_partial.write_bytes(b"x")

    sc.up.clear_faults()
    owner = next(p.spec.name for p in sc.info.packages if p.filename == rel)
    sc.info = update_repo(sc.info, sc.key, bump=(owner,))
    assert rel not in {p.filename for p in sc.info.packages}
    res = sc.run()
    assert res.code == 0, res.output
    assert not (sc.mirror / rel).exists()
    script = (var_dir(sc.tmp) / "clean.sh").read_text()
    published = base_dir(sc.tmp) / "mirror"  # clean.sh works from there
    listed = [line for line in script.splitlines() if line.startswith("rm -f ")]
    for path in (partial, meta):
        assert f"rm -f -- {shlex.quote(str(path.relative_to(published)))}" in listed, script
    assert not any(kept_partial.name in line for line in listed)
    subprocess.run(["sh", str(var_dir(sc.tmp) / "clean.sh")], check=True, capture_output=True)
    assert not partial.exists() and not meta.exists() and kept_partial.exists()


def _downloaded_bytes(output: str) -> float:
    match = re.search(r"Downloaded \d+ files, ([\d.]+) (bytes|KiB|MiB)", output)
    assert match is not None, output
    return float(match.group(1)) * {"bytes": 1, "KiB": 1024, "MiB": 1 << 20}[match.group(2)]


def test_limit_rate_is_one_global_limit(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """``limit_rate`` bounds the whole run (4 threads), not each transfer."""
    info = build_repo(tmp_path / "repo", repo_key)
    up = serve(info.root)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    free = write_mirror_list(tmp_path / "a", repo_lines(info, up.url), settings=FAST)
    started = time.monotonic()
    res = run_cli(free, capsys)
    unlimited = time.monotonic() - started
    assert res.code == 0, res.output
    total = _downloaded_bytes(res.output)
    rate = int(total / 2.5)  # 2.5 s of budget, 1 s of it burst: >= 1.5 s of waiting
    limited_cfg = write_mirror_list(
        tmp_path / "b", repo_lines(info, up.url), settings={**FAST, "limit_rate": str(rate)}
    )
    started = time.monotonic()
    res = run_cli(limited_cfg, capsys)
    limited = time.monotonic() - started
    assert res.code == 0, res.output
    assert _downloaded_bytes(res.output) == total
    # the limiter alone makes the run last >= 1.5 s; unlimited it takes well under that
    assert 1.4 <= limited < 8.0, (unlimited, limited, total)


# --------------------------------------------------------------------------- proxies


class _Proxy(http.server.ThreadingHTTPServer):
    """A minimal forward HTTP proxy (absolute-URI GETs, no CONNECT) with a request log."""

    daemon_threads = True

    def __init__(self, auth: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.auth = auth
        self.log: list[tuple[str, str | None]] = []  # (request target, Proxy-Authorization)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _Proxy
    protocol_version = "HTTP/1.0"  # one request per connection: no keep-alive to track

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        creds = self.headers.get("Proxy-Authorization")
        self.server.log.append((self.path, creds))
        if self.server.auth is not None:
            want = base64.b64encode(":".join(self.server.auth).encode()).decode()
            if creds != f"Basic {want}":
                self.send_response(407)
                self.send_header("Proxy-Authenticate", 'Basic realm="proxy"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        target = urlsplit(self.path)
        conn = http.client.HTTPConnection(target.hostname or "", target.port or 80, timeout=10)
        headers = {
            k: v
            for k, v in self.headers.items()
            if not k.lower().startswith(("proxy-", "connection"))
        }
        conn.request("GET", target.path or "/", headers={**headers, "Connection": "close"})
        resp = conn.getresponse()
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in ("connection", "transfer-encoding", "keep-alive"):
                self.send_header(key, value)
        self.end_headers()
        shutil.copyfileobj(resp, self.wfile)
        conn.close()


@pytest.fixture
def proxy() -> Iterator[Callable[..., _Proxy]]:
    started: list[_Proxy] = []

    def _start(auth: tuple[str, str] | None = None) -> _Proxy:
        srv = _Proxy(auth)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        srv.shutdown()
        srv.server_close()


def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_proxy_from_mirror_list_with_credentials(
    scenario: Scenario, proxy: Callable[..., _Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_env_proxy(monkeypatch)
    sc = scenario
    px = proxy(auth=("puser", "p@ss word"))
    settings = {
        **FAST,
        "use_proxy": "on",
        "http_proxy": px.address,  # wget style, no scheme
        "proxy_user": "puser",
        "proxy_password": "p@ss word",
    }
    sc.config = write_mirror_list(sc.tmp, repo_lines(sc.info, sc.up.url), settings=settings)
    res = sc.run()
    assert res.code == 0, res.output
    want = "Basic " + base64.b64encode(b"puser:p@ss word").decode()
    targets = [t for t, _ in px.log]
    assert len(targets) == len(request_paths(sc.up)) > 10  # every request went through it
    assert all(t.startswith(sc.up.url.rstrip("/")) for t in targets)  # absolute URIs
    assert {c for _, c in px.log} == {want}
    assert_published(sc)


def test_use_proxy_off_ignores_the_proxy_keys(
    scenario: Scenario, proxy: Callable[..., _Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_env_proxy(monkeypatch)
    sc = scenario
    px = proxy()
    settings = {**FAST, "use_proxy": "off", "http_proxy": f"http://{px.address}"}
    sc.config = write_mirror_list(sc.tmp, repo_lines(sc.info, sc.up.url), settings=settings)
    assert sc.run().code == 0
    assert px.log == []


def test_proxy_from_environment_and_no_proxy(
    scenario: Scenario, proxy: Callable[..., _Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_env_proxy(monkeypatch)
    sc = scenario
    px = proxy()
    monkeypatch.setenv("http_proxy", f"http://{px.address}")
    res = sc.run()
    assert res.code == 0, res.output
    assert len(px.log) > 10
    px.log.clear()
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    sc.info = update_repo(sc.info, sc.key, bump=BUMP)
    res = sc.run()
    assert res.code == 0, res.output
    assert px.log == []
    assert_published(sc)


def test_proxy_refusing_credentials_fails_clearly(
    scenario: Scenario, proxy: Callable[..., _Proxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_env_proxy(monkeypatch)
    sc = scenario
    px = proxy(auth=("puser", "right"))
    settings = {
        **FAST,
        "use_proxy": "yes",
        "http_proxy": px.address,
        "proxy_user": "puser",
        "proxy_password": "wrong",
    }
    sc.config = write_mirror_list(sc.tmp, repo_lines(sc.info, sc.up.url), settings=settings)
    res = sc.run()
    assert res.code == 1
    assert "HTTP 407" in res.output
    assert sc.up.requests == []


# --------------------------------------------------------------------------- auth, https_only


def test_credentials_from_auth_conf_d(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """apt's auth.conf rules: an entry without a protocol is for https only."""
    info = build_repo(tmp_path / "repo", repo_key)
    up = serve(info.root, path_prefix="debian", auth=("mirror", "s3cr#et"))
    port = up.server.port
    auth = tmp_path / "auth.conf"
    auth.write_text(f"machine 127.0.0.1:{port}/debian login mirror password s3cr#et\n")
    settings = {**FAST, "etc_netrc": str(auth)}
    cfg = write_mirror_list(tmp_path, repo_lines(info, up.url), settings=settings)
    res = run_cli(cfg, capsys)
    assert res.code == 1 and "HTTP 401" in res.output  # never sent over plain http
    (tmp_path / "auth.conf.d").mkdir()
    (tmp_path / "auth.conf.d/mirror.conf").write_text(
        "# plain http must be named explicitly, as in apt\n"
        f"machine http://127.0.0.1:{port}/debian\n  login mirror\n  password s3cr#et\n"
    )
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert "s3cr" not in res.output  # never printed


def test_https_only_refuses_plain_http_sources(scenario: Scenario) -> None:
    sc = scenario
    settings = {**FAST, "https_only": "on"}
    sc.config = write_mirror_list(sc.tmp, repo_lines(sc.info, sc.up.url), settings=settings)
    res = sc.run()
    assert res.code == 1
    assert "refused plain http (https_only is on)" in res.output
    assert sc.up.requests == []


# --------------------------------------------------------------------------- several sources


@pytest.mark.parametrize("how", ["mirror_source", "deb822"])
def test_several_sources_with_failover(
    tmp_path: Path,
    repo_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    how: str,
) -> None:
    """Release from the primary only; files from both; a failing source is left aside."""
    info = build_repo(tmp_path / "repo", repo_key)
    primary = serve(info.root)
    other = serve(info.root, path_prefix="mirror")  # the same archive elsewhere
    other.add_fault("/mirror/pool/*", Fault("status", status=503))
    comps = " ".join(info.components)
    if how == "mirror_source":
        lines = [*repo_lines(info, primary.url), f"mirror_source {primary.url} {other.url}"]
    else:
        d = tmp_path / "mirror.list.d"
        d.mkdir()
        (d / "repo.sources").write_text(
            f"Types: deb deb-src\nURIs: {primary.url} {other.url}\nSuites: {info.suite}\n"
            f"Components: {comps}\nArchitectures: {' '.join(info.arches)}\n"
            f"Signed-By: {info.keyring}\n"
        )
        lines = []
    cfg = write_mirror_list(tmp_path, lines, settings={**FAST, "nthreads": "8"})
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    suite = f"/mirror/dists/{info.suite}"
    assert sum(other.count(f"{suite}/{n}") for n in ("InRelease", "Release", "Release.gpg")) == 0
    assert other.count("/mirror/dists/*") > 0  # indexes spread over both
    assert other.count("/mirror/pool/*") > 0  # tried for pool files too, then failed over
    assert all(r.status == 503 for r in other.requests if r.path.startswith("/mirror/pool/"))
    sc = Scenario(tmp_path, repo_key, info, primary, cfg, capsys)
    assert_published(sc)
    _sha256sum_check(tmp_path)
    # nothing is stored under the other source's name
    assert not (base_dir(tmp_path) / "mirror" / url_dir(other.url)).exists()


def test_a_transfer_cut_off_at_one_source_is_continued_at_another(
    scenario: Scenario, serve: ServeFn
) -> None:
    """Two sources that keep upstream's modification times (same ``ETag``): each cuts the
    largest file once; every attempt continues what the one before received, whichever
    source it goes to, and the file ends whole and verified."""
    sc = scenario
    other = serve(sc.info.root, path_prefix="mirror")
    rel, size = _largest_pool_file(sc.info)
    quarter = size // 4
    sc.up.add_fault(f"/{rel}", Fault("reset", after_bytes=quarter, times=1))
    other.add_fault(f"/mirror/{rel}", Fault("reset", after_bytes=quarter, times=1))
    lines = [*repo_lines(sc.info, sc.up.url), f"mirror_source {sc.up.url} {other.url}"]
    sc.config = write_mirror_list(sc.tmp, lines, settings=FAST)
    res = sc.run()
    assert res.code == 0, res.output
    wanted = {f"/{rel}", f"/mirror/{rel}"}
    asked = [
        (r.path.startswith("/mirror/"), r.status, r.range_header)
        for r in (*sc.up.requests, *other.requests)
        if r.path in wanted
    ]
    assert len(asked) == 3, asked
    assert sorted(status for _, status, _ in asked) == [200, 206, 206]
    assert sorted(rng for _, _, rng in asked if rng) == [
        f"bytes={quarter}-",
        f"bytes={2 * quarter}-",
    ]
    (whole_from,) = [at_other for at_other, status, _ in asked if status == 200]
    assert any(at_other != whole_from for at_other, status, _ in asked if status == 206)
    assert sha256_file(sc.mirror / rel) == sha256_file(sc.info.root / rel)
    assert_published(sc)


def test_every_source_failing_names_each_cause(scenario: Scenario, serve: ServeFn) -> None:
    sc = scenario
    other = serve(sc.info.root, path_prefix="mirror")
    rel, _ = _largest_pool_file(sc.info)
    sc.up.add_fault(f"/{rel}", Fault("status", status=500))
    other.add_fault(f"/mirror/{rel}", Fault("corrupt"))
    lines = [*repo_lines(sc.info, sc.up.url), f"mirror_source {sc.up.url} {other.url}"]
    sc.config = write_mirror_list(sc.tmp, lines, settings={**FAST, "retry_attempts": "2"})
    res = sc.run()
    assert res.code == 1
    line = next(line for line in res.output.splitlines() if f"{rel}:" in line)
    assert f"(http://127.0.0.1:{sc.up.server.port}): HTTP 500" in line
    assert f"(http://127.0.0.1:{other.server.port}): SHA256 mismatch" in line
