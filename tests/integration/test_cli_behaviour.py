"""The command line as a cron job sees it: exit codes, messages, lock, hook and cleaning.

Everything runs the real CLI (``aptmirror.cli.main`` in-process, and the console script as a
subprocess) against a signed sample repository served on loopback.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aptmirror import __version__
from aptmirror.cli import main
from aptmirror.storage.lock import LOCK_NAME, RunLock
from aptmirror.testing import (
    DEFAULT_PACKAGES,
    AptClient,
    Fault,
    PackageSpec,
    RepoInfo,
    TestKey,
    update_repo,
)

from .conftest import (
    CliResult,
    ServeFn,
    base_dir,
    make_repo,
    mirror_root,
    repo_lines,
    run_cli,
    run_cli_subprocess,
    url_dir,
    var_dir,
    write_mirror_list,
)

BIN_DIR = Path(sys.executable).parent
CONSOLE_SCRIPT = BIN_DIR / "apt-mirror"

STAGE_RE = r"^Downloading (\d+) (\w+) files using (\d+) threads\.\.\.$"
SIZE_RE = r"\d+(\.\d)? (bytes|KiB|MiB|GiB)"

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get not installed")


# --------------------------------------------------------------------------- helpers


def referenced(info: RepoInfo) -> set[str]:
    """Pool files named by the repository's Packages and Sources (relative to its root)."""
    files = {p.filename for p in info.packages}
    files |= {f"{s.directory}/{f.name}" for s in info.sources for f in s.files}
    return files


def state(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``root`` with kind, size, inode, mode and mtime: proves "untouched"."""
    out: dict[str, tuple[object, ...]] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = f"l:{os.readlink(p)}" if p.is_symlink() else ("d" if p.is_dir() else "f")
        out[str(p.relative_to(root))] = (kind, st.st_size, st.st_ino, st.st_mode, st.st_mtime_ns)
    return out


def line_of(path: Path, text: str, *, exact: bool = False) -> int:
    """1-based number of the first line of ``path`` containing (or, ``exact``, being) ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if (line == text) if exact else (text in line):
            return number
    raise AssertionError(f"{text!r} not in {path}")


def script_removals(script: Path) -> tuple[list[str], list[str]]:
    """(files, directories) that a generated ``clean.sh`` removes."""
    files: list[str] = []
    dirs: list[str] = []
    for line in script.read_text().splitlines():
        if line.startswith("rm "):
            words = shlex.split(line)
            files.append(words[-1])
        elif line.startswith("if test -d "):
            words = shlex.split(line.split(";")[0])
            dirs.append(words[-1])
    return files, dirs


def mirrored_pool(mirror: Path) -> set[str]:
    """Regular files under ``mirror/pool`` (relative to ``mirror``)."""
    return {str(p.relative_to(mirror)) for p in (mirror / "pool").rglob("*") if p.is_file()}


def sha256sum_check(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``cd mirror && sha256sum -c ../var/SHA256`` — the documented way to check a mirror."""
    return subprocess.run(
        ["sha256sum", "--quiet", "-c", "../var/SHA256"],
        cwd=base_dir(tmp_path) / "mirror",
        capture_output=True,
        text=True,
        check=False,
    )


def apt_check(tmp_path: Path, info: RepoInfo, serve: ServeFn, url: str, pkgs: list[str]) -> None:
    """Serve the mirror of ``url`` and run apt-get update + download against it."""
    served = serve(mirror_root(tmp_path, url))
    client = AptClient(tmp_path / "apt", [info.deb_line(served.url)])
    client.reset_lists()
    client.update()
    client.download(pkgs)
    debs = list(client.download_dir.glob("*.deb"))
    assert len(debs) >= len(pkgs), debs


def mirror_once(
    tmp_path: Path,
    info: RepoInfo,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    *,
    settings: dict[str, str] | None = None,
    extra: list[str] | None = None,
    url: str | None = None,
) -> tuple[Path, str, CliResult]:
    """Write a mirror.list for ``info`` (+ ``clean URL``), run it; return (config, url, result)."""
    if url is None:
        url = serve(info.root).url
    lines = [*repo_lines(info, url), f"clean {url}", *(extra or [])]
    cfg = write_mirror_list(tmp_path, lines, settings=settings)
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    return cfg, url, result


# --------------------------------------------------------------------------- usage


def test_version_and_help_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: apt-mirror" in out
    assert "configfile" in out


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="console script not installed")
def test_console_script_version_and_help() -> None:
    for flag in ("--version", "--help"):
        proc = subprocess.run(
            [str(CONSOLE_SCRIPT), flag], capture_output=True, text=True, timeout=60, check=False
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "apt-mirror" in proc.stdout
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True, check=False
    )
    assert __version__ in proc.stdout


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-mirror.list"
    assert main([str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "invalid config file specified" in err
    assert list(tmp_path.iterdir()) == []


def test_extra_arguments_and_options_still_go_through_argparse(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``apt-mirror [configfile]`` is read without argparse; anything else is checked by it."""
    for argv in (["a.list", "b.list"], ["--bogus"], ["-x", "a.list"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        assert "usage: apt-mirror" in capsys.readouterr().err


def test_the_plain_command_does_not_import_argparse(tmp_path: Path) -> None:
    code = (
        "import sys; from aptmirror.cli import main; "
        f"status = main([{str(tmp_path / 'missing.list')!r}]); "
        "print(status, 'argparse' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr


# --------------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    "bad",
    ["this is not a mirror.list line", "deb-src", "deb ftp://example.org/debian stable main"],
)
def test_bad_line_is_an_error_naming_file_and_line_and_touches_nothing(
    tmp_path: Path,
    sample_repo: RepoInfo,
    serve: ServeFn,
    capsys: pytest.CaptureFixture[str],
    bad: str,
) -> None:
    mirror_once(tmp_path, sample_repo, serve, capsys)
    base = base_dir(tmp_path)
    before = state(base)
    assert any(k.endswith("InRelease") for k in before)
    up = serve(sample_repo.root)  # a fresh server: its log shows whether anything was fetched

    lines = [*repo_lines(sample_repo, up.url), f"clean {up.url}", bad, "set nthreads 3"]
    cfg = write_mirror_list(tmp_path, lines, settings={"run_postmirror": "1"})
    result = run_cli(cfg, capsys)

    assert result.code == 2, result.output
    assert f"{cfg}:{line_of(cfg, bad, exact=True)}:" in result.stderr
    assert result.stdout == ""
    assert state(base) == before
    assert up.requests == []


def test_bad_line_in_fragment_names_the_fragment_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_mirror_list(tmp_path, ["# the repositories are in mirror.list.d/"])
    fragment = tmp_path / "mirror.list.d" / "broken.list"
    fragment.parent.mkdir()
    fragment.write_text("# ok\n\nset nthreads 2\nnonsense here\n")
    result = run_cli(cfg, capsys)
    assert result.code == 2
    assert f"{fragment}:4" in result.stderr
    assert not base_dir(tmp_path).exists()


def test_unusable_base_path_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    cfg = write_mirror_list(tmp_path, [], settings={"base_path": str(blocker / "spool")})
    result = run_cli(cfg, capsys)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert str(blocker) in result.stderr


def test_unknown_key_and_undefined_variable_warn_and_run_proceeds(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve(sample_repo.root).url
    settings = {"frobnicate": "1", "cleanscript": "$var_path/clean$nosuchvar.sh"}
    cfg = write_mirror_list(tmp_path, repo_lines(sample_repo, url), settings=settings)
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if "warning" in line.lower()]
    assert any(
        f"{cfg}:{line_of(cfg, 'frobnicate')}" in w and "frobnicate" in w for w in warnings
    ), result.stderr
    assert any(f"{cfg}:{line_of(cfg, 'nosuchvar')}" in w and "nosuchvar" in w for w in warnings), (
        result.stderr
    )
    # undefined expands to empty, as in Perl
    assert (var_dir(tmp_path) / "clean.sh").is_file()
    assert (mirror_root(tmp_path, url) / "dists" / sample_repo.suite / "InRelease").is_file()


# --------------------------------------------------------------------------- console output


def test_console_output_has_perl_stage_lines(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, result = mirror_once(tmp_path, sample_repo, serve, capsys, settings={"nthreads": "4"})
    out = result.stdout
    stages = {
        m.group(2): (int(m.group(1)), int(m.group(3)))
        for m in re.finditer(
            r"^Downloading (\d+) (\w+) files using (\d+) threads\.\.\.$", out, re.M
        )
    }
    assert "archive" in stages, out
    assert "index" in stages, out
    for count, threads in stages.values():
        assert threads == min(4, max(1, count))
    assert stages["archive"][0] == len(referenced(sample_repo))
    assert out.count("Begin time: ") == len(stages)
    assert out.count("End time: ") == len(stages)
    assert re.search(
        r"^\d+(\.\d)? (bytes|KiB|MiB|GiB) will be downloaded into archive\.$", out, re.M
    )
    assert re.search(
        r"^\d+(\.\d)? (bytes|KiB|MiB|GiB) in 0 files and 0 directories can be freed\.$", out, re.M
    )
    assert f"Run {var_dir(tmp_path) / 'clean.sh'} for this purpose." in out
    assert out.index("will be downloaded into archive.") < out.index("can be freed.")


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="console script not installed")
def test_console_script_runs_a_mirror_job(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn
) -> None:
    url = serve(sample_repo.root).url
    cfg = write_mirror_list(tmp_path, [*repo_lines(sample_repo, url), f"clean {url}"])
    proc = subprocess.run(
        [str(CONSOLE_SCRIPT), str(cfg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for text in ("Begin time:", "End time:", "will be downloaded into archive.", "can be freed."):
        assert text in proc.stdout
    assert re.search(r"Downloading \d+ archive files using \d+ threads\.\.\.", proc.stdout)
    assert not (var_dir(tmp_path) / LOCK_NAME).exists()
    check = sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    mirror = mirror_root(tmp_path, url)
    assert mirrored_pool(mirror) == referenced(sample_repo)


# --------------------------------------------------------------------------- lock


def test_held_lock_exits_3_and_fetches_nothing(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    up = serve(sample_repo.root)
    cfg = write_mirror_list(tmp_path, repo_lines(sample_repo, up.url))
    var = var_dir(tmp_path)
    var.mkdir(parents=True)
    with RunLock(var):
        result = run_cli(cfg, capsys)
        assert result.code == 3, result.output
        assert "already running" in result.stderr
        assert up.requests == []
        assert (var / LOCK_NAME).exists()
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert not (var / LOCK_NAME).exists()


def test_lock_held_by_other_process_then_stale_after_kill(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    up = serve(sample_repo.root)
    cfg = write_mirror_list(tmp_path, repo_lines(sample_repo, up.url))
    var = var_dir(tmp_path)
    var.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from aptmirror.storage.lock import RunLock\n"
            "RunLock(sys.argv[1]).acquire()\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            str(var),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        result = run_cli(cfg, capsys)
        assert result.code == 3, result.output
        assert "already running" in result.stderr
    finally:
        holder.kill()  # SIGKILL: the lock file is left behind, as after a crash
        holder.wait()
    assert (var / LOCK_NAME).exists()
    assert up.requests == []
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert not (var / LOCK_NAME).exists()


def test_stale_lock_file_does_not_block(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    url = serve(sample_repo.root).url
    cfg = write_mirror_list(tmp_path, repo_lines(sample_repo, url))
    var = var_dir(tmp_path)
    var.mkdir(parents=True)
    (var / LOCK_NAME).write_text("999999\n")
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert not (var / LOCK_NAME).exists()


# --------------------------------------------------------------------------- post-mirror hook

HOOK = """#!/bin/sh
{
  echo "argc=$#"
  printf 'arg1=[%s]\\n' "$1"
  echo "cwd=$(pwd -P)"
  if test -e "$APT_MIRROR_VAR_PATH/apt-mirror.lock"; then echo locked=yes; fi
  env | grep '^APT_MIRROR_' | sort
} >> "$(dirname "$0")/hook.record"
echo hook-says-hello
"""


def test_postmirror_runs_once_with_one_empty_argument_in_mirror_path(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = tmp_path / "hooks" / "postmirror.sh"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    hook.chmod(0o755)
    settings = {"run_postmirror": "1", "postmirror_script": str(hook)}
    _, _, result = mirror_once(tmp_path, sample_repo, serve, capfd, settings=settings)
    record = (hook.parent / "hook.record").read_text().splitlines()
    assert record.count("argc=1") == 1, record
    assert "arg1=[]" in record
    assert f"cwd={(base_dir(tmp_path) / 'mirror').resolve()}" in record
    assert "locked=yes" in record  # runs while the lock is still held (B.10)
    env = dict(line.split("=", 1) for line in record if line.startswith("APT_MIRROR_"))
    assert env["APT_MIRROR_EXIT_CODE"] == "0"
    assert env["APT_MIRROR_MIRROR_PATH"] == str(base_dir(tmp_path) / "mirror")
    assert env["APT_MIRROR_VAR_PATH"] == str(var_dir(tmp_path))
    assert int(env["APT_MIRROR_DOWNLOADED_FILES"]) > 0
    assert "Running the Post Mirror script ..." in result.stdout
    assert "hook-says-hello" in result.stdout
    assert result.stdout.index("can be freed.") < result.stdout.index("hook-says-hello")
    assert "Post Mirror script has completed." in result.stdout


def test_postmirror_disabled_is_not_run(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = tmp_path / "hooks" / "postmirror.sh"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    hook.chmod(0o755)
    settings = {"run_postmirror": "0", "postmirror_script": str(hook)}
    _, _, result = mirror_once(tmp_path, sample_repo, serve, capfd, settings=settings)
    assert not (hook.parent / "hook.record").exists()
    assert "Post Mirror" not in result.output


def test_default_postmirror_with_missing_script_prints_shell_error_and_exits_0(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capfd: pytest.CaptureFixture[str]
) -> None:
    url = serve(sample_repo.root).url
    cfg = tmp_path / "mirror.list"  # no run_postmirror line: the Perl default (1) applies
    cfg.write_text(
        f"set base_path {base_dir(tmp_path)}\n" + "\n".join(repo_lines(sample_repo, url)) + "\n"
    )
    result = run_cli(cfg, capfd)
    assert result.code == 0, result.output
    script = var_dir(tmp_path) / "postmirror.sh"
    assert not script.exists()
    assert "Running the Post Mirror script ..." in result.stdout
    assert "Post Mirror script has completed." in result.stdout
    assert str(script) in result.stderr  # the shell's own complaint
    assert re.search(r"No such file|cannot open|not found", result.stderr), result.stderr


def test_postmirror_script_not_executable_is_run_by_sh(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = tmp_path / "hooks" / "postmirror.sh"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    hook.chmod(0o644)
    settings = {"run_postmirror": "1", "postmirror_script": str(hook)}
    mirror_once(tmp_path, sample_repo, serve, capfd, settings=settings)
    record = (hook.parent / "hook.record").read_text().splitlines()
    assert record.count("argc=0") == 1, record  # /bin/sh SCRIPT: no extra argument


def test_relative_paths_work_for_hook_and_clean_script(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn
) -> None:
    """``set base_path ./spool`` (as in examples/mirror.list) run from the config's directory."""
    url = serve(sample_repo.root).url
    hook = tmp_path / "spool" / "var" / "postmirror.sh"
    hook.parent.mkdir(parents=True)
    hook.write_text(HOOK)
    hook.chmod(0o755)
    cfg = tmp_path / "mirror.list"
    cfg.write_text(
        "set base_path ./spool\nset run_postmirror 1\n"
        + "\n".join([*repo_lines(sample_repo, url), f"clean {url}"])
        + "\n"
    )
    result = run_cli_subprocess("mirror.list", cwd=tmp_path)
    assert result.code == 0, result.output
    record = (hook.parent / "hook.record").read_text().splitlines()
    mirror = (tmp_path / "spool" / "mirror").resolve()
    assert f"cwd={mirror}" in record
    env = dict(line.split("=", 1) for line in record if line.startswith("APT_MIRROR_"))
    assert Path(env["APT_MIRROR_MIRROR_PATH"]).resolve() == mirror
    assert Path(env["APT_MIRROR_VAR_PATH"]).is_absolute()
    script = (tmp_path / "spool" / "var" / "clean.sh").read_text()
    assert f"cd {mirror}" in script or f"cd '{mirror}'" in script


def test_unwritable_clean_script_fails_the_run_but_hook_and_summary_still_run(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capfd: pytest.CaptureFixture[str]
) -> None:
    url = serve(sample_repo.root).url
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    hook = tmp_path / "hooks" / "postmirror.sh"
    hook.parent.mkdir()
    hook.write_text(HOOK)
    hook.chmod(0o755)
    settings = {
        "run_postmirror": "1",
        "postmirror_script": str(hook),
        "cleanscript": str(blocker / "clean.sh"),
    }
    cfg = write_mirror_list(
        tmp_path, [*repo_lines(sample_repo, url), f"clean {url}"], settings=settings
    )
    result = run_cli(cfg, capfd)
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert str(blocker) in result.output
    assert "suites published" in result.stdout
    record = (hook.parent / "hook.record").read_text().splitlines()
    assert "APT_MIRROR_EXIT_CODE=1" in record
    assert not (var_dir(tmp_path) / LOCK_NAME).exists()


# --------------------------------------------------------------------------- cleaning


def _obsolete(old: RepoInfo, new: RepoInfo, url: str) -> set[str]:
    return {f"{url_dir(url)}/{rel}" for rel in referenced(old) - referenced(new)}


@needs_apt
def test_clean_script_lists_exactly_the_obsolete_files_and_removes_them(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key)
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys)
    mirror = mirror_root(tmp_path, url)
    new = update_repo(info, repo_key, bump=["hello", "native-data"], remove=["epoch-tool"])
    expected = _obsolete(info, new, url)
    assert len(expected) >= 6

    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    script = var_dir(tmp_path) / "clean.sh"
    assert os.access(script, os.X_OK)
    files, dirs = script_removals(script)
    assert sorted(files) == sorted(expected)
    assert f"{url_dir(url)}/pool/main/e/epoch-tool" in dirs
    assert re.search(
        rf"^\S+ \S+ in {len(expected)} files and {len(dirs)} directories can be freed\.$",
        result.stdout,
        re.M,
    ), result.stdout
    root = base_dir(tmp_path) / "mirror"
    assert all((root / f).is_file() for f in files)  # clean.sh only lists; nothing deleted yet

    proc = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not any((root / f).exists() for f in files)
    assert not any((root / d).exists() for d in dirs)
    assert mirrored_pool(mirror) == referenced(new)
    check = sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    apt_check(tmp_path, new, serve, url, ["hello", "native-data", "hello-doc", "lib+plus:i386"])

    # A further run with nothing changed has nothing left to clean.
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert script_removals(script) == ([], [])


def test_autoclean_deletes_in_process_and_honours_skip_clean(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key)
    url = serve(info.root).url
    kept = "pool/main/e/epoch-tool/epoch-tool_0.9.1-2_amd64.deb"
    extra = [f"skip-clean {url}{kept}"]
    cfg, url, _ = mirror_once(
        tmp_path, info, serve, capsys, settings={"_autoclean": "1"}, extra=extra, url=url
    )
    mirror = mirror_root(tmp_path, url)
    new = update_repo(info, repo_key, bump=["hello"], remove=["epoch-tool"])
    expected = _obsolete(info, new, url) - {f"{url_dir(url)}/{kept}"}

    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert re.search(rf"in {len(expected)} files and \d+ directories will be freed", result.stdout)
    script = var_dir(tmp_path) / "clean.sh"
    assert script.stat().st_size == 0
    assert os.access(script, os.X_OK)
    root = base_dir(tmp_path) / "mirror"
    assert not any((root / f).exists() for f in expected)
    assert (mirror / kept).is_file()
    assert mirrored_pool(mirror) == referenced(new) | {kept}
    check = sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_skip_clean_directory_keeps_its_subtree_in_clean_script(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key)
    url = serve(info.root).url
    extra = [f"skip-clean {url}pool/main/e/"]
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys, extra=extra, url=url)
    new = update_repo(info, repo_key, bump=["hello"], remove=["epoch-tool"])
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    files, dirs = script_removals(var_dir(tmp_path) / "clean.sh")
    expected = {f for f in _obsolete(info, new, url) if "/pool/main/e/" not in f}
    assert sorted(files) == sorted(expected)
    assert not any("/pool/main/e" in d for d in dirs)


def _filler_repo(tmp_path: Path, key: TestKey) -> RepoInfo:
    fillers = [PackageSpec(f"filler{i:02d}", "1.0-1", "all", size=512) for i in range(30)]
    return make_repo(
        tmp_path,
        key,
        packages=[*DEFAULT_PACKAGES, *fillers],
        by_hash=False,
        contents=False,
        dep11=False,
        cnf=False,
        translations=False,
        real_debs=False,
    )


def test_wipe_protection_refuses_then_ratio_1_cleans(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = _filler_repo(tmp_path, repo_key)
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys, settings={"_autoclean": "1"})
    mirror = mirror_root(tmp_path, url)
    gone = sorted({p.spec.name for p in info.packages} - {"hello", "hello-doc"})
    new = update_repo(info, repo_key, remove=gone)
    expected = _obsolete(info, new, url)
    pool_before = state(mirror / "pool")

    result = run_cli(cfg, capsys)
    assert result.code != 0, result.output
    assert "wipe_count_ratio" in result.output
    assert "wipe_size_ratio" in result.output
    assert "refus" in result.output
    assert "left unchanged" not in result.output  # the new indexes were published
    # Nothing deleted: the same pool files as before.
    root = base_dir(tmp_path) / "mirror"
    assert all((root / f).is_file() for f in expected)
    assert set(state(mirror / "pool")) == set(pool_before)
    assert (var_dir(tmp_path) / "clean.sh").stat().st_size == 0
    # The new indexes were still published (the failure is only the clean-up).
    packages = (mirror / "dists" / new.suite / "main" / "binary-amd64" / "Packages").read_text()
    assert "filler00" not in packages

    settings = {"_autoclean": "1", "wipe_count_ratio": "1", "wipe_size_ratio": "1"}
    cfg = write_mirror_list(tmp_path, [*repo_lines(new, url), f"clean {url}"], settings=settings)
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert not any((root / f).exists() for f in expected)
    assert mirrored_pool(mirror) == referenced(new)


def test_wipe_protection_with_clean_script_lists_nothing(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = _filler_repo(tmp_path, repo_key)
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys)
    new = update_repo(info, repo_key, remove=[f"filler{i:02d}" for i in range(30)])
    result = run_cli(cfg, capsys)
    assert result.code != 0, result.output
    assert "wipe_" in result.output
    assert script_removals(var_dir(tmp_path) / "clean.sh") == ([], [])
    root = base_dir(tmp_path) / "mirror"
    assert all((root / f).is_file() for f in _obsolete(info, new, url))


def test_clean_with_credentials_in_url_keeps_dists(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key)
    up = serve(info.root, path_prefix="debian", auth=("mirror", "s3cret"))
    url = up.url.replace("http://", "http://mirror:s3cret@")
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys, settings={"_autoclean": "0"}, url=url)
    mirror = mirror_root(tmp_path, url)
    assert "s3cret" not in str(mirror)
    assert (mirror / "dists" / info.suite / "InRelease").is_file()
    assert not list((base_dir(tmp_path) / "mirror").glob("mirror:*"))

    new = update_repo(info, repo_key, bump=["hello"])
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    files, _ = script_removals(var_dir(tmp_path) / "clean.sh")
    assert sorted(files) == sorted(_obsolete(info, new, url))
    assert not any("/dists/" in f for f in files)

    # The same with _autoclean: dists/ survives, only the old hello files go.
    cfg = write_mirror_list(
        tmp_path, [*repo_lines(new, url), f"clean {url}"], settings={"_autoclean": "1"}
    )
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert (mirror / "dists" / info.suite / "InRelease").is_file()
    assert mirrored_pool(mirror) == referenced(new)
    check = sha256sum_check(tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr


def test_runs_are_quick_when_nothing_changed(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run (as from cron) re-fetches only the Release files and cleans nothing."""
    up = serve(sample_repo.root)
    cfg, _, _ = mirror_once(tmp_path, sample_repo, serve, capsys, url=up.url)
    up.reset_log()
    started = time.monotonic()
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    assert time.monotonic() - started < 10
    assert up.count("*/pool/*") == 0
    assert "0 files and 0 directories can be freed." in result.stdout


def test_dropping_a_suite_removes_its_snapshot_and_symlink(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    info = make_repo(tmp_path, repo_key)
    cfg, url, _ = mirror_once(tmp_path, info, serve, capsys)
    dists = mirror_root(tmp_path, url) / "dists"
    assert (dists / info.suite).is_symlink()
    settings = {"_autoclean": "1", "wipe_size_ratio": "1", "wipe_count_ratio": "1"}
    cfg = write_mirror_list(tmp_path, [f"clean {url}"], settings=settings)
    result = run_cli(cfg, capsys)
    assert result.code == 0, result.output
    # Nothing may dangle: the suite symlink goes with the snapshot it pointed to.
    assert not os.path.lexists(dists / info.suite)
    assert not dists.exists() or not any(dists.iterdir())
    assert not (mirror_root(tmp_path, url) / "pool").exists()


def test_symlinked_host_directory_keeps_the_published_suite(
    tmp_path: Path, repo_key: TestKey, serve: ServeFn, capsys: pytest.CaptureFixture[str]
) -> None:
    """A host directory moved to another disk (a symlink above the repository) must not make
    the live snapshot look unreferenced to the cleaner."""
    info = make_repo(tmp_path, repo_key)
    url = serve(info.root, path_prefix="debian").url
    elsewhere = tmp_path / "disk2"
    elsewhere.mkdir()
    host = base_dir(tmp_path) / "mirror" / url_dir(url).split("/")[0]
    host.parent.mkdir(parents=True)
    host.symlink_to(elsewhere)
    settings = {"_autoclean": "1", "wipe_size_ratio": "1", "wipe_count_ratio": "1"}
    cfg = write_mirror_list(tmp_path, [*repo_lines(info, url), f"clean {url}"], settings=settings)
    for _ in range(2):
        result = run_cli(cfg, capsys)
        assert result.code == 0, result.output
        suite = mirror_root(tmp_path, url) / "dists" / info.suite
        assert suite.is_symlink() and (suite / "InRelease").is_file()
        assert "0 bytes in 0 files and 0 directories will be freed" in result.stdout


def test_the_command_exits_quickly_with_its_status_and_everything_written(
    tmp_path: Path, sample_repo: RepoInfo, serve: ServeFn
) -> None:
    """``python -m aptmirror.cli`` ends with os._exit (no interpreter teardown): the exit
    status is the run's, and the console output and the buffered log lines are all out."""
    up = serve(sample_repo.root)
    cfg = write_mirror_list(
        tmp_path, repo_lines(sample_repo, up.url), settings={"retry_delay": "0"}
    )
    first = run_cli_subprocess(cfg)
    assert first.code == 0, first.output
    assert "suites published." in first.output.splitlines()[-1]
    # "downloaded" lines are buffered (flushed once a second): every one is in the file
    log = next(var_dir(tmp_path).glob("127.0.0.1*.log")).read_text()
    for pkg in sample_repo.packages:
        assert f"downloaded {up.url}{pkg.filename}" in log
    deb = next(p.filename for p in sample_repo.packages)
    (mirror_root(tmp_path, up.url) / deb).unlink()
    up.add_fault(f"/{deb}", Fault("status", status=404, times=100))
    second = run_cli_subprocess(cfg)
    assert second.code == 1, second.output
    assert "required download(s)/check(s) failed" in second.output
