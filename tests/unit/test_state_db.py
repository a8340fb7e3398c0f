"""state.db: schema and migrations, run rows, interrupted runs, file versions; and the
recorder fed with events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aptmirror.errors import StorageError
from aptmirror.observe.events import (
    FileDone,
    FileStarted,
    RunFailure,
    RunFinished,
    RunStarted,
    SuitePublished,
    SuiteResult,
)
from aptmirror.state import db as dbmod
from aptmirror.state import recorder as recorder_module
from aptmirror.state.db import MIGRATIONS, FailureRow, FileVersion, RepoRun, StateDB
from aptmirror.state.recorder import StateRecorder, classify_failure


def test_new_database_is_wal_and_at_latest_schema(tmp_path: Path) -> None:
    with StateDB.open(tmp_path / "var" / "aptmirror.db") as db:
        assert db.schema_version() == len(dbmod.MIGRATIONS)
        assert db.integrity_ok()
    conn = sqlite3.connect(tmp_path / "var" / "aptmirror.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # the versions live in their primary key's B-tree (one row per pool file)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'file_versions'").fetchone()
    assert sql.rstrip().endswith("WITHOUT ROWID")


def test_migrations_apply_in_order_and_only_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.db"
    StateDB.open(path).close()
    extra = (*dbmod.MIGRATIONS, "ALTER TABLE runs ADD COLUMN note TEXT DEFAULT ''")
    monkeypatch.setattr(dbmod, "MIGRATIONS", extra)
    with StateDB.open(path) as db:
        assert db.schema_version() == len(extra)
    with StateDB.open(path) as db:  # no second ALTER (it would fail)
        assert db.schema_version() == len(extra)
    monkeypatch.setattr(dbmod, "MIGRATIONS", extra[:1])
    with pytest.raises(StorageError, match="newer"):
        StateDB.open(path)


def test_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match=r"x\.db"):
        StateDB.open(path)


def test_unfinished_run_is_marked_interrupted_by_the_next(tmp_path: Path) -> None:
    with StateDB.open(tmp_path / "s.db") as db:
        first = db.begin_run("r1", 100.0, 1)
        db.progress_run(first, 3, 300)
        second = db.begin_run("r2", 200.0, 2)
        db.finish_run(
            second, ended=250.0, exit_code=1, files=1, nbytes=10,
            repos=[RepoRun("h/debian", "stable", "failed", errors=1, last_success=None)],
            failures=[FailureRow("h/debian", "http://h/debian/x", "http_404", "HTTP 404")],
        )  # fmt: skip
        runs = db.runs()
        assert [(r.run_id, r.status, r.files) for r in runs] == [
            ("r2", "failed", 1),
            ("r1", "interrupted", 3),
        ]
        assert db.totals() == dbmod.Totals(2, 4, 310)
        assert db.totals(exclude_run=second).runs == 1
        assert db.failures_by_kind() == {"http_404": 1}
        assert db.failures_by_kind(exclude_run=second) == {}


def test_file_versions_first_and_last_seen(tmp_path: Path) -> None:
    with StateDB.open(tmp_path / "s.db") as db:
        db.record_versions([FileVersion("h/pool/a.deb", 10, "aa")], 100.0, "f1")
        db.record_versions([FileVersion("h/pool/a.deb", 10, "aa")], 200.0, "f2")
        db.record_versions([FileVersion("h/pool/a.deb", 12, "bb")], 300.0, "f3")
        assert db.versions("h/pool/a.deb") == [("aa", 10, 100.0, 200.0), ("bb", 12, 300.0, 300.0)]
        assert db.versions_state() == ("f3", 300.0)


def test_advancing_versions_writes_only_what_changed(tmp_path: Path) -> None:
    with StateDB.open(tmp_path / "s.db") as db:
        db.record_versions([FileVersion("h/old.deb", 3, "oo")], 50.0, "f0")  # an older run's
        db.record_versions(
            [FileVersion("h/a.deb", 1, "aa"), FileVersion("h/b.deb", 2, "bb")], 100.0, "f1"
        )
        assert db.current_versions() == {("h/a.deb", "aa"), ("h/b.deb", "bb")}
        assert db.versions("h/old.deb") == [("oo", 3, 50.0, 50.0)]
        # a run publishing the same set: one meta row; every current version seen again
        db.refresh_versions("f1", 150.0)
        assert db.versions("h/a.deb") == [("aa", 1, 100.0, 150.0)]
        # b.deb replaced by a new version, old.deb published again
        new = [FileVersion("h/b.deb", 4, "b2"), FileVersion("h/old.deb", 3, "oo")]
        db.advance_versions("f2", 200.0, {("h/b.deb", "bb")}, new)
        assert db.versions("h/a.deb") == [("aa", 1, 100.0, 200.0)]
        assert db.versions("h/b.deb") == [("bb", 2, 100.0, 150.0), ("b2", 4, 200.0, 200.0)]
        assert db.versions("h/old.deb") == [("oo", 3, 50.0, 200.0)]
        assert db.current_versions() == {
            ("h/a.deb", "aa"), ("h/b.deb", "b2"), ("h/old.deb", "oo"),
        }  # fmt: skip
        assert db.versions_state() == ("f2", 200.0)
        assert [row[:2] for row in db.all_versions()] == [
            ("h/old.deb", "oo"), ("h/a.deb", "aa"), ("h/b.deb", "bb"), ("h/b.deb", "b2"),
        ]  # fmt: skip


def test_version_rows_of_an_older_schema_are_migrated(tmp_path: Path) -> None:
    """Schema 2 wrote last_seen on every row: the latest set (the highest last_seen) becomes
    the current one."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (0)")
        for statement in ";".join(MIGRATIONS[:2]).split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("UPDATE schema_version SET version = 2")
        rows = [("h/a.deb", "aa", 1, 10.0, 30.0), ("h/b.deb", "bb", 2, 10.0, 20.0)]
        rows.append(("h/c.deb", "cc", 3, 30.0, 30.0))
        conn.executemany("INSERT INTO file_versions VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("INSERT INTO meta VALUES ('versions', 'f1 30.0')")
    conn.close()
    with StateDB.open(path) as db:
        assert db.schema_version() == len(MIGRATIONS)
        assert db.current_versions() == {("h/a.deb", "aa"), ("h/c.deb", "cc")}
        assert db.all_versions() == [
            ("h/a.deb", "aa", 1, 10.0, 30.0), ("h/b.deb", "bb", 2, 10.0, 20.0),
            ("h/c.deb", "cc", 3, 30.0, 30.0),
        ]  # fmt: skip


def test_readonly_open_of_missing_state_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(StorageError, match="no apt-mirror state"):
        StateDB.open(path, readonly=True)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("attempt 1: HTTP 503; attempt 2: HTTP 404 (last HTTP status 404)", "http_404"),
        ("attempt 1: size 3 != expected 4", "verification"),
        ("attempt 1: SHA256 mismatch: got ab", "verification"),
        ("attempt 1: too slow: 3 B/s over 15 s", "slow"),
        ("attempt 1: read timeout", "timeout"),
        ("no valid signature from the keyring", "signature"),
        ("something odd", "other"),
    ],
)
def test_classify_failure(reason: str, kind: str) -> None:
    assert classify_failure(reason) == kind


def test_recorder_writes_run_repos_failures_and_versions(tmp_path: Path) -> None:
    mirror, var = tmp_path / "mirror", tmp_path / "var"
    (mirror / "h/debian/pool").mkdir(parents=True)
    (mirror / "h/debian/pool/a.deb").write_bytes(b"12345")
    var.mkdir()
    (var / "SHA256").write_text("ab" * 32 + "  h/debian/pool/a.deb\n" + "cd" * 32 + "  other/x\n")
    clock = iter(range(0, 1000, 40))
    with StateDB.open(var / "aptmirror.db") as db:
        rec = StateRecorder(db, mirror_path=mirror, var_path=var, clock=lambda: next(clock))
        suites = (("h/debian", "stable"), ("h/debian", "testing"))
        rec(RunStarted("run1", suites, at=1000.0))
        rec(FileStarted("http://h/debian/dists/testing/InRelease", "x", 10, at=1000.0))
        rec(FileDone("http://h/debian/dists/testing/InRelease", "x", 10, 10, None, 1, at=1001.0))
        # a body that came whole: its FileDone alone, with when it started
        rec(FileDone("http://h/debian/pool/a.deb", "y", 5, 5, "ab", 1, at=1002.0, started=1001.0))
        rec(SuitePublished("h/debian", "stable", "h/debian/dists/stable", at=1010.0))
        rec(RunFailure("h/debian", "http://h/debian/dists/testing/x", "HTTP 404"))
        rec(SuiteResult("h/debian", "stable", True, (), at=1010.0))
        rec(SuiteResult("h/debian", "testing", False, ("http://h/...: HTTP 404",), at=1011.0))
        rec(RunFinished("run1", 1, 2, 15, 1, at=1020.0))
        stable, testing = (db.repo_history("h/debian", s)[0] for s in ("stable", "testing"))
        assert (stable.status, stable.files, stable.bytes, stable.last_success) == (
            "ok", 1, 5, 1020.0,
        )  # fmt: skip
        assert stable.duration == 10.0 and stable.avg_speed == 5.0
        assert (testing.status, testing.files, testing.errors, testing.last_success) == (
            "failed", 1, 1, None,
        )  # fmt: skip
        assert db.versions("h/debian/pool/a.deb") == [("ab" * 32, 5, 1020.0, 1020.0)]
        assert db.versions("other/x") == []
        assert [(r.status, r.files, r.bytes, r.failures) for r in db.runs()] == [
            ("failed", 2, 15, 1)
        ]


def test_recorder_remembers_a_bounded_number_of_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond SIZES_KEPT downloaded files, sizes are not held but read from disk at the end:
    every published version is still recorded with its size."""
    monkeypatch.setattr(recorder_module, "SIZES_KEPT", 2)
    mirror, var = tmp_path / "mirror", tmp_path / "var"
    pool = mirror / "h/debian/pool"
    pool.mkdir(parents=True)
    var.mkdir()
    names = [f"f{n}.deb" for n in range(5)]
    lines = []
    for n, name in enumerate(names):
        (pool / name).write_bytes(b"x" * (n + 1))
        lines.append(f"{n:064x}  h/debian/pool/{name}\n")
    (var / "SHA256").write_text("".join(lines))
    with StateDB.open(var / "aptmirror.db") as db:
        rec = StateRecorder(db, mirror_path=mirror, var_path=var)
        rec(RunStarted("run1", (("h/debian", "stable"),), at=1000.0))
        for n, name in enumerate(names):
            url, path = f"http://h/debian/pool/{name}", str(pool / name)
            rec(FileDone(url, path, n + 1, n + 1, None, 1, at=1001.0))
        run = rec._run
        assert run is not None and len(run.sizes) == 2
        rec(SuitePublished("h/debian", "stable", "h/debian/dists/stable", at=1010.0))
        rec(SuiteResult("h/debian", "stable", True, (), at=1010.0))
        rec(RunFinished("run1", 0, 5, 15, 0, at=1020.0))
        for n, name in enumerate(names):
            assert db.versions(f"h/debian/pool/{name}") == [(f"{n:064x}", n + 1, 1020.0, 1020.0)]
