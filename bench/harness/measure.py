"""Run one command and measure it: wall time, CPU time, peak RSS.

CPU time comes from ``os.wait4`` on the child: it includes every descendant the child waited
for (the Perl tool's wget and gpgv processes, the Python tools' gpgv). The command runs under
GNU ``time`` (``/usr/bin/time -f %M``), which reports ``ru_maxrss`` of the tool's tree: Linux
carries the RSS high-water mark of a process across ``exec``, so the ``ru_maxrss`` of a child
forked from this (60 MB) Python process would never be below 60 MB; ``time`` is ~2 MB.
``ru_maxrss`` is the largest single process, not the sum, so the process tree is also sampled
every 50 ms from ``/proc`` and the largest *sum* of RSS over the tree is kept (``tree_rss``):
that is what 20 concurrent wget processes cost the machine.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
TIME = "/usr/bin/time"  # GNU time (Debian package "time")


@dataclass
class Measured:
    exit_code: int
    wall: float  # seconds
    user: float  # seconds, child + waited-for descendants
    sys: float
    maxrss_kib: int  # ru_maxrss: largest single process of the tree
    tree_rss_kib: int  # largest sampled sum of RSS over the process tree

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        fields = stat[stat.rfind(b")") + 2 :].split()
        out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def _tree_rss(root: int) -> int:
    kids = _children_map()
    total = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo.extend(kids.get(pid, ()))
    return total // 1024


def run_measured(
    argv: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None
) -> Measured:
    """Run ``argv`` with stdout+stderr to ``log``; return its measurements."""
    rss_file = log.with_name(log.name + ".maxrss")
    timed = [TIME, "-f", "%M", "-o", str(rss_file), *argv]
    with open(log, "wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen(
            timed, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        maxrss = int(rss_file.read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        maxrss = -1
    return Measured(
        exit_code=proc.returncode,
        wall=wall,
        user=usage.ru_utime,
        sys=usage.ru_stime,
        maxrss_kib=maxrss,
        tree_rss_kib=peak,
    )
