#!/usr/bin/env python3
"""Profile aptmirror's initial mirror (or no-op) run against the benchmark upstream.

    .venv/bin/python bench/profile_run.py [--scale small] [--tool cprofile|py-spy|both]
                                          [--scenario initial|noop]

Builds the upstream of ``--scale`` under bench/work/profile-<scale>/, serves it with the
private nginx on 127.0.0.1:80 and runs ``.venv/bin/apt-mirror`` (from an empty mirror, or
with ``--scenario noop`` on a complete one):

- under py-spy (installed into bench/work/tools-venv if missing), sampling every thread at
  250 Hz; the collapsed stacks are summarised by where the time goes (hashing, file I/O,
  HTTP client, event loop, index parsing, start-up imports, ...) and written to
  bench/work/profile-<scale>/pyspy.txt (raw) and pyspy.svg (flame graph);
- under cProfile (main thread only, deterministic; higher overhead): the top functions by
  own time go to the console, the stats to bench/work/profile-<scale>/cprofile.out.
"""

from __future__ import annotations

import argparse
import cProfile  # noqa: F401  (checked to exist before a long build)
import io
import pstats
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from harness import upstream
from harness.nginx import Nginx
from harness.tools import PROJECT, TOOLS, WORK

from aptmirror.testing import make_key

TOOLS_VENV = WORK / "tools-venv"
PY_SPY = TOOLS_VENV / "bin" / "py-spy"

# Idle samples (a pool thread waiting for work, the loop waiting in epoll) are left out.
IDLE = re.compile(
    r"^(_worker \(concurrent/futures/thread\.py:81\)|EpollSelector\.select "
    r"|Thread\.wait|Condition\.wait)"
)
# Checked first, anywhere in the stack: the per-request thread hops aiohttp makes with
# trust_env=True (environment proxy lookup and ~/.netrc, each via asyncio.to_thread).
HOPS = re.compile(
    r"^(get_env_proxy_for_url|_get_netrc_auth|netrc_from_env|to_thread|"
    r"BaseEventLoop\.run_in_executor|ThreadPoolExecutor\.submit|_write_to_self|"
    r"BaseEventLoop\.call_soon_threadsafe|_chain_future\.\S*) "
)
# (category, regex on one frame "function (path:line)"), checked from the leaf upwards:
# the first frame that matches decides where a sample's time goes. C functions have no
# frame of their own, so e.g. a write() in Fetcher._stream shows as that Python frame.
CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    (
        "hashing (hashlib update/digest)",
        re.compile(r"^(_Hasher\.\w+|file_matches|_file_hash\w*|check_digests) "),
    ),
    (
        "file I/O in the event loop (open/write/mkdir/rename/stat)",
        re.compile(
            r"^(Fetcher\._stream|Fetcher\._attempt|Path\.(mkdir|stat|exists|is_file|is_dir|"
            r"unlink|open|touch|hardlink_to|rename|replace|lstat|chmod|write_bytes|read_bytes)|"
            r"partial_path|_decompress_to) "
        ),
    ),
    ("index parsing (aptmirror.debian)", re.compile(r"aptmirror/debian/")),
    ("gpgv / subprocesses", re.compile(r"subprocess\.py")),
    ("HTTP client (aiohttp)", re.compile(r"aiohttp/")),
    ("event loop (asyncio)", re.compile(r"asyncio/")),
    ("start-up: imports", re.compile(r"importlib|<frozen")),
    ("aptmirror other", re.compile(r"aptmirror/")),
]
HOPS_LABEL = "per-request thread hops (aiohttp trust_env: proxy env + .netrc)"


def _categorise(raw: Path) -> tuple[Counter[str], Counter[str], int, int]:
    by_cat: Counter[str] = Counter()
    by_leaf: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first is "thread (id): name"
        if not frames:
            continue
        if IDLE.search(frames[-1]):
            idle += count
            continue
        total += count
        by_leaf[frames[-1]] += count
        if any(HOPS.search(f) for f in frames):
            by_cat[HOPS_LABEL] += count
            continue
        for frame in reversed(frames):
            cat = next((c for c, rx in CATEGORIES if rx.search(frame)), None)
            if cat is not None:
                by_cat[cat] += count
                break
        else:
            by_cat["other (interpreter, stdlib)"] += count
    return by_cat, by_leaf, total, idle


def _ensure_py_spy() -> bool:
    if PY_SPY.exists():
        return True
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        subprocess.run(
            [
                str(TOOLS_VENV / "bin" / "pip"),
                "install",
                "-q",
                "--disable-pip-version-check",
                "py-spy",
            ],
            check=True,
        )
    except subprocess.CalledProcessError:
        return False
    return PY_SPY.exists()


def _prepare(base: Path, scenario: str, argv: list[str]) -> None:
    """An empty base (initial), or one with a complete mirror (noop)."""
    if scenario == "noop" and (base / "mirror").is_dir():
        return
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    if scenario == "noop":
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", choices=sorted(upstream.SCALES), default="small")
    ap.add_argument("--tool", choices=("py-spy", "cprofile", "both"), default="both")
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument(
        "--scenario",
        choices=("initial", "noop"),
        default="initial",
        help="noop: mirror once unprofiled, then profile the no-op re-run",
    )
    args = ap.parse_args(argv)
    work = WORK / f"profile-{args.scale}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    key = make_key(work / "key")
    server = Nginx(work / "nginx", work / "upstream")
    apt_mirror = str(TOOLS["aptmirror"].argv0)
    python = str(PROJECT / ".venv" / "bin" / "python")
    try:
        info = upstream.build(work / "upstream", key, args.scale)
        stats = upstream.pool_stats(info)
        print(f"upstream ({args.scale}): {stats.files:,} pool files, {stats.bytes / 1e6:.0f} MB")
        server.start()
        base = work / "base"
        mlist = work / "mirror.list"
        mlist.write_text(TOOLS["aptmirror"].mirror_list(base, server.base_url, info.keyring))
        if args.tool in ("py-spy", "both"):
            if not _ensure_py_spy():
                print("py-spy could not be installed; skipping it")
            else:
                _prepare(base, args.scenario, [apt_mirror, str(mlist)])
                raw = work / "pyspy.txt"
                t0 = time.monotonic()
                subprocess.run(
                    [
                        *(str(PY_SPY), "record", "-r", str(args.rate), "--threads", "-f", "raw"),
                        *("-o", str(raw), "--", apt_mirror, str(mlist)),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                wall = time.monotonic() - t0
                _prepare(base, args.scenario, [apt_mirror, str(mlist)])
                subprocess.run(
                    [
                        *(str(PY_SPY), "record", "-r", str(args.rate), "-f", "flamegraph"),
                        *("-o", str(work / "pyspy.svg"), "--", apt_mirror, str(mlist)),
                    ],
                    check=False,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                by_cat, by_leaf, total, idle = _categorise(raw)
                secs = total / args.rate
                print(
                    f"\npy-spy: {total} busy samples = {secs:.2f} s over all threads"
                    f" ({idle / args.rate:.2f} s idle samples left out); the run took"
                    f" {wall:.2f} s wall under the profiler"
                )
                for cat, n in by_cat.most_common():
                    print(f"  {cat:52s} {n / args.rate:6.2f} s  {100 * n / total:5.1f} %")
                print("\n  top leaf frames:")
                for frame, n in by_leaf.most_common(15):
                    print(f"  {100 * n / total:5.1f} %  {frame}")
        if args.tool in ("cprofile", "both"):
            _prepare(base, args.scenario, [apt_mirror, str(mlist)])
            out = work / "cprofile.out"
            subprocess.run(
                [python, "-m", "cProfile", "-o", str(out), apt_mirror, str(mlist)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            buf = io.StringIO()
            pstats.Stats(str(out), stream=buf).sort_stats("tottime").print_stats(20)
            text = buf.getvalue()
            start = text.find("   ncalls")
            print("\ncProfile (main thread), top 20 by own time:\n" + text[start:])
    finally:
        server.stop()
        key.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
