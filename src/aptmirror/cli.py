"""Command line: ``apt-mirror [configfile]``, the drop-in form of the Perl tool.

Exit status: 0 success; 1 the run finished but something required failed (the summary lists
each URL and reason; affected suites keep their previous published state); 2 bad
configuration or usage (nothing touched); 3 another run holds the lock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from aptmirror import __version__
from aptmirror.config.loader import load_config
from aptmirror.errors import ConfigError, LockError, StorageError
from aptmirror.model import Config
from aptmirror.storage.lock import RunLock
from aptmirror.storage.postmirror import run_postmirror
from aptmirror.sync.run import RunSummary, run_mirror

DEFAULT_CONFIG = "/etc/apt/mirror.list"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="apt-mirror",
        description="Mirror apt repositories listed in mirror.list: verified, atomic, resumable.",
        epilog="Exit status: 0 ok, 1 some required file failed (previous mirror kept), "
        "2 bad configuration, 3 another run is in progress.",
    )
    p.add_argument(
        "configfile", nargs="?", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )
    p.add_argument("--version", action="version", version=f"apt-mirror (aptmirror) {__version__}")
    return p


def _hook_env(summary: RunSummary, config: Config) -> dict[str, str]:
    return {
        "APT_MIRROR_EXIT_CODE": str(summary.exit_code),
        "APT_MIRROR_FAILURES": str(summary.failures),
        "APT_MIRROR_DOWNLOADED_FILES": str(summary.downloaded_files),
        "APT_MIRROR_DOWNLOADED_BYTES": str(summary.downloaded_bytes),
        # Absolute: the hook runs in mirror_path, where relative paths would not resolve.
        "APT_MIRROR_MIRROR_PATH": os.path.abspath(config.settings.mirror_path),
        "APT_MIRROR_VAR_PATH": os.path.abspath(config.settings.var_path),
    }


def _postmirror(summary: RunSummary, config: Config) -> None:
    s = config.settings
    if not s.run_postmirror:
        return
    print(f"Running the Post Mirror script ...\n({s.postmirror_script})\n", flush=True)
    status = run_postmirror(
        Path(s.postmirror_script).absolute(), _hook_env(summary, config), cwd=Path(s.mirror_path)
    )
    if status != 0:
        print(f"Post Mirror script exited with status {status}", flush=True)
    print("Post Mirror script has completed. See above output for any possible errors.")


def run(config: Config) -> int:
    s = config.settings
    for path in (s.mirror_path, s.skel_path, s.var_path):
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create directory {path}: {exc.strerror or exc}") from exc
    with RunLock(Path(s.var_path)):
        summary = asyncio.run(run_mirror(config, sys.stdout))
        _postmirror(summary, config)
    return summary.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.configfile)
    except ConfigError as exc:
        print(f"apt-mirror: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    for warning in config.warnings:
        print(f"apt-mirror: warning: {warning}", file=sys.stderr)
    try:
        return run(config)
    except LockError as exc:
        print(f"apt-mirror: {exc}", file=sys.stderr)
        return EXIT_LOCKED
    except StorageError as exc:
        print(f"apt-mirror: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("apt-mirror: interrupted; the published mirror is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
