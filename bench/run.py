#!/usr/bin/env python3
"""Side-by-side benchmark: aptmirror vs the Perl apt-mirror vs apt-mirror2 (issue 3).

    .venv/bin/python bench/run.py                 # small scale (300 packages), ~1 minute
    .venv/bin/python bench/run.py --scale full    # ~15,000 pool files / ~1.5 GB

Run as root on Debian 12 (it installs apt-mirror, nginx-light and lz4 with apt-get if
missing, and apt-mirror2 into bench/work/am2-venv). It builds a signed upstream under
bench/work/<scale>/, serves it with a private nginx on 127.0.0.1:80, runs three scenarios
(initial mirror, no-op re-run, re-run after 5 % of the packages got new versions) for each
tool against the same upstream states, and writes results.md + results.json (bench/ for the
full scale, bench/work/ otherwise). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import report, upstream
from harness.measure import run_measured
from harness.nginx import Nginx
from harness.tools import TOOLS, WORK, ensure_installed

from aptmirror.testing import RepoInfo, make_key

BENCH = Path(__file__).resolve().parent


def _verify(base: Path, expected: dict[str, int]) -> int:
    """How many of the expected pool files are in the tool's mirror, with the right size."""
    root = base / "mirror" / "127.0.0.1" / "debian"
    ok = 0
    for rel, size in expected.items():
        try:
            if (root / rel).stat().st_size == size:
                ok += 1
        except OSError:
            pass
    return ok


def _machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = f"{sys.version.split()[0]} ({sys.base_prefix})"
    return f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {python}"


def _evict_pool(base: Path) -> None:
    """Drop the pool files under ``base`` from the page cache (after ``os.sync``, outside the
    timing). No tool reads its pool files again (they are only stat-ed), but by the later
    rounds up to 15 mirrors of 1.6 GB filled the page cache, and a run that had to reclaim it
    took seconds of extra kernel time (a first mirror 5-7 s instead of 3.7-4.2 s, for either
    tool, in whichever round it happened). Indexes, var/ files and the upstream stay cached."""
    for path in base.rglob("*"):
        if "pool" not in path.parts or not path.is_file() or path.is_symlink():
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _one_run(
    tool_key: str,
    scenario: str,
    work: Path,
    server: Nginx,
    expected: dict[str, int],
    rnd: int,
) -> dict[str, Any]:
    tool = TOOLS[tool_key]
    tdir = work / tool_key
    os.sync()  # earlier runs' dirty pages must not be written back on this run's clock
    mark = server.mark()
    log = tdir / f"{scenario}-{rnd}.log"
    m = run_measured(tool.argv(tdir / f"mirror-{rnd}.list"), cwd=tdir, log=log)
    seen = server.since(mark)
    pool_ok = _verify(tdir / f"base-{rnd}", expected)
    os.sync()
    _evict_pool(tdir / f"base-{rnd}")
    row: dict[str, Any] = {
        "tool": tool_key,
        "scenario": scenario,
        "round": rnd,
        "exit_code": m.exit_code,
        "wall": round(m.wall, 3),
        "user": round(m.user, 3),
        "sys": round(m.sys, 3),
        "cpu": round(m.cpu, 3),
        "maxrss_kib": m.maxrss_kib,
        "tree_rss_kib": m.tree_rss_kib,
        **seen.as_dict(),
        "pool_ok": pool_ok,
        "pool_expected": len(expected),
    }
    print(
        f"  {scenario:8s} #{rnd} {tool.label:18s} wall {m.wall:7.2f}s cpu {m.cpu:7.2f}s "
        f"rss {m.maxrss_kib / 1024:6.0f}/{m.tree_rss_kib / 1024:6.0f} MiB "
        f"req {seen.requests:6d} (pool {seen.pool_requests:6d}) {seen.bytes / 1e6:8.1f} MB "
        f"exit {m.exit_code} pool {pool_ok}/{len(expected)}",
        flush=True,
    )
    return row


def _rotated(keys: list[str], rnd: int) -> list[str]:
    shift = (rnd - 1) % len(keys)
    return keys[shift:] + keys[:shift]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scale", choices=sorted(upstream.SCALES), default="small")
    ap.add_argument(
        "--tools",
        default="aptmirror,perl,am2",
        help="comma-separated subset of: " + ", ".join(TOOLS),
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="mirrors per tool (each initial, no-op, update); the report takes the median",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated data afterwards")
    ap.add_argument("--out", type=Path, help="directory for results.md/.json")
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="only re-render results.md from the results.json of --out (or bench/)",
    )
    args = ap.parse_args(argv)
    labels = {k: TOOLS[k].label for k in TOOLS}
    if args.report_only:
        out_dir = args.out or BENCH
        meta, runs = report.read_json(out_dir / "results.json")
        (out_dir / "results.md").write_text(report.markdown(meta, runs, labels))
        print((out_dir / "results.md").read_text())
        return 0
    keys = [k.strip() for k in args.tools.split(",") if k.strip()]
    for k in keys:
        if k not in TOOLS:
            ap.error(f"unknown tool {k!r}")
    out_dir = args.out or (BENCH if args.scale == "full" else WORK)

    ensure_installed(keys)
    work = WORK / args.scale
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    key = make_key(work / "key")
    server = Nginx(work / "nginx", work / "upstream")
    runs: list[dict[str, Any]] = []
    try:
        t0 = time.monotonic()
        info = upstream.build(work / "upstream", key, args.scale)
        state_a = upstream.pool_files(info)
        stats = upstream.pool_stats(info)
        print(
            f"upstream ({args.scale}): {stats.files:,} pool files, {stats.bytes / 1e9:.2f} GB,"
            f" {len(info.indexes):,} index files, built in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        server.start()
        rounds = range(1, max(1, args.rounds) + 1)
        for k in keys:
            tdir = work / k
            for r in rounds:
                (tdir / f"base-{r}").mkdir(parents=True)
                (tdir / f"mirror-{r}.list").write_text(
                    TOOLS[k].mirror_list(tdir / f"base-{r}", server.base_url, info.keyring)
                )
        # each round starts with another tool, so none always runs first (or after the
        # same neighbour) on this shared machine
        for r in rounds:
            for k in _rotated(keys, r):
                runs.append(_one_run(k, "initial", work, server, state_a, r))
            for k in _rotated(keys, r):
                runs.append(_one_run(k, "noop", work, server, state_a, r))
        t0 = time.monotonic()
        info_b, bumped = upstream.update(info, key)
        state_b = upstream.pool_files(info_b)
        new = {p: s for p, s in state_b.items() if p not in state_a}
        print(
            f"update: {len(bumped)} packages bumped, {len(new):,} new pool files"
            f" ({sum(new.values()) / 1e6:.0f} MB), in {time.monotonic() - t0:.0f} s",
            flush=True,
        )
        for r in rounds:
            for k in _rotated(keys, r):
                runs.append(_one_run(k, "update", work, server, state_b, r))
    finally:
        server.stop()
        key.close()
    meta = _meta(args.scale, keys, info, info_b, bumped, new)
    meta["rounds"] = max(1, args.rounds)
    out_dir.mkdir(parents=True, exist_ok=True)
    report.write_json(out_dir / "results.json", meta, runs)
    (out_dir / "results.md").write_text(report.markdown(meta, runs, labels))
    print(f"\nwrote {out_dir / 'results.md'} and {out_dir / 'results.json'}\n")
    print((out_dir / "results.md").read_text())
    logs = WORK / f"logs-{args.scale}"
    shutil.rmtree(logs, ignore_errors=True)
    for log in work.glob("*/*.log"):
        (logs / log.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(log, logs / log.parent.name / log.name)
    print(f"tool output of every run: {logs}/<tool>/<scenario>.log")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _meta(
    scale: str,
    keys: list[str],
    info: RepoInfo,
    info_b: RepoInfo,
    bumped: list[str],
    new: dict[str, int],
) -> dict[str, Any]:
    stats = upstream.pool_stats(info)
    names = {p.spec.name for p in info.packages}
    return {
        "scale": scale,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "versions": {k: TOOLS[k].version() for k in keys},
        "upstream": {
            "pool_files": stats.files,
            "pool_bytes": stats.bytes,
            "packages": len(info.packages),
            "sources": len(info.sources),
            "index_files": len(info.indexes),
            "bumped": len(bumped),
            "bumped_fraction": len(bumped) / len(names),
            "update_pool_files": len(new),
            "update_pool_bytes": sum(new.values()),
            "state_b_pool_files": len(upstream.pool_files(info_b)),
        },
    }


if __name__ == "__main__":
    sys.exit(main())
