"""Trust options from the configuration: signed-by values, per-repository gpg_verify,
the typed trust settings, and the symlink guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aptmirror.config.builder import ConfigText, build_config
from aptmirror.errors import ConfigError, UnsafePathError
from aptmirror.model import Config
from aptmirror.storage.safety import DirGuard, ensure_inside, is_inside
from aptmirror.sync.jobs import group_jobs

KEY = (
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n=abcd\n"
    "-----END PGP PUBLIC KEY BLOCK-----"
)


def config(text: str, sources: str | None = None) -> Config:
    files = [ConfigText("mirror.list", text)]
    if sources is not None:
        files.append(ConfigText("mirror.list.d/x.sources", sources, "sources"))
    return build_config(files, "amd64")


def test_signed_by_list_and_gpg_verify_directive() -> None:
    cfg = config(
        "deb [signed-by=/k/a.gpg,/k/b.asc] http://h/debian stable main\n"
        "deb http://other/repo stable main\n"
        "gpg_verify http://other/repo/ off\n"
    )
    first, second = group_jobs(cfg.sources, cfg.directives)
    assert first.signed_by == ("/k/a.gpg", "/k/b.asc") and first.gpg_verify is None
    assert second.signed_by == () and second.gpg_verify == "off"


@pytest.mark.parametrize(("value", "mode"), [("force", "on"), ("on", "on"), ("OFF", "off")])
def test_directive_values(value: str, mode: str) -> None:
    cfg = config(f"deb http://h/d s main\ngpg_verify http://h/d {value}\n")
    assert group_jobs(cfg.sources, cfg.directives)[0].gpg_verify == mode


def test_bad_gpg_verify_value_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"mirror.list:2: invalid gpg_verify value 'maybe'"):
        config("deb http://h/d s main\ngpg_verify http://h/d maybe\n")
    with pytest.raises(ConfigError, match="gpg_verify URL on"):
        config("deb http://h/d s main\ngpg_verify http://h/d\n")


def test_on_wins_over_off_for_one_repository() -> None:
    cfg = config("deb [gpg-verify=off] http://h/d s main\ngpg_verify http://h/d on\n")
    assert group_jobs(cfg.sources, cfg.directives)[0].gpg_verify == "on"


def test_deb822_inline_signed_by_and_gpg_verify() -> None:
    block = "\n".join(" " + (line or ".") for line in KEY.split("\n"))
    sources = (
        "Types: deb\nURIs: http://h/debian\nSuites: stable\nComponents: main\n"
        f"Signed-By:\n{block}\n\n"
        "Types: deb\nURIs: http://u/x\nSuites: s\nComponents: main\nGPG-Verify: no\n"
    )
    cfg = config("set defaultarch amd64\n", sources)
    first, second = group_jobs(cfg.sources, cfg.directives)
    assert first.signed_by == (KEY,)
    assert second.gpg_verify == "off"


def test_trust_settings_are_typed() -> None:
    cfg = config(
        "set etc_trusted /x/trusted.gpg\nset etc_trusted_parts ''\n"
        "set valid_until_tolerance 3600\nset verify_checksums off\n"
    )
    s = cfg.settings
    assert s.etc_trusted == "/x/trusted.gpg" and s.etc_trusted_parts == ""
    assert s.valid_until_tolerance == 3600 and s.verify_checksums is False
    assert not cfg.warnings
    default = config("").settings
    assert default.etc_trusted_parts == "/etc/apt/trusted.gpg.d"
    assert default.verify_checksums and default.valid_until_tolerance == 0
    with pytest.raises(ConfigError, match="valid_until_tolerance"):
        config("set valid_until_tolerance soon\n")


def test_symlink_below_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "mirror" / "host" / "debian"
    (root / "pool").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "pool" / "main")
    assert is_inside(root / "pool" / "contrib" / "x", root)
    assert not is_inside(root / "pool" / "main" / "h" / "x", root)
    with pytest.raises(UnsafePathError, match=r"outside.*remove that symlink"):
        DirGuard(root).check(root / "pool" / "main" / "h" / "hello.deb")
    DirGuard(root).check(root / "pool" / "contrib" / "h" / "hello.deb")  # not yet existing: ok


def test_guard_tells_whether_the_directory_exists(tmp_path: Path) -> None:
    """The planner skips looking for files (and partial files) in a directory not there."""
    root = tmp_path / "debian"
    (root / "pool" / "main" / "h").mkdir(parents=True)
    guard = DirGuard(root)
    assert guard.check(root / "pool" / "main" / "h" / "hello.deb") is True
    assert guard.check(root / "pool" / "main" / "n" / "new.deb") is False
    assert guard.check(root / "pool" / "contrib" / "x" / "deep" / "x.deb") is False
    assert guard.check(root / "pool" / "contrib" / "x" / "deep" / "y.deb") is False  # cached
    assert guard.check(root / "top.deb") is True


def test_symlink_at_the_root_is_the_admins_choice(tmp_path: Path) -> None:
    disk = tmp_path / "disk2"
    (disk / "pool").mkdir(parents=True)
    (tmp_path / "mirror").mkdir()
    os.symlink(disk, tmp_path / "mirror" / "debian")
    ensure_inside(tmp_path / "mirror" / "debian" / "pool" / "x", tmp_path / "mirror" / "debian")
