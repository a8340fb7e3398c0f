"""The state database: ``var/aptmirror.db`` (SQLite, WAL, versioned schema).

One row per run (``runs``), one per repository and suite per run (``repo_runs``), the
required failures of each run (``failures``) and every file version published per path
(``file_versions``; the diff feature reads it). Every write is one transaction, so a run
killed at any point leaves the database consistent; its ``runs`` row simply has no end and
is marked ``interrupted`` when the next run begins.

``sqlite3.Error`` is translated into :class:`StorageError` here. Imports only
``aptmirror.errors``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aptmirror.errors import StorageError
from aptmirror.frozen import frozen

DB_NAME = "aptmirror.db"

# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL UNIQUE,
        pid INTEGER,
        started REAL NOT NULL,
        ended REAL,
        status TEXT NOT NULL DEFAULT 'running',  -- running | ok | failed | interrupted
        exit_code INTEGER,
        files INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE repo_runs (
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        repository TEXT NOT NULL,
        suite TEXT NOT NULL,
        status TEXT NOT NULL,  -- ok | failed
        duration REAL NOT NULL DEFAULT 0,
        files INTEGER NOT NULL DEFAULT 0,
        bytes INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        error_text TEXT NOT NULL DEFAULT '',
        avg_speed REAL NOT NULL DEFAULT 0,  -- bytes per second while transferring
        last_success REAL,  -- last successful update of this suite as of this run
        PRIMARY KEY (run, repository, suite)
    );
    CREATE INDEX repo_runs_by_repo ON repo_runs (repository, suite, run);
    CREATE TABLE failures (
        run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        repository TEXT,
        target TEXT NOT NULL,
        kind TEXT NOT NULL,  -- http_404, timeout, verification, ... (metric label)
        reason TEXT NOT NULL
    );
    CREATE INDEX failures_by_run ON failures (run);
    CREATE TABLE file_versions (
        path TEXT NOT NULL,  -- relative to mirror_path
        sha256 TEXT NOT NULL,  -- '' when the index gave none
        size INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        PRIMARY KEY (path, sha256)
    );
    """,
    """
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # last_seen NULL: published by the latest run that recorded versions (its time is in
    # meta 'versions'), so a run publishing the same files again writes one meta row
    # instead of rewriting every row. Rows of that latest set had the highest last_seen.
    """
    CREATE TABLE file_versions_new (
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL,  -- NULL: in the latest recorded set (meta 'versions')
        PRIMARY KEY (path, sha256)
    );
    INSERT INTO file_versions_new SELECT path, sha256, size, first_seen, last_seen
        FROM file_versions;
    DROP TABLE file_versions;
    ALTER TABLE file_versions_new RENAME TO file_versions;
    UPDATE file_versions SET last_seen = NULL
        WHERE last_seen = (SELECT MAX(last_seen) FROM file_versions)
        AND EXISTS (SELECT 1 FROM meta WHERE key = 'versions');
    """,
    # WITHOUT ROWID: the rows live in their primary key's B-tree, instead of a table and
    # an index beside it; a first mirror records a row per pool file (the benchmark's
    # 15,054 rows: 22 instead of 35-46 ms)
    """
    CREATE TABLE file_versions_new (
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL,  -- NULL: in the latest recorded set (meta 'versions')
        PRIMARY KEY (path, sha256)
    ) WITHOUT ROWID;
    INSERT INTO file_versions_new SELECT path, sha256, size, first_seen, last_seen
        FROM file_versions;
    DROP TABLE file_versions;
    ALTER TABLE file_versions_new RENAME TO file_versions;
    """,
)

#: meta key: "<fingerprint of the latest recorded set> <when it was recorded>"
VERSIONS_KEY = "versions"


@frozen
class RepoRun:
    repository: str
    suite: str
    status: str  # ok | failed
    duration: float = 0.0
    files: int = 0
    bytes: int = 0
    errors: int = 0
    error_text: str = ""
    avg_speed: float = 0.0
    last_success: float | None = None
    run_started: float = 0.0  # filled by queries, ignored on insert
    run_id: str = ""


@frozen
class FailureRow:
    repository: str | None
    target: str
    kind: str
    reason: str


@frozen
class RunRow:
    id: int
    run_id: str
    started: float
    ended: float | None
    status: str
    exit_code: int | None
    files: int
    bytes: int
    failures: int


@frozen
class Totals:
    runs: int
    files: int
    bytes: int


@frozen
class FileVersion:
    path: str
    size: int
    sha256: str


# a version in the set being recorded: a new row, or the known one marked current again
_UPSERT_VERSION = (
    "INSERT INTO file_versions (path, sha256, size, first_seen, last_seen)"
    " VALUES (?, ?, ?, ?, NULL) ON CONFLICT (path, sha256) DO UPDATE SET last_seen = NULL"
)


def _set_versions_state(c: sqlite3.Connection, fingerprint: str, seen: float) -> None:
    """Meta ``versions``: the latest recorded set and when (read by ``versions_state``)."""
    c.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        (VERSIONS_KEY, f"{fingerprint} {seen!r}"),
    )


class StateDB:
    """A connection to the state database; use :meth:`open`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> StateDB:
        """Open (creating and migrating unless ``readonly``) the database at ``path``."""
        try:
            if readonly:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=10, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            db = cls(conn, path)
            if not readonly:
                db.migrate()
            elif db.schema_version() == 0:
                raise StorageError(f"{path}: no apt-mirror state yet")
            return db
        except sqlite3.Error as exc:
            raise StorageError(f"state database {path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StateDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite3 errors become StorageError."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"state database {self.path}: {exc}") from exc

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        try:
            return list(self._conn.execute(sql, args))
        except sqlite3.Error as exc:
            raise StorageError(f"state database {self.path}: {exc}") from exc

    # -- schema -------------------------------------------------------------------------------

    def schema_version(self) -> int:
        rows = self._query(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='schema_version'"
        )
        if not rows:
            return 0
        version = self._query("SELECT version FROM schema_version")
        return int(str(version[0][0])) if version else 0

    def migrate(self) -> None:
        """Apply every migration newer than the stored schema version, each atomically."""
        with self._tx() as c:
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            if not list(c.execute("SELECT version FROM schema_version")):
                c.execute("INSERT INTO schema_version VALUES (0)")
        current = self.schema_version()
        if current > len(MIGRATIONS):
            raise StorageError(f"{self.path}: schema version {current} is newer than this program")
        for version in range(current, len(MIGRATIONS)):
            with self._tx() as c:
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute("UPDATE schema_version SET version = ?", (version + 1,))

    def integrity_ok(self) -> bool:
        return self._query("PRAGMA integrity_check") == [("ok",)]

    # -- writes -------------------------------------------------------------------------------

    def begin_run(self, run_id: str, started: float, pid: int) -> int:
        """Mark runs that never ended as interrupted, then add this one; its row id."""
        with self._tx() as c:
            c.execute("UPDATE runs SET status = 'interrupted' WHERE ended IS NULL")
            cur = c.execute(
                "INSERT INTO runs (run_id, pid, started) VALUES (?, ?, ?)", (run_id, pid, started)
            )
            return int(cur.lastrowid or 0)

    def progress_run(self, run: int, files: int, nbytes: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE runs SET files = ?, bytes = ? WHERE id = ?", (files, nbytes, run))

    def finish_run(
        self,
        run: int,
        *,
        ended: float,
        exit_code: int,
        files: int,
        nbytes: int,
        repos: Iterable[RepoRun],
        failures: Iterable[FailureRow],
        interrupted: bool = False,
    ) -> None:
        """Close the run and write its per-repository rows and failures, atomically; an
        ``interrupted`` run (stopped by a signal) is marked so, as one killed is later."""
        failures = list(failures)
        status = "interrupted" if interrupted else "ok" if exit_code == 0 else "failed"
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET ended = ?, status = ?, exit_code = ?, files = ?, bytes = ?,"
                " failures = ? WHERE id = ?",
                (ended, status, exit_code, files, nbytes, len(failures), run),
            )  # fmt: skip
            c.executemany(
                "INSERT OR REPLACE INTO repo_runs (run, repository, suite, status, duration,"
                " files, bytes, errors, error_text, avg_speed, last_success)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run, r.repository, r.suite, r.status, r.duration, r.files, r.bytes,
                     r.errors, r.error_text, r.avg_speed, r.last_success)
                    for r in repos
                ],
            )  # fmt: skip
            c.executemany(
                "INSERT INTO failures (run, repository, target, kind, reason)"
                " VALUES (?, ?, ?, ?, ?)",
                [(run, f.repository, f.target, f.kind, f.reason) for f in failures],
            )

    def meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def versions_state(self) -> tuple[str, float] | None:
        """(fingerprint, time) of the latest recorded set of versions, if any."""
        fields = (self.meta(VERSIONS_KEY) or "").split()
        if len(fields) != 2:
            return None
        try:
            return fields[0], float(fields[1])
        except ValueError:
            return None

    def refresh_versions(self, fingerprint: str, seen: float) -> None:
        """The latest set is published again at ``seen``: one row, whatever its size."""
        with self._tx() as c:
            _set_versions_state(c, fingerprint, seen)

    def _previous_time(self, seen: float) -> float:
        """When the latest set was recorded (``seen`` when none was)."""
        state = self.versions_state()
        return state[1] if state is not None else seen

    def current_versions(self) -> set[tuple[str, str]]:
        """(path, sha256) of every version in the latest recorded set."""
        rows = self._query("SELECT path, sha256 FROM file_versions WHERE last_seen IS NULL")
        return {(str(path), str(sha256)) for path, sha256 in rows}

    def advance_versions(
        self,
        fingerprint: str,
        seen: float,
        gone: Iterable[tuple[str, str]],
        new: Iterable[FileVersion],
    ) -> None:
        """The latest set again at ``seen``, but for the ``gone`` versions (last seen when
        that set was recorded) and with the ``new`` ones (first seen now). For a run that
        published mostly what the one before did: rows are written only for what changed."""
        previous = self._previous_time(seen)
        with self._tx() as c:
            c.executemany(
                "UPDATE file_versions SET last_seen = ? WHERE path = ? AND sha256 = ?",
                [(previous, path, sha256) for path, sha256 in gone],
            )
            c.executemany(_UPSERT_VERSION, [(f.path, f.sha256, f.size, seen) for f in new])
            _set_versions_state(c, fingerprint, seen)

    def record_versions(self, files: Iterable[FileVersion], seen: float, fingerprint: str) -> None:
        """``files`` are the latest set, recorded at ``seen``: known versions not in it were
        last seen when the set before was recorded (or now, when that is not known)."""
        previous = self._previous_time(seen)
        # streamed: a first mirror of a whole Debian records a row per pool file
        rows = ((f.path, f.sha256, f.size, seen) for f in files)
        with self._tx() as c:
            c.execute("UPDATE file_versions SET last_seen = ? WHERE last_seen IS NULL", (previous,))
            c.executemany(_UPSERT_VERSION, rows)
            _set_versions_state(c, fingerprint, seen)

    # -- reads --------------------------------------------------------------------------------

    def runs(self, limit: int = 20) -> list[RunRow]:
        rows = self._query(
            "SELECT id, run_id, started, ended, status, exit_code, files, bytes, failures"
            " FROM runs ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [RunRow(*row) for row in rows]  # type: ignore[arg-type]

    def totals(self, exclude_run: int | None = None) -> Totals:
        """Runs that ended (or were interrupted), and what they downloaded."""
        row = self._query(
            "SELECT COUNT(*), COALESCE(SUM(files), 0), COALESCE(SUM(bytes), 0) FROM runs"
            " WHERE id IS NOT ?",
            (exclude_run,),
        )[0]
        return Totals(int(str(row[0])), int(str(row[1])), int(str(row[2])))

    def failures_by_kind(self, exclude_run: int | None = None) -> dict[str, int]:
        rows = self._query(
            "SELECT kind, COUNT(*) FROM failures WHERE run IS NOT ? GROUP BY kind ORDER BY kind",
            (exclude_run,),
        )
        return {str(kind): int(str(n)) for kind, n in rows}

    def suites(self) -> list[tuple[str, str]]:
        """Every (repository, suite) ever recorded, in name order."""
        rows = self._query("SELECT DISTINCT repository, suite FROM repo_runs ORDER BY 1, 2")
        return [(str(r), str(s)) for r, s in rows]

    def repo_history(self, repository: str, suite: str, limit: int = 10) -> list[RepoRun]:
        """The latest ``limit`` results of one suite, newest first."""
        rows = self._query(
            "SELECT rr.repository, rr.suite, rr.status, rr.duration, rr.files, rr.bytes,"
            " rr.errors, rr.error_text, rr.avg_speed, rr.last_success, r.started, r.run_id"
            " FROM repo_runs rr JOIN runs r ON r.id = rr.run"
            " WHERE rr.repository = ? AND rr.suite = ? ORDER BY rr.run DESC LIMIT ?",
            (repository, suite, limit),
        )
        return [RepoRun(*row) for row in rows]  # type: ignore[arg-type]

    def last_success(self, repository: str, suite: str) -> float | None:
        rows = self._query(
            "SELECT MAX(last_success) FROM repo_runs WHERE repository = ? AND suite = ?",
            (repository, suite),
        )
        value = rows[0][0] if rows else None
        return float(str(value)) if value is not None else None

    def versions(self, path: str) -> list[tuple[str, int, float, float]]:
        """(sha256, size, first_seen, last_seen) of every version published at ``path``."""
        return [row[1:] for row in self.all_versions(path)]

    def all_versions(self, path: str | None = None) -> list[tuple[str, str, int, float, float]]:
        """(path, sha256, size, first_seen, last_seen) of every version published (at
        ``path``), oldest first; last_seen of the latest set is when it was recorded."""
        state = self.versions_state()
        current = state[1] if state is not None else 0.0
        where = "" if path is None else " WHERE path = ?"
        rows = self._query(
            "SELECT path, sha256, size, first_seen, COALESCE(last_seen, ?) FROM file_versions"
            + where
            + " ORDER BY first_seen, path",
            (current,) if path is None else (current, path),
        )
        return [
            (str(p), str(h), int(str(n)), float(str(first)), float(str(last)))
            for p, h, n, first, last in rows
        ]
