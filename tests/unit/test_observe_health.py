"""apt-mirror health: ok / warning / critical from the state DB, table, JSON, exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aptmirror.cli import main
from aptmirror.state.db import RepoRun, StateDB

REPO = "deb.example.org/debian"


def _config(tmp_path: Path, **sets: str) -> Path:
    lines = [f"set base_path {tmp_path}", "set defaultarch amd64"]
    lines += [f"set {k} {v}" for k, v in sets.items()]
    lines += ["deb http://deb.example.org/debian stable main"]
    path = tmp_path / "mirror.list"
    path.write_text("\n".join(lines) + "\n")
    return path


def _record(tmp_path: Path, *results: tuple[str, float | None]) -> None:
    """One finished run per (status, last_success)."""
    with StateDB.open(tmp_path / "var" / "aptmirror.db") as db:
        for i, (status, last) in enumerate(results):
            run = db.begin_run(f"r{i}", time.time() - 10, 1)
            db.finish_run(
                run, ended=time.time(), exit_code=0 if status == "ok" else 1, files=1, nbytes=100,
                repos=[RepoRun(REPO, "stable", status, 5.0, 1, 100, 0 if status == "ok" else 2,
                               "" if status == "ok" else "x: HTTP 404", 20.0, last)],
                failures=[],
            )  # fmt: skip


def _health(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["health", str(cfg), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_never_mirrored_is_critical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _health(_config(tmp_path), capsys)
    assert code == 2 and doc["status"] == "critical"
    [suite] = doc["repositories"]  # type: ignore[misc]
    assert suite["repository"] == REPO and suite["last_success"] is None
    assert "no state database" in str(doc["note"])


def test_recent_success_is_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    _record(tmp_path, ("failed", None), ("ok", time.time() - 3600))
    code, doc = _health(cfg, capsys)
    assert code == 0 and doc["status"] == "ok"
    [suite] = doc["repositories"]  # type: ignore[misc]
    assert 0.9 < suite["age_hours"] < 1.1
    assert suite["last_run_status"] == "ok" and suite["runs"] == 2
    assert suite["error_rate"] == 0.5 and suite["avg_speed"] == 20.0
    capsys.readouterr()
    assert main(["health", str(cfg)]) == 0
    table = capsys.readouterr().out
    assert REPO in table and "OK" in table and "Overall: OK" in table


def test_old_success_is_warning_then_critical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _record(tmp_path, ("ok", time.time() - 30 * 3600))
    code, doc = _health(_config(tmp_path), capsys)  # defaults: warning 26 h, critical 50 h
    assert code == 1 and doc["status"] == "warning"
    code, doc = _health(
        _config(tmp_path, health_warning_age="10", health_critical_age="20"), capsys
    )
    assert code == 2 and doc["status"] == "critical"
    assert "critical at 20 h" in doc["repositories"][0]["reason"]  # type: ignore[index]


def test_last_run_failed_is_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _record(tmp_path, ("ok", time.time() - 600), ("failed", time.time() - 600))
    code, doc = _health(_config(tmp_path), capsys)
    assert code == 1
    suite = doc["repositories"][0]  # type: ignore[index]
    assert suite["last_run_status"] == "failed" and suite["last_run_errors"] == 2
    assert "HTTP 404" in suite["last_run_error_text"]


def test_bad_threshold_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, health_warning_age="10", health_critical_age="5")
    assert main(["health", str(cfg)]) == 3
    assert "health_critical_age" in capsys.readouterr().err


def test_bad_observability_value_stops_a_run_before_anything_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, log_format="xml")
    assert main([str(cfg)]) == 2
    assert "log_format" in capsys.readouterr().err
    assert not (tmp_path / "var").exists() and not (tmp_path / "mirror").exists()
