"""Observability of real CLI runs (issue 6): state DB, Prometheus textfile, JSON logs with
rotation, the JSON report and hook environment, plain progress without a terminal, and a
SIGKILLed run leaving the database consistent."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aptmirror.observe.repos import log_name
from aptmirror.state.db import DB_NAME, StateDB
from aptmirror.testing import Fault, RepoInfo, TestKey, update_repo

from .conftest import (
    ServeFn,
    make_repo,
    mirror_root,
    repo_lines,
    run_cli,
    tree_snapshot,
    url_dir,
    var_dir,
    write_mirror_list,
)

FAST = {"nthreads": "4", "retry_delay": "0", "retry_attempts": "2"}
ESCAPES = re.compile(r"\x1b|\r|\x08")


def _metrics(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _db(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(var_dir(tmp_path) / "aptmirror.db")


@pytest.fixture
def small_repo(tmp_path: Path, repo_key: TestKey) -> RepoInfo:
    return make_repo(
        tmp_path, repo_key, arches=("amd64",), contents=False, dep11=False, cnf=False,
        translations=False, compressions=("", ".gz"),
    )  # fmt: skip


def test_run_feeds_db_metrics_logs_report_and_hook(
    tmp_path: Path, small_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    up = serve(small_repo.root)
    prom = tmp_path / "textfile" / "aptmirror.prom"
    log = tmp_path / "log" / "aptmirror.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"env | grep ^APT_MIRROR_ | sort > {tmp_path / 'hook.env'}\n")
    settings = {
        **FAST,
        "metrics_textfile": str(prom),
        "log_format": "json",
        "log_file": str(log),
        "run_postmirror": "1",
        "postmirror_script": str(hook),
    }
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=settings)
    first = run_cli(cfg, capsys)
    assert first.code == 0, first.output
    assert not ESCAPES.search(first.stdout)  # not a terminal: plain lines only
    assert "[summary] archive:" in first.stdout
    assert "Downloading" in first.stdout and "End time:" in first.stdout  # Perl lines kept

    repo = url_dir(up.url)
    with _db(tmp_path) as db:
        (status, files, nbytes, failures, ended) = db.execute(
            "SELECT status, files, bytes, failures, ended FROM runs"
        ).fetchone()
        assert (status, failures) == ("ok", 0) and ended is not None and files > 0
        rows = db.execute("SELECT repository, suite, status, bytes, last_success FROM repo_runs")
        assert [r[:3] for r in rows.fetchall()] == [(repo, "stable", "ok")]
        rows = db.execute("SELECT path, sha256, size FROM file_versions").fetchall()
    versions = {path: sha256 for path, sha256, _ in rows}
    deb = next(p.filename for p in small_repo.packages)
    assert versions[f"{repo}/{deb}"] == small_repo.packages[0].sha256
    mirror = var_dir(tmp_path).parent / "mirror"
    assert rows and all(size == (mirror / path).stat().st_size for path, _, size in rows)
    assert f"Downloaded {files} files" in first.stdout

    m = _metrics(prom)
    assert m[("aptmirror_runs_total", ())] == 1
    assert m[("aptmirror_downloaded_files_total", ())] == files
    assert m[("aptmirror_downloaded_bytes_total", ())] == nbytes
    assert m[("aptmirror_run_in_progress", ())] == 0
    when = m[
        ("aptmirror_last_success_timestamp_seconds", (("repository", repo), ("suite", "stable")))
    ]
    assert abs(when - time.time()) < 120
    assert ("aptmirror_last_run_duration_seconds", (("repository", repo), ("suite", "stable"))) in m

    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all({"timestamp", "level", "message", "run_id", "repository"} <= set(d) for d in lines)
    done = [d for d in lines if d["message"].startswith("downloaded ")]
    assert len(done) == files
    assert all({"url", "path", "bytes", "attempt"} <= set(d) for d in done)
    assert {d["repository"] for d in done} == {repo}
    assert len({d["run_id"] for d in lines}) == 1
    assert (var_dir(tmp_path) / log_name(repo)).read_text().count("downloaded ") == files

    report = json.loads((var_dir(tmp_path) / "run-report.json").read_text())
    assert report["exit_code"] == 0 and report["downloaded_files"] == files
    env = dict(line.split("=", 1) for line in (tmp_path / "hook.env").read_text().splitlines())
    assert env["APT_MIRROR_EXIT_CODE"] == "0"
    assert env["APT_MIRROR_DOWNLOADED_FILES"] == str(files)
    assert env["APT_MIRROR_RUN_ID"] == report["run_id"] == lines[0]["run_id"]
    assert Path(env["APT_MIRROR_REPORT"]) == (var_dir(tmp_path) / "run-report.json").absolute()
    assert env["APT_MIRROR_PUBLISHED"] == "1"

    # second run: one pool file is gone locally and upstream answers 500 for it
    (mirror_root(tmp_path, up.url) / deb).unlink()
    up.add_fault(f"/{deb}", Fault("status", status=500))
    second = run_cli(cfg, capsys)
    assert second.code == 1, second.output
    m = _metrics(prom)
    assert m[("aptmirror_runs_total", ())] == 2
    assert m[("aptmirror_failures_total", (("reason", "http_500"),))] == 1
    with _db(tmp_path) as db:
        total_files, total_bytes = db.execute("SELECT SUM(files), SUM(bytes) FROM runs").fetchone()
    assert f"Downloaded {total_files - files} files" in second.stdout
    assert m[("aptmirror_downloaded_files_total", ())] == total_files
    assert m[("aptmirror_downloaded_bytes_total", ())] == total_bytes
    assert (
        m[("aptmirror_last_success_timestamp_seconds", (("repository", repo), ("suite", "stable")))]
        == when
    )
    with _db(tmp_path) as db:
        statuses = [r[0] for r in db.execute("SELECT status FROM runs ORDER BY id")]
        assert statuses == ["ok", "failed"]
        kinds = db.execute("SELECT kind, target FROM failures").fetchall()
        assert kinds == [("http_500", up.url + deb)]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    failed = [
        d for d in lines if d.get("url") == up.url + deb and d["level"] in ("warning", "error")
    ]
    assert {d.get("attempt") for d in failed} >= {1, 2} and {d.get("status") for d in failed} >= {
        500
    }


def test_log_file_rotates(
    tmp_path: Path, small_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    up = serve(small_repo.root)
    log = tmp_path / "rot.log"
    settings = {**FAST, "log_file": str(log), "log_max_bytes": "2k", "log_backup_count": "2"}
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=settings)
    assert run_cli(cfg, capsys).code == 0
    assert (tmp_path / "rot.log.1").exists() and (tmp_path / "rot.log.2").exists()
    assert not (tmp_path / "rot.log.3").exists()
    assert log.stat().st_size <= 2048 + 1024


def test_log_files_on_a_full_disk_give_one_warning_each(
    tmp_path: Path,
    small_repo: RepoInfo,
    repo_key: TestKey,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Writes to ``/dev/full`` fail with ENOSPC, as on a full disk: each log file (``log_file``
    and the repository's own, here linked to it) says so once and takes no more lines — no
    traceback per record — and the mirror is updated as usual."""
    up = serve(small_repo.root)
    settings = {**FAST, "log_file": "/dev/full"}
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=settings)
    first = run_cli(cfg, capsys)
    assert first.code == 0, first.output
    warning = "apt-mirror: warning: cannot write the log file /dev/full: No space left on device"
    assert first.stderr.count(warning) == 1, first.stderr
    (repo_log,) = var_dir(tmp_path).glob("127.0.0.1*.log")
    repo_log.unlink()
    repo_log.symlink_to("/dev/full")
    update_repo(small_repo, repo_key, bump=("hello",))
    res = run_cli(cfg, capsys)
    assert res.code == 0, res.output
    assert "1 of 1 suites published" in res.stdout
    assert res.stderr.count("cannot write the log file") == 2, res.stderr
    assert f"cannot write the log file {repo_log}: No space left on device" in res.stderr
    assert "Traceback" not in res.stderr and "Logging error" not in res.stderr, res.stderr
    assert "failed and was disabled" not in res.stderr  # the logs' observer kept going


def test_sigkilled_run_leaves_db_consistent_and_marked_interrupted(
    tmp_path: Path, small_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    up = serve(small_repo.root)
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=FAST)
    deb = max(small_repo.packages, key=lambda p: p.size).filename
    up.add_fault(f"/{deb}", Fault("stall", after_bytes=100, seconds=60))
    with (tmp_path / "killed.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aptmirror.cli", str(cfg)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while up.count(f"/{deb}") == 0:
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "the pool stage never reached the stall"
                time.sleep(0.05)
            time.sleep(0.2)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(10)
    with _db(tmp_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT status, ended FROM runs").fetchall() == [("running", None)]
    up.clear_faults()
    assert run_cli(cfg, capsys).code == 0
    with _db(tmp_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = [r[0] for r in db.execute("SELECT status FROM runs ORDER BY id")]
    assert statuses == ["interrupted", "ok"]


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGTERM, 143, "apt-mirror: stopped by SIGTERM; every suite is either published"),
        (signal.SIGINT, 130, "apt-mirror: interrupted; every suite is either published whole"),
    ],
)
def test_a_stopped_run_ends_at_once_and_says_so_everywhere(
    tmp_path: Path,
    small_repo: RepoInfo,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    signum: int,
    code: int,
    said: str,
) -> None:
    """``systemctl stop`` / ``timeout`` (SIGTERM) or Ctrl-C in the middle of the pool stage:
    the run ends at once with 128 + the signal, its row ended and ``interrupted``, the
    metrics not showing a run in progress, the report saying so, the published suite
    untouched and the lock free."""
    up = serve(small_repo.root)
    metrics = tmp_path / "aptmirror.prom"
    settings = {**FAST, "metrics_textfile": str(metrics)}
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=settings)
    assert run_cli(cfg, capsys).code == 0
    root = mirror_root(tmp_path, up.url)
    published = tree_snapshot(root / "dists")
    deb = max(small_repo.packages, key=lambda p: p.size).filename
    (root / deb).unlink()  # fetched again by the next run, which stalls on it
    up.add_fault(f"/{deb}", Fault("stall", after_bytes=100, seconds=60))
    with (tmp_path / "term.log").open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aptmirror.cli", str(cfg)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # as from a terminal, even where the tests run with SIGINT ignored (a background
            # job), which the child would inherit
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while up.count(f"/{deb}") < 2:
                assert proc.poll() is None, (tmp_path / "term.log").read_text()
                assert time.monotonic() < deadline, "the pool stage never reached the stall"
                time.sleep(0.05)
            time.sleep(0.2)
            proc.send_signal(signum)
            status = proc.wait(15)
        finally:
            proc.kill()
            proc.wait(10)
    output = (tmp_path / "term.log").read_text()
    # after cleaning up, the process ends by the signal itself (a shell shows $? = code)
    assert status == -signum and code == 128 + signum, output
    assert said in output
    with _db(tmp_path) as db:
        rows = db.execute("SELECT status, exit_code, ended FROM runs ORDER BY id").fetchall()
    assert [r[:2] for r in rows] == [("ok", 0), ("interrupted", code)]
    assert rows[1][2] is not None
    families = {f.name: f for f in text_string_to_metric_families(metrics.read_text())}
    assert [s.value for s in families["aptmirror_run_in_progress"].samples] == [0.0]
    report = json.loads((var_dir(tmp_path) / "run-report.json").read_text())
    assert (report["exit_code"], report["interrupted"]) == (code, True)
    assert tree_snapshot(root / "dists") == published
    assert not (root / deb).exists()
    up.clear_faults()
    assert run_cli(cfg, capsys).code == 0  # the lock was released
    assert (root / deb).is_file()


def test_terminal_gets_the_live_display(
    tmp_path: Path, small_repo: RepoInfo, serve: ServeFn
) -> None:
    """A real CLI process on a pseudo-terminal: rich draws (escape codes), the Perl-style
    lines still appear, the run succeeds."""
    import pty

    up = serve(small_repo.root)
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=FAST)
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aptmirror.cli", str(cfg)],
        stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(60) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in text
    assert "Downloading" in text and "archive" in text
    assert "Downloaded" in text and "suites published" in text


def test_plain_progress_and_metrics_during_a_stalled_transfer(
    tmp_path: Path, small_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal: a plain progress line per interval while a transfer stalls, and
    the textfile rewritten during the run (it shows the run in progress)."""
    up = serve(small_repo.root)
    prom = tmp_path / "aptmirror.prom"
    settings = {
        **FAST,
        "progress_interval": "0.5",
        "metrics_textfile": str(prom),
        "metrics_interval": "0.5",
    }
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url), settings=settings)
    deb = max(small_repo.packages, key=lambda p: p.size).filename
    up.add_fault(f"/{deb}", Fault("stall", times=1, after_bytes=100, seconds=2.0))
    seen: list[dict[tuple[str, tuple[tuple[str, str], ...]], float]] = []
    timers: list[threading.Timer] = []

    def read_later(path: str) -> None:  # in the middle of the stall
        timers.append(threading.Timer(1.0, lambda: seen.append(_metrics(prom))))
        timers[-1].start()

    up.add_hook(f"/{deb}", read_later)
    res = run_cli(cfg, capsys)
    for timer in timers:
        timer.join()
    assert res.code == 0, res.output
    assert not ESCAPES.search(res.stdout)
    progress = [line for line in res.stdout.splitlines() if line.startswith("[progress]")]
    assert any(line.startswith("[progress] archive: ") for line in progress), res.stdout
    assert "ETA" in progress[-1]
    assert seen and seen[0][("aptmirror_run_in_progress", ())] == 1
    assert seen[0][("aptmirror_run_stage", (("stage", "archive"),))] == 1
    assert _metrics(prom)[("aptmirror_run_in_progress", ())] == 0


def test_file_versions_refreshed_by_a_no_op_run_and_extended_by_an_update(
    tmp_path: Path, small_repo: RepoInfo, repo_key: TestKey, serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A no-op run refreshes ``last_seen`` of every published version (one meta row); a
    run that changed the list marks the versions it no longer has and adds the new ones."""
    up = serve(small_repo.root)
    cfg = write_mirror_list(tmp_path, repo_lines(small_repo, up.url))

    def versions() -> dict[tuple[str, str], tuple[float, float]]:
        with StateDB.open(var_dir(tmp_path) / DB_NAME, readonly=True) as db:
            rows = db.all_versions()
        return {(p, h): (first, last) for p, h, _, first, last in rows}

    assert run_cli(cfg, capsys).code == 0
    first = versions()
    assert first and len({last for _, last in first.values()}) == 1
    assert run_cli(cfg, capsys).code == 0
    second = versions()
    assert second.keys() == first.keys()
    for key, (first_seen, last_seen) in second.items():
        assert first_seen == first[key][0] and last_seen > first[key][1], key
    update_repo(small_repo, repo_key, bump=("hello",))
    assert run_cli(cfg, capsys).code == 0
    third = versions()
    new = third.keys() - second.keys()
    assert new and all("hello" in path for path, _ in new)
    assert len({last for _, last in third.values()}) == 2  # the replaced hello is not seen
