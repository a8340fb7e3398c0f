"""Command line: ``apt-mirror [configfile]``, the drop-in form of the Perl tool, and
``apt-mirror COMMAND …``: a first argument equal to a command name (``verify``) selects it;
anything else is the configuration file, as in the Perl tool.

Exit status: 0 success; 1 the run finished but something required failed (the summary lists
each URL and reason; affected suites keep their previous published state); 2 bad
configuration or usage (nothing touched); 3 another run holds the lock.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from aptmirror import __version__
from aptmirror.config.loader import load_config
from aptmirror.config.observe import observe_settings
from aptmirror.errors import ConfigError, LockError, StorageError, Terminated, local_error_text
from aptmirror.model import Config
from aptmirror.observe.redact import redact
from aptmirror.storage.lock import RunLock
from aptmirror.storage.treescan import TreeScan
from aptmirror.sync.jobs import repo_roots

if TYPE_CHECKING:  # the subcommands' modules, and a run's, are imported when they run
    import argparse

    from aptmirror.audit.verify import VerifyReport
    from aptmirror.sync.run import RunSummary

DEFAULT_CONFIG = "/etc/apt/mirror.list"
EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM  # stopped (cleanly)
# a stop can only take effect between the stages' steps, never inside publishing: in the
# pool stage (nearly always) nothing was published yet; after the suites were published,
# only the closing of connections is left
STOPPED = "every suite is either published whole or left as it was"


def _parser() -> argparse.ArgumentParser:
    import argparse  # not for the plain ``apt-mirror [configfile]``: 5 ms of every run

    p = argparse.ArgumentParser(
        prog="apt-mirror",
        description="Mirror apt repositories listed in mirror.list: verified, atomic, resumable.",
        epilog="Commands: 'apt-mirror verify [configfile] [--repair] [--json PATH]' re-checks "
        "the published mirror (see 'apt-mirror verify --help'). "
        "Exit status: 0 ok, 1 some required file failed (previous mirror kept), "
        "2 bad configuration, 3 another run is in progress.",
    )
    p.add_argument(
        "configfile", nargs="?", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )
    p.add_argument("--version", action="version", version=f"apt-mirror (aptmirror) {__version__}")
    return p


def _hook_env(
    summary: RunSummary, config: Config, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    return {
        **(extra or {}),  # run id, report, state DB, metrics and log paths (observe/session.py)
        "APT_MIRROR_PUBLISHED": str(summary.published),
        "APT_MIRROR_SUITES": str(summary.jobs),
        "APT_MIRROR_REQUESTS": str(summary.requests),
        "APT_MIRROR_EXIT_CODE": str(summary.exit_code),
        "APT_MIRROR_FAILURES": str(summary.failures),
        "APT_MIRROR_DOWNLOADED_FILES": str(summary.downloaded_files),
        "APT_MIRROR_DOWNLOADED_BYTES": str(summary.downloaded_bytes),
        # Absolute: the hook runs in mirror_path, where relative paths would not resolve.
        "APT_MIRROR_MIRROR_PATH": os.path.abspath(config.settings.mirror_path),
        "APT_MIRROR_VAR_PATH": os.path.abspath(config.settings.var_path),
    }


def _postmirror(
    summary: RunSummary, config: Config, extra_env: Mapping[str, str] | None = None
) -> None:
    s = config.settings
    if not s.run_postmirror:
        return
    from aptmirror.storage.postmirror import run_postmirror

    print(f"Running the Post Mirror script ...\n({s.postmirror_script})\n", flush=True)
    status = run_postmirror(
        Path(s.postmirror_script).absolute(),
        _hook_env(summary, config, extra_env),
        cwd=Path(s.mirror_path),
    )
    if status != 0:
        print(f"Post Mirror script exited with status {status}", flush=True)
    print("Post Mirror script has completed. See above output for any possible errors.")


def run(config: Config) -> int:
    s = config.settings
    opts = observe_settings(config)  # a bad value is a ConfigError before anything is touched
    for path in (s.mirror_path, s.skel_path, s.var_path):
        try:
            Path(path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create directory {path}: {exc.strerror or exc}") from exc
    with RunLock(Path(s.var_path)):
        # find(1) lists the mirror on the other core while the rest is imported (≈ 0.1 s)
        scan = TreeScan.start(repo_roots(config))
        try:
            from aptmirror.observe.session import ObservedRun
            from aptmirror.sync.loop import run_loop
            from aptmirror.sync.run import run_mirror

            with ObservedRun(config, sys.stdout, opts=opts) as obs:  # state DB, logs, metrics…
                summary = run_loop(run_mirror(config, obs.out, obs.bus.emit, obs.run_id, scan))
                env = obs.hook_env()
        finally:
            scan.close()
        _postmirror(summary, config, env)
    return summary.exit_code


def _verify_parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="apt-mirror verify",
        description="Re-check the published mirror against its own signed Release files: "
        "signatures (same keyrings as a run), every configured index present, every pool "
        "file named by Packages/Sources (size and SHA256).",
        epilog="Exit status: 0 everything intact, 1 something missing, corrupt or unverifiable "
        "(after --repair: still), 2 bad configuration, 3 a run is in progress.",
    )
    p.add_argument(
        "configfile", nargs="?", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="remove corrupt pool files, run the normal mirror pipeline (re-download, "
        "republish atomically), then check again",
    )
    p.add_argument(
        "--json", metavar="PATH", help="report file (default VAR_PATH/verify-report.json)"
    )
    return p


def _complain(what: object) -> None:
    """``apt-mirror: WHAT`` on stderr, a URL's credentials masked."""
    print(redact(f"apt-mirror: {what}"), file=sys.stderr)


def _load(path: str) -> Config | None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        _complain(exc)
        return None
    for warning in config.warnings:
        _complain(f"warning: {warning}")
    return config


def _checked(config: Config) -> VerifyReport:
    from aptmirror.audit.verify import verify_mirror

    with RunLock(Path(config.settings.var_path)):
        report = verify_mirror(config, sys.stdout)
    print(report.summary(), flush=True)
    return report


def verify(config: Config, *, repair: bool, json_path: Path) -> int:
    """``apt-mirror verify``: check; with ``repair`` fix what a run can fix, check again."""
    Path(config.settings.var_path).mkdir(parents=True, exist_ok=True)
    report = _checked(config)
    run_code = EXIT_OK
    if repair and not report.ok:
        from aptmirror.audit.verify import remove_corrupt

        for path in remove_corrupt(report, Path(config.settings.mirror_path)):
            print(f"Removed corrupt {path}", flush=True)
        print("Repairing: running the mirror pipeline ...", flush=True)
        run_code = run(config)
        report = _checked(config)
    report.write_json(json_path)
    print(f"Report written to {json_path}", flush=True)
    return EXIT_OK if report.ok and run_code == EXIT_OK else EXIT_FAILED


def _verify_main(argv: Sequence[str]) -> int:
    args = _verify_parser().parse_args(argv)
    config = _load(args.configfile)
    if config is None:
        return EXIT_CONFIG
    json_path = Path(args.json or Path(config.settings.var_path) / "verify-report.json")
    return _guarded(lambda: verify(config, repair=args.repair, json_path=json_path))


def _health_parser() -> argparse.ArgumentParser:
    import argparse

    p = argparse.ArgumentParser(
        prog="apt-mirror health",
        description="Per configured repository and suite: last successful update and its age, "
        "last run's status and errors, error rate and average speed over recent runs "
        "(from VAR_PATH/aptmirror.db), rated ok, warning or critical against "
        "health_warning_age / health_critical_age (hours).",
        epilog="Exit status: 0 ok, 1 warning, 2 critical (the worst suite), 3 bad configuration.",
    )
    p.add_argument(
        "configfile", nargs="?", default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}"
    )
    p.add_argument("--json", action="store_true", help="print a JSON document instead of a table")
    return p


def _health_main(argv: Sequence[str]) -> int:
    """``apt-mirror health``: exit 0/1/2 for ok/warning/critical, 3 for a bad configuration
    (2 is taken by critical, as monitoring checks expect)."""
    args = _health_parser().parse_args(argv)
    config = _load(args.configfile)
    if config is None:
        return 3
    from aptmirror.observe.health import health_report

    try:
        report = health_report(config, observe_settings(config))
    except ConfigError as exc:
        _complain(exc)
        return 3
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(report.table())
    return int(report.status)


COMMANDS = {"verify": _verify_main, "health": _health_main}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    config = _load(_config_argument(argv))
    if config is None:
        return EXIT_CONFIG
    return _guarded(lambda: run(config))


def _config_argument(argv: list[str]) -> str:
    """The configuration file of ``apt-mirror [configfile]``. The Perl tool's two forms are
    read directly; anything else (an option, more arguments) goes through argparse, which
    answers ``--help``/``--version`` and rejects the rest as it always did."""
    if not argv:
        return DEFAULT_CONFIG
    if len(argv) == 1 and not argv[0].startswith("-"):
        return argv[0]
    configfile: str = _parser().parse_args(argv).configfile
    return configfile


def _guarded(action: Callable[[], int]) -> int:
    """Map the errors a command may end with to exit statuses."""
    try:
        return action()
    except ConfigError as exc:  # a value only checked when the command starts
        _complain(exc)
        return EXIT_CONFIG
    except LockError as exc:
        _complain(exc)
        return EXIT_LOCKED
    except StorageError as exc:
        _complain(exc)
        return EXIT_FAILED
    except OSError as exc:  # the local disk (full, read-only) where no caller expected it
        _complain(f"stopped by a local file error: {local_error_text(exc)}")
        return EXIT_FAILED
    except Terminated:  # before KeyboardInterrupt, which it is
        print(f"apt-mirror: stopped by SIGTERM; {STOPPED}", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print(f"apt-mirror: interrupted; {STOPPED}", file=sys.stderr)
        return EXIT_SIGINT


def entry() -> NoReturn:
    """The ``apt-mirror`` command: :func:`main`, then a quick exit.

    Tearing the interpreter down (freeing every module and object one by one) took 20 to 30 ms
    of a 0.3 s no-op run. Everything a run writes is closed by then (state DB, lists,
    reports, the lock); what is left buffered is flushed here: the log handlers
    (``logging.shutdown``, as at a normal exit) and the standard streams.
    """
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # A run stopped by a signal ends by that signal once it has cleaned up, as a shell
    # expects (`$?` is 130 or 143 all the same): a loop in a script stops at Ctrl-C, and
    # systemd counts a stop by SIGTERM as clean instead of a failure with status 143.
    stopped_by = {EXIT_SIGINT: signal.SIGINT, EXIT_SIGTERM: signal.SIGTERM}.get(code)
    if stopped_by is not None:
        signal.signal(stopped_by, signal.SIG_DFL)
        os.kill(os.getpid(), stopped_by)
    os._exit(code)


if __name__ == "__main__":
    entry()
