#!/usr/bin/env python3
"""Micro-benchmark: parse Debian bookworm's real main/binary-amd64/Packages into planner records.

    .venv/bin/python bench/parse_bench.py [--repeat 5] [PATH]

The file comes from apt's lists (``/var/lib/apt/lists/*_main_binary-amd64_Packages.lz4``,
about 63,000 stanzas / 50 MB uncompressed); it is decompressed once with the ``lz4`` tool
into memory, then fed in 1 MiB chunks (as the planner's decompressing reader does) to:

- ``aptmirror.debian.packages.iter_binary_files`` (the planner's path; target <= 0.5 s),
  also with ``filter_fields=True`` (Source/Section, for source-name/section filters);
- python-debian's ``deb822.Packages.iter_paragraphs`` (if installed), extracting the same
  fields, for comparison;
- a naive streaming line parser (split each line on ":"), as a floor for "simple Python".

Each is run ``--repeat`` times and the best time is reported; the peak Python allocation
(tracemalloc) of one aptmirror pass shows that records are streamed, not accumulated.
Skips (exit 0) with a message when the file or the lz4 tool is absent.
"""

from __future__ import annotations

import argparse
import glob
import io
import shutil
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 1 << 20
_PATTERNS = (
    "/var/lib/apt/lists/*bookworm_main_binary-amd64_Packages.lz4",
    "/var/lib/apt/lists/*_main_binary-amd64_Packages.lz4",
    "/var/lib/apt/lists/*_main_binary-amd64_Packages",
)


def _find() -> Path | None:
    for pattern in _PATTERNS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return Path(hits[0])
    return None


def _load(path: Path) -> bytes:
    if path.suffix != ".lz4":
        return path.read_bytes()
    return subprocess.run(["lz4", "-dc", str(path)], capture_output=True, check=True).stdout


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


def aptmirror_records(data: bytes, *, filter_fields: bool = False) -> tuple[int, int]:
    from aptmirror.debian.packages import iter_binary_files

    n = total = 0
    for rec in iter_binary_files(_chunks(data), filter_fields=filter_fields):
        n += 1
        total += rec.size
    return n, total


def python_debian_records(data: bytes) -> tuple[int, int]:
    from debian import deb822

    n = total = 0
    for para in deb822.Packages.iter_paragraphs(io.BytesIO(data), use_apt_pkg=False):
        _ = (para["Filename"], para.get("SHA256"), para.get("MD5sum"), para["Package"])
        n += 1
        total += int(para["Size"])
    return n, total


def naive_records(data: bytes) -> tuple[int, int]:
    """A straightforward streaming parser: one dict per stanza, wanted fields only."""
    wanted = {"Package", "Version", "Architecture", "Filename", "Size", "SHA256", "MD5sum"}
    n = total = 0
    stanza: dict[str, str] = {}
    for raw in io.BytesIO(data):
        line = raw.decode("utf-8", "surrogateescape").rstrip("\n")
        if not line:
            if stanza:
                n += 1
                total += int(stanza["Size"])
                stanza = {}
            continue
        if line[0] in " \t":
            continue
        key, _, value = line.partition(":")
        if key in wanted:
            stanza[key] = value.strip()
    if stanza:
        n += 1
        total += int(stanza["Size"])
    return n, total


def _best(fn: Callable[[], tuple[int, int]], repeat: int) -> tuple[float, tuple[int, int]]:
    best = float("inf")
    result = (0, 0)
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path", nargs="?", type=Path, help="a Packages file (.lz4 or plain)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    path = args.path or _find()
    if path is None or not path.exists():
        print(
            "SKIP: no main/binary-amd64 Packages list under /var/lib/apt/lists/ "
            "(run `apt-get update` on a Debian machine, or pass a path)"
        )
        return 0
    if path.suffix == ".lz4" and shutil.which("lz4") is None:
        print("SKIP: the lz4 tool is missing (apt-get install lz4)")
        return 0
    t0 = time.perf_counter()
    data = _load(path)
    print(f"{path}")
    print(
        f"  {len(data) / 1e6:.1f} MB uncompressed; "
        f"lz4 -dc took {time.perf_counter() - t0:.2f} s (not counted below)\n"
    )
    rows: list[tuple[str, Callable[[], tuple[int, int]], int]] = [
        ("aptmirror iter_binary_files", lambda: aptmirror_records(data), args.repeat),
        (
            "aptmirror iter_binary_files(filter_fields=True)",
            lambda: aptmirror_records(data, filter_fields=True),
            args.repeat,
        ),
        ("naive streaming line parser", lambda: naive_records(data), max(1, args.repeat // 2)),
    ]
    try:
        import debian.deb822  # noqa: F401
    except ImportError:
        print("  (python-debian not installed: its deb822 comparison is skipped)\n")
    else:
        rows.append(("python-debian deb822 (pure Python)", lambda: python_debian_records(data), 1))
    print(f"  {'parser':50s} {'best s':>8s} {'records':>9s} {'stanzas/s':>10s}")
    ours = None
    for name, fn, repeat in rows:
        secs, (n, total) = _best(fn, repeat)
        ours = ours if ours is not None else secs
        print(f"  {name:50s} {secs:8.3f} {n:9,d} {n / secs:10,.0f}   (sum of sizes {total:,})")
    tracemalloc.start()
    aptmirror_records(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\n  peak Python allocation during one aptmirror pass: {peak / 1e6:.1f} MB")
    target = 0.5
    verdict = "met" if ours is not None and ours <= target else "NOT met"
    print(f"  issue 3 target: aptmirror <= {target} s: {verdict} ({ours:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
