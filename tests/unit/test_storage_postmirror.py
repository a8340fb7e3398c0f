"""The post-mirror hook runs as in Perl (B.10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aptmirror.storage.postmirror import run_postmirror

REPORT = 'printf "argc=%s arg1=[%s] var=%s pwd=%s\\n" "$#" "$1" "$APT_MIRROR_X" "$(pwd)"\n'


def test_executable_gets_one_empty_argument(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "postmirror.sh"
    script.write_text("#!/bin/sh\n" + REPORT + "exit 3\n")
    script.chmod(0o755)
    assert run_postmirror(script, {"APT_MIRROR_X": "yes"}, cwd=tmp_path) == 3
    out = capfd.readouterr().out
    assert f"argc=1 arg1=[] var=yes pwd={tmp_path}" in out


def test_executable_without_shebang_runs_via_sh(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "postmirror.sh"
    script.write_text(REPORT)
    script.chmod(0o755)
    assert run_postmirror(script, {"APT_MIRROR_X": "1"}, cwd=tmp_path) == 0
    assert "argc=1 arg1=[] var=1" in capfd.readouterr().out


def test_not_executable_runs_with_sh_and_no_argument(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "postmirror.sh"
    script.write_text(REPORT)
    script.chmod(0o644)
    assert run_postmirror(script, {}) == 0
    assert "argc=0 arg1=[]" in capfd.readouterr().out


def test_inherits_environment(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APT_MIRROR_X", "from-parent")
    script = tmp_path / "hook"
    script.write_text(REPORT)
    assert run_postmirror(script, {}) == 0
    assert "var=from-parent" in capfd.readouterr().out


def test_missing_script_is_nonzero_without_exception(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    status = run_postmirror(tmp_path / "does-not-exist.sh", {})
    assert status != 0
    assert "does-not-exist.sh" in capfd.readouterr().err
