"""Clean-up planning, wipe protection, clean.sh and _autoclean."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from aptmirror.errors import StorageError, WipeProtectionError
from aptmirror.storage import clean as cleanmod
from aptmirror.storage.clean import (
    CleanPlan,
    Listing,
    RootPlan,
    check_wipe,
    execute_clean,
    load_listings,
    plan_clean,
    save_listings,
    write_clean_script,
    write_empty_clean_script,
)

ROOT = "deb.example.org/debian"
PARTIAL = ".aptmirror-partial"

NASTY_NAMES = [
    "with space.deb",
    "quote'name.deb",
    'double"quote.deb',
    "$(touch PWNED_SUBST)",
    "`touch PWNED_BACKTICK`",
    "x'; touch PWNED; '",
    "new\nline.deb",
    "-rf",
    "--",
    "star*glob?.deb",
    "back\\slash",
    "semi;colon&amp|pipe>redir",
    os.fsdecode(b"latin1-\xe9.deb"),
]


def make(mirror: Path, rel: str, data: bytes = b"x") -> Path:
    path = mirror / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def run_script(
    script: Path, cwd: Path, shell: str = "/bin/sh"
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([shell, str(script)], cwd=cwd, capture_output=True)


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    m = tmp_path / "mirror"
    make(m, f"{ROOT}/dists/stable/Release")
    make(m, f"{ROOT}/pool/main/a/a/a_1.deb", b"a" * 5000)
    make(m, f"{ROOT}/pool/main/a/a/a_0.deb", b"o" * 5000)  # old version
    make(m, f"{ROOT}/pool/main/b/b/b_0.deb")  # whole package gone
    make(m, f"{ROOT}/pool/contrib/z/z/z.deb")  # whole component gone
    (m / f"{ROOT}/pool/empty/dir").mkdir(parents=True)
    return m


KEEP = {f"{ROOT}/dists/stable/Release", f"{ROOT}/pool/main/a/a/a_1.deb"}


def test_declared_sizes_count_in_whole_blocks(mirror: Path) -> None:
    """Kept files with a declared size are not stat'ed: their size in 4 KiB blocks."""
    exact = plan_clean(mirror, [ROOT], KEEP)
    kept = f"{ROOT}/pool/main/a/a/a_1.deb"  # 5000 bytes on disk
    declared = plan_clean(mirror, [ROOT], KEEP, sizes={kept: 4097})
    assert declared.total_bytes - exact.total_bytes == 8192 - (mirror / kept).stat().st_blocks * 512
    assert (declared.files, declared.bytes) == (exact.files, exact.bytes)


def test_plan_basic(mirror: Path) -> None:
    plan = plan_clean(mirror, [ROOT], KEEP)
    assert sorted(plan.files) == [
        f"{ROOT}/pool/contrib/z/z/z.deb",
        f"{ROOT}/pool/main/a/a/a_0.deb",
        f"{ROOT}/pool/main/b/b/b_0.deb",
    ]
    dirs = plan.dirs
    assert sorted(dirs) == sorted(
        [
            f"{ROOT}/pool/contrib",
            f"{ROOT}/pool/contrib/z",
            f"{ROOT}/pool/contrib/z/z",
            f"{ROOT}/pool/main/b",
            f"{ROOT}/pool/main/b/b",
            f"{ROOT}/pool/empty",
            f"{ROOT}/pool/empty/dir",
        ]
    )
    for i, d in enumerate(dirs):  # children always before their parents
        assert not any(later.startswith(d + "/") for later in dirs[i + 1 :])
    expected = sum((mirror / f).stat().st_blocks * 512 for f in plan.files)
    assert plan.bytes == expected > 0
    assert plan.total_files == 5
    every = [p for p in (mirror / ROOT).rglob("*") if p.is_file()]
    assert len(every) == 5
    assert plan.total_bytes == sum(p.stat().st_blocks * 512 for p in every) > plan.bytes
    assert plan.file_count == 3 and plan.dir_count == 7
    assert plan.summary().endswith("in 3 files and 7 directories")


def _age(tree: Path, seconds: float = 60) -> None:
    """Every directory of ``tree`` last changed ``seconds`` ago (settled)."""
    when = time.time() - seconds
    for d in [tree, *(p for p in tree.rglob("*") if p.is_dir() and not p.is_symlink())]:
        os.utime(d, (when, when))


def _counting_scandir(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    read: list[str] = []
    real = os.scandir

    def scandir(path: Any) -> Any:
        read.append(os.fspath(path))
        return real(path)

    monkeypatch.setattr(cleanmod.os, "scandir", scandir)
    return read


def test_directory_listings_spare_reading_unchanged_directories(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mirror / ROOT / "dists" / "stable-link").symlink_to("stable")
    _age(mirror)
    learned: dict[str, Listing] = {}
    first = plan_clean(mirror, [ROOT], KEEP, learned=learned)
    assert learned[f"{ROOT}/dists/stable"][2:] == (("Release",), ())
    assert f"{ROOT}/dists" not in learned  # a symlink in it: always read
    assert sorted(learned[f"{ROOT}/pool/main/a/a"][2]) == ["a_0.deb", "a_1.deb"]
    save_listings(tmp_path / "dirs", learned)
    known = load_listings(tmp_path / "dirs")
    assert known == learned
    read = _counting_scandir(monkeypatch)
    again: dict[str, Listing] = {}
    second = plan_clean(mirror, [ROOT], KEEP, listings=known, learned=again)
    assert second == first and again == learned
    assert [os.path.relpath(p, mirror) for p in read] == [f"{ROOT}/dists"]
    # an entry added since (here a stray file) changes its directory: read again, found
    make(mirror, f"{ROOT}/dists/stable/stray")
    read.clear()
    third = plan_clean(mirror, [ROOT], KEEP, listings=known)
    assert f"{ROOT}/dists/stable/stray" in third.files
    assert f"{ROOT}/dists/stable" in [os.path.relpath(p, mirror) for p in read]
    # another keep set: the listings serve as well
    more = {*KEEP, f"{ROOT}/pool/main/b/b/b_0.deb", f"{ROOT}/dists/stable/stray"}
    fourth = plan_clean(mirror, [ROOT], more, listings=known)
    assert sorted(fourth.files) == [
        f"{ROOT}/pool/contrib/z/z/z.deb", f"{ROOT}/pool/main/a/a/a_0.deb",
    ]  # fmt: skip


def test_directories_changed_just_now_are_not_remembered(mirror: Path) -> None:
    learned: dict[str, Listing] = {}
    plan_clean(mirror, [ROOT], KEEP, learned=learned)  # the fixture made them just now
    assert learned == {}
    assert load_listings(mirror / "missing") == {}
    (mirror / "garbage").write_bytes(b"\x00not marshal")
    assert load_listings(mirror / "garbage") == {}


def test_root_itself_never_removed(tmp_path: Path) -> None:
    make(tmp_path, "host/repo/old.deb")
    plan = plan_clean(tmp_path, ["host/repo"], set())
    assert plan.files == ["host/repo/old.deb"]
    assert plan.dirs == []


def test_symlinks_always_kept_and_never_followed(mirror: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make(outside, "precious.deb")
    (mirror / ROOT / "pool/main/b/b/link.deb").symlink_to("b_0.deb")
    (mirror / ROOT / "pool/linked-dir").symlink_to(outside)
    (mirror / ROOT / "pool/dangling").symlink_to(tmp_path / "nowhere")
    plan = plan_clean(mirror, [ROOT], KEEP)
    assert not any("link" in f or "precious" in f or "dangling" in f for f in plan.files)
    # The directory holding a symlink is needed, hence its parents too.
    assert f"{ROOT}/pool/main/b/b" not in plan.dirs
    assert f"{ROOT}/pool/main/b" not in plan.dirs
    assert f"{ROOT}/pool/main/b/b/b_0.deb" in plan.files  # the target file itself goes


def test_skip_clean_and_keep_trees(mirror: Path) -> None:
    plan = plan_clean(
        mirror,
        [ROOT],
        KEEP,
        keep_trees=[f"{ROOT}/pool/contrib/"],
        skip_clean=["http-stripped-never-matches/x", f"{ROOT}/pool/main/b/b/b_0.deb"],
    )
    assert plan.files == [f"{ROOT}/pool/main/a/a/a_0.deb"]
    assert sorted(plan.dirs) == [f"{ROOT}/pool/empty", f"{ROOT}/pool/empty/dir"]


def test_skip_clean_dir_keeps_empty_subdirs(mirror: Path) -> None:
    plan = plan_clean(mirror, [ROOT], KEEP, skip_clean=[f"{ROOT}/pool/empty"])
    assert not any(d.startswith(f"{ROOT}/pool/empty") for d in plan.dirs)


def test_skip_clean_covering_the_root(mirror: Path) -> None:
    plan = plan_clean(mirror, [ROOT], set(), skip_clean=["deb.example.org"])
    assert plan.files == [] and plan.dirs == []
    assert plan.total_files == 5  # still counted


def test_partial_downloads_kept_while_their_file_is_referenced(mirror: Path) -> None:
    pool = f"{ROOT}/pool/main"
    resumable = [f"{pool}/a/a/.a_1.deb.aptmirror-partial", f"{pool}/c/c/.c_2.deb.aptmirror-partial"]
    resumable += [f"{name}.meta" for name in resumable]
    orphans = [f"{pool}/a/a/.a_0.deb.aptmirror-partial", f"{pool}/d/d/.d_1.deb.aptmirror-partial"]
    orphans += [f"{name}.meta" for name in orphans]
    # a sidecar whose partial file is gone (a disk full as the transfer began), of a file
    # that is referenced: nothing to resume
    orphans.append(f"{pool}/a/a/.a_1.dsc.aptmirror-partial.meta")
    odd = f"{pool}/e/e/no-dot.aptmirror-partial"  # not a name of ours: kept, as before
    for rel in (*resumable, *orphans, odd):
        make(mirror, rel)
    c_2 = f"{pool}/c/c/c_2.deb"  # planned (by its declared size), not downloaded yet
    plan = plan_clean(mirror, [ROOT], KEEP | {f"{pool}/a/a/a_1.dsc"}, sizes={c_2: 10})
    assert sorted(f for f in plan.files if PARTIAL in f) == sorted(orphans)
    assert f"{pool}/d/d" in plan.dirs  # nothing left in it
    assert not {f"{pool}/c/c", f"{pool}/e/e", f"{pool}/a/a"} & set(plan.dirs)
    # a skip-clean tree covers the file a partial would become
    kept = plan_clean(mirror, [ROOT], KEEP, sizes={c_2: 10}, skip_clean=[f"{pool}/d/d/d_1.deb"])
    assert not any("/d/d/" in f for f in kept.files)


def test_roots_missing_symlinked_overlapping(mirror: Path, tmp_path: Path) -> None:
    (mirror / "alias").symlink_to(mirror / ROOT)
    make(mirror, "afile")
    plan = plan_clean(
        mirror, ["missing/host", "alias", "afile", ROOT, f"{ROOT}/pool/", "", "/"], KEEP
    )
    assert [r.root for r in plan.roots] == [ROOT]
    assert len(plan.files) == len(set(plan.files)) == 3


def test_root_escaping_is_refused(mirror: Path) -> None:
    with pytest.raises(StorageError):
        plan_clean(mirror, ["deb.example.org/../.."], set())


def test_unreadable_directory_is_an_error(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_scandir = os.scandir
    locked = mirror / ROOT / "pool/main/b"

    def scandir(path: Path) -> Any:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(StorageError, match="cannot read"):
        plan_clean(mirror, [ROOT], KEEP)


# --- wipe protection ---------------------------------------------------------


def _plan(files: int, total_files: int, size: int, total_size: int) -> CleanPlan:
    names = tuple(f"r/f{i}" for i in range(files))
    return CleanPlan((RootPlan("r", names, (), size, total_files, total_size),))


def test_wipe_count_ratio() -> None:
    check_wipe(_plan(4, 10, 1, 100))  # 40% is not more than 0.4
    with pytest.raises(WipeProtectionError) as info:
        check_wipe(_plan(5, 10, 1, 100))
    message = str(info.value)
    assert "cleaning r would delete 5 of 10 files (50.0%)" in message
    assert "more than wipe_count_ratio 0.4" in message
    assert "raise wipe_count_ratio" in message
    assert "wipe_size_ratio" not in message


def test_wipe_size_ratio() -> None:
    with pytest.raises(WipeProtectionError, match=r"wipe_size_ratio 0\.4"):
        check_wipe(_plan(1, 10, 41, 100))
    check_wipe(_plan(1, 10, 41, 100), size_ratio=0.5)


def test_wipe_disabled_and_empty() -> None:
    check_wipe(_plan(10, 10, 100, 100), size_ratio=1, count_ratio=1.5)
    check_wipe(_plan(10, 10, 100, 100), size_ratio=0, count_ratio=0)  # apt-mirror2: 0 = off
    check_wipe(_plan(0, 0, 0, 0))
    check_wipe(CleanPlan())


def test_wipe_is_per_root() -> None:
    big = RootPlan("big", ("big/x",), (), 1, 100, 100)
    small = RootPlan("small", ("small/a", "small/b"), (), 2, 2, 2)
    # 3 of 102 files overall, but "small" would be wiped entirely.
    with pytest.raises(WipeProtectionError, match="cleaning small would delete 2 of 2"):
        check_wipe(CleanPlan((big, small)))


def test_wipe_on_real_plan(mirror: Path) -> None:
    with pytest.raises(WipeProtectionError):
        check_wipe(plan_clean(mirror, [ROOT], set()))  # nothing referenced: all would go
    check_wipe(plan_clean(mirror, [ROOT], set()), 1, 1)


# --- clean.sh ----------------------------------------------------------------


def test_clean_script_layout(mirror: Path, tmp_path: Path) -> None:
    script = tmp_path / "var" / "clean.sh"
    plan = plan_clean(mirror, [ROOT], KEEP)
    write_clean_script(script, mirror, plan)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    text = script.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "set -e" in lines
    assert f"cd {mirror}" in lines
    assert f"rm -f -- {ROOT}/pool/main/a/a/a_0.deb" in lines
    assert f"if test -d {ROOT}/pool/empty/dir; then rmdir -- {ROOT}/pool/empty/dir; fi" in lines
    assert "echo 'Removing 7 unnecessary directories...'" in lines
    done = run_script(script, tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert out.startswith("Removing 3 unnecessary files [")
    assert "[0%]." in out and "done." in out
    assert (mirror / ROOT / "pool/main/a/a/a_1.deb").exists()
    assert not (mirror / ROOT / "pool/main/a/a/a_0.deb").exists()
    assert not (mirror / ROOT / "pool/contrib").exists()
    assert not (mirror / ROOT / "pool/empty").exists()
    assert (mirror / ROOT).is_dir()
    # Running it again is harmless.
    assert run_script(script, tmp_path).returncode == 0


def test_clean_script_progress_every_10_and_500(tmp_path: Path) -> None:
    mirror = tmp_path / "m"
    for i in range(1001):
        make(mirror, f"h/r/f{i:04d}")
    plan = plan_clean(mirror, ["h/r"], set())
    script = tmp_path / "clean.sh"
    write_clean_script(script, mirror, plan)
    text = script.read_text()
    assert text.count("printf '%s' .\n") == 101  # files 0, 10, …, 1000; no dirs
    assert "printf '%s' '[0%]'" in text
    assert "printf '%s' '[49%]'" in text  # i = 500
    assert "printf '%s' '[99%]'" in text  # i = 1000
    assert run_script(script, tmp_path).returncode == 0
    assert list((mirror / "h/r").iterdir()) == []


def test_empty_plan_script_runs(tmp_path: Path) -> None:
    script = tmp_path / "clean.sh"
    write_clean_script(script, tmp_path, CleanPlan())
    done = run_script(script, tmp_path)
    assert done.returncode == 0
    assert b"Removing 0 unnecessary files [0 bytes]..." in done.stdout


def test_empty_clean_script_for_autoclean(tmp_path: Path) -> None:
    script = tmp_path / "clean.sh"
    script.write_text("old content")
    write_empty_clean_script(script)
    assert script.read_text() == ""
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


SHELLS = ["/bin/sh"] + [s for s in ("bash", "dash", "busybox") if shutil.which(s)]


@pytest.mark.parametrize("shell", SHELLS)
def test_clean_script_quoting_nasty_names(tmp_path: Path, shell: str) -> None:
    mirror = tmp_path / "mir ror $(touch PWNED_CD)"
    keep = f"{ROOT}/pool/keep me.deb"
    make(mirror, keep)
    for name in NASTY_NAMES:
        make(mirror, f"{ROOT}/pool/{name}")
        make(mirror, f"{ROOT}/pool/dir {name}/inner {name}")
    plan = plan_clean(mirror, [ROOT], {keep})
    assert len(plan.files) == 2 * len(NASTY_NAMES)
    script = tmp_path / "clean.sh"
    write_clean_script(script, mirror, plan)
    argv0 = shell if shell != "busybox" else "busybox sh"
    done = subprocess.run([*argv0.split(), str(script)], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(mirror / ROOT / "pool")) == ["keep me.deb"]
    for where in (tmp_path, mirror, mirror / ROOT, mirror / ROOT / "pool", Path.cwd()):
        assert not any(p.name.startswith("PWNED") for p in where.iterdir()), where


# --- _autoclean --------------------------------------------------------------


def test_execute_clean(mirror: Path) -> None:
    plan = plan_clean(mirror, [ROOT], KEEP)
    assert execute_clean(mirror, plan) == (3, 7)
    remaining = sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file())
    assert remaining == sorted(KEEP)
    assert (mirror / ROOT / "pool").is_dir()
    assert execute_clean(mirror, plan) == (0, 0)  # already gone: fine


def test_execute_clean_nasty_names(tmp_path: Path) -> None:
    for name in NASTY_NAMES:
        make(tmp_path, f"h/r/{name}")
        make(tmp_path, f"h/r/d {name}/f")
    plan = plan_clean(tmp_path, ["h/r"], set())
    assert execute_clean(tmp_path, plan) == (2 * len(NASTY_NAMES), len(NASTY_NAMES))
    assert list((tmp_path / "h/r").iterdir()) == []


def test_execute_clean_does_not_follow_symlinks_created_after_planning(
    mirror: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    victim = make(outside, "b/b_0.deb")
    plan = plan_clean(mirror, [ROOT], KEEP)
    # Between planning and deleting, a planned directory becomes a symlink elsewhere.
    pool_b = mirror / ROOT / "pool/main/b"
    (pool_b / "b/b_0.deb").unlink()
    (pool_b / "b").rmdir()
    pool_b.rmdir()
    pool_b.symlink_to(outside)
    with pytest.raises(StorageError, match="refusing"):
        execute_clean(mirror, plan)
    assert victim.exists()


def test_execute_clean_leaves_replaced_entries(mirror: Path) -> None:
    plan = plan_clean(mirror, [ROOT], KEEP)
    old = mirror / ROOT / "pool/main/a/a/a_0.deb"
    old.unlink()
    old.symlink_to("a_1.deb")  # now a symlink: keep it
    make(mirror, f"{ROOT}/pool/empty/dir/new.deb")  # directory no longer empty
    files, dirs = execute_clean(mirror, plan)
    assert files == 2 and dirs == 5
    assert old.is_symlink()
    assert (mirror / ROOT / "pool/empty/dir/new.deb").exists()


@pytest.mark.parametrize(
    "bad",
    ["../outside", f"{ROOT}/../other/x", f"/{ROOT}/abs", "other/host/file", f"{ROOT}//x"],
)
def test_execute_clean_refuses_escaping_paths(mirror: Path, bad: str) -> None:
    plan = CleanPlan((RootPlan(ROOT, (bad,), (), 0, 1, 0),))
    with pytest.raises(StorageError, match="refusing"):
        execute_clean(mirror, plan)
