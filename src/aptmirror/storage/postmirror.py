"""Running the user's post-mirror hook exactly as the Perl tool does (B.10).

If the script is executable it is run directly with ONE empty-string argument (Perl:
``system($script, '')``, so hooks may see ``$# = 1``); otherwise as ``/bin/sh <script>``,
so a missing script makes the shell print an error and return non-zero without stopping
the run. Output goes straight to our stdout/stderr; the exit status is returned for the
caller to log (Perl ignores it).

Perl runs the hook from ``mirror_path`` (it ``chdir``s there before cleaning): callers
should pass ``cwd=mirror_path`` to keep relative paths in existing hooks working.

Imports nothing from aptmirror; never raises for a failing or missing hook.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

SHELL = "/bin/sh"
_EXIT_CANNOT_RUN = 127  # what a shell reports for a command it cannot run


def _run(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None) -> int:
    completed = subprocess.run(list(argv), env=dict(env), cwd=cwd, check=False)
    return completed.returncode


def run_postmirror(script: Path, env_extra: Mapping[str, str], *, cwd: Path | None = None) -> int:
    """Run the hook and return its exit status (negative: killed by that signal).

    The environment is ours plus ``env_extra``. An executable file without a ``#!`` line
    is handed to ``/bin/sh``, as Perl's ``execvp`` would. Failures to start anything at all
    are reported on stderr and returned as 127.
    """
    env = {**os.environ, **env_extra}
    # Keep our own buffered output before the hook's in the terminal/log.
    sys.stdout.flush()
    sys.stderr.flush()
    executable = script.is_file() and os.access(script, os.X_OK)
    try:
        if executable:
            try:
                return _run([str(script), ""], env, cwd)
            except OSError as exc:
                if exc.errno != errno.ENOEXEC:
                    raise
                return _run([SHELL, str(script), ""], env, cwd)
        return _run([SHELL, str(script)], env, cwd)
    except OSError as exc:
        print(f"apt-mirror: cannot run {script}: {exc.strerror or exc}", file=sys.stderr)
        return _EXIT_CANNOT_RUN
