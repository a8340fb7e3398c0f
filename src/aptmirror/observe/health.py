"""``apt-mirror health``: is each configured suite fresh and healthy? For monitoring checks.

Per (repository, suite) of the configuration, from the state DB: last successful update and
its age, the last run's status and errors, error rate and average download speed over the
last ``health_runs`` runs, and a status:

* ``critical`` — never updated successfully, or the last success is at least
  ``health_critical_age`` hours old;
* ``warning`` — the last success is at least ``health_warning_age`` hours old, or the last
  run of the suite failed;
* ``ok`` otherwise. A threshold of 0 disables it.

The exit status is the worst state: 0 ok, 1 warning, 2 critical (Nagios convention).
Reads the database read-only; needs no lock.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from enum import IntEnum
from pathlib import Path
from typing import Any

from aptmirror.config.observe import ObserveSettings
from aptmirror.errors import StorageError
from aptmirror.frozen import frozen
from aptmirror.model import Config
from aptmirror.state.db import DB_NAME, StateDB
from aptmirror.sync.jobs import group_jobs, local_root
from aptmirror.units import format_size


class Status(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@frozen
class SuiteHealth:
    repository: str
    suite: str
    status: str
    reason: str
    last_success: float | None
    age_hours: float | None
    last_run_status: str | None  # ok | failed | None (never run)
    last_run_errors: int
    last_run_error_text: str
    runs: int  # recent runs considered
    error_rate: float | None  # failed / runs
    avg_speed: float | None  # bytes per second, over runs that downloaded something


def _status(age: float | None, last: str | None, opts: ObserveSettings) -> tuple[Status, str]:
    if age is None:
        return Status.CRITICAL, "never updated successfully"
    crit, warn = opts.health_critical_age, opts.health_warning_age
    if crit > 0 and age >= crit:
        return Status.CRITICAL, f"last success {age:.1f} h ago (critical at {crit:g} h)"
    if warn > 0 and age >= warn:
        return Status.WARNING, f"last success {age:.1f} h ago (warning at {warn:g} h)"
    if last == "failed":
        return Status.WARNING, "the last run failed"
    return Status.OK, f"last success {age:.1f} h ago"


def suite_health(
    db: StateDB | None, repository: str, suite: str, opts: ObserveSettings, now: float
) -> SuiteHealth:
    history = db.repo_history(repository, suite, opts.health_runs) if db else []
    last_success = db.last_success(repository, suite) if db else None
    age = (now - last_success) / 3600 if last_success is not None else None
    last = history[0] if history else None
    status, reason = _status(age, last.status if last else None, opts)
    speeds = [r.avg_speed for r in history if r.avg_speed > 0]
    return SuiteHealth(
        repository=repository,
        suite=suite,
        status=status.label,
        reason=reason,
        last_success=last_success,
        age_hours=round(age, 3) if age is not None else None,
        last_run_status=last.status if last else None,
        last_run_errors=last.errors if last else 0,
        last_run_error_text=last.error_text if last else "",
        runs=len(history),
        error_rate=sum(r.status != "ok" for r in history) / len(history) if history else None,
        avg_speed=sum(speeds) / len(speeds) if speeds else None,
    )


@frozen
class HealthReport:
    status: Status
    suites: list[SuiteHealth]
    generated: float
    opts: ObserveSettings
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.label,
            "generated": self.generated,
            "thresholds_hours": {
                "warning": self.opts.health_warning_age,
                "critical": self.opts.health_critical_age,
            },
            "recent_runs": self.opts.health_runs,
            "note": self.note,
            "repositories": [asdict(s) for s in self.suites],
        }

    def table(self) -> str:
        head = ("STATUS", "REPOSITORY", "SUITE", "LAST SUCCESS", "AGE", "LAST RUN", "ERR%", "SPEED")
        rows = [head]
        for s in self.suites:
            when = (
                time.strftime("%Y-%m-%d %H:%M", time.localtime(s.last_success))
                if s.last_success is not None
                else "never"
            )
            age = f"{s.age_hours:.1f}h" if s.age_hours is not None else "-"
            last = s.last_run_status or "-"
            if s.last_run_errors:
                last += f" ({s.last_run_errors} errors)"
            rate = f"{s.error_rate * 100:.0f}%" if s.error_rate is not None else "-"
            speed = f"{format_size(s.avg_speed)}/s" if s.avg_speed else "-"
            rows.append((s.status.upper(), s.repository, s.suite, when, age, last, rate, speed))
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        if self.note:
            lines.append(self.note)
        for s in self.suites:
            if s.status != "ok":
                lines.append(f"{s.status.upper()}: {s.repository} {s.suite}: {s.reason}")
        lines.append(f"Overall: {self.status.label.upper()}")
        return "\n".join(lines)


def configured_suites(config: Config) -> list[tuple[str, str]]:
    tilde = config.settings.tilde
    jobs = group_jobs(config.sources, config.directives)
    return list(dict.fromkeys((local_root(j, tilde), j.dist) for j in jobs))


def health_report(config: Config, opts: ObserveSettings, now: float | None = None) -> HealthReport:
    now = time.time() if now is None else now
    path = Path(config.settings.var_path) / DB_NAME
    db: StateDB | None = None
    note = ""
    if path.exists():
        try:
            db = StateDB.open(path, readonly=True)
        except StorageError as exc:
            note = f"cannot read the state database: {exc}"
    else:
        note = f"no state database yet ({path}): no run has been recorded"
    try:
        suites = [suite_health(db, r, s, opts, now) for r, s in configured_suites(config)]
    finally:
        if db is not None:
            db.close()
    worst = max((Status[s.status.upper()] for s in suites), default=Status.OK)
    return HealthReport(worst, suites, now, opts, note)
