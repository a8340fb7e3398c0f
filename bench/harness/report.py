"""results.json and results.md from the recorded runs."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

SCENARIOS = ("initial", "noop", "update")
SCENARIO_LABELS = {
    "initial": "initial mirror",
    "noop": "no-op re-run",
    "update": "after 5 % update",
}
#: issue 3 targets: wall-time ratio aptmirror / Perl per scenario.
TARGETS = {"initial": 0.8, "noop": 0.5, "update": 0.8}
RSS_TARGET_MB = 100


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}" if n < 10e6 else f"{n / 1e6:.0f}"


def _ratio(a: float, b: float) -> str:
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}"


def write_json(path: Path, meta: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2) + "\n")


def read_json(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = json.loads(path.read_text())
    return data["meta"], data["runs"]


def _rounds(runs: list[dict[str, Any]], tool: str, scenario: str) -> list[dict[str, Any]]:
    return [r for r in runs if r["tool"] == tool and r["scenario"] == scenario]


def _find(runs: list[dict[str, Any]], tool: str, scenario: str) -> dict[str, Any] | None:
    """The run of median wall time among the rounds (one run: that run), with the largest
    peak RSS and the worst exit status and pool check of all rounds."""
    rows = sorted(_rounds(runs, tool, scenario), key=lambda r: r["wall"])
    if not rows:
        return None
    median = dict(rows[(len(rows) - 1) // 2])
    median["maxrss_kib"] = max(r["maxrss_kib"] for r in rows)
    median["tree_rss_kib"] = max(r["tree_rss_kib"] for r in rows)
    median["exit_code"] = max(rows, key=lambda r: abs(r["exit_code"]))["exit_code"]
    median["pool_ok"] = min(r["pool_ok"] for r in rows)
    return median


def markdown(meta: dict[str, Any], runs: list[dict[str, Any]], labels: dict[str, str]) -> str:
    tools = [t for t in labels if any(r["tool"] == t for r in runs)]
    up = meta["upstream"]
    out = [
        f"# Benchmark results ({meta['scale']} scale, {meta['date']})",
        "",
        f"Upstream: {up['pool_files']:,} pool files / {up['pool_bytes'] / 1e9:.2f} GB "
        f"({up['packages']:,} binary packages, {up['sources']:,} source packages, "
        f"{up['index_files']:,} index files, by-hash), served by nginx on 127.0.0.1:80; "
        f"update = {up['bumped']} packages ({up['bumped_fraction']:.0%}) got new versions "
        f"({up['update_pool_files']:,} new pool files / {up['update_pool_bytes'] / 1e6:.0f} MB). "
        f"nthreads 20, limit_rate 0. Machine: {meta['machine']}.",
        "",
        "Tools: " + "; ".join(f"{labels[t]} {meta['versions'].get(t, '?')}" for t in tools) + ".",
        "",
        *_rounds_note(meta),
        "| scenario | tool | wall s | CPU s (user+sys) | peak RSS MiB (largest process) "
        "| peak RSS MiB (process tree) | requests | pool-file requests | MB fetched | exit "
        "| pool files in mirror |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sc in SCENARIOS:
        for t in tools:
            r = _find(runs, t, sc)
            if r is None:
                continue
            out.append(
                f"| {SCENARIO_LABELS[sc]} | {labels[t]} | {r['wall']:.2f} "
                f"| {r['cpu']:.2f} ({r['user']:.2f} + {r['sys']:.2f}) "
                f"| {_mib(r['maxrss_kib'])} | {_mib(r['tree_rss_kib'])} | {r['requests']:,} "
                f"| {r['pool_requests']:,} | {_mb(r['bytes'])} | {r['exit_code']} "
                f"| {r['pool_ok']:,}/{r['pool_expected']:,} |"
            )
    out += ["", "Ratios (aptmirror / other tool; below 1 means aptmirror is better):", ""]
    others = [t for t in tools if t != "aptmirror"]
    if "aptmirror" in tools and others:
        header = "| scenario | metric | " + " | ".join(f"aptmirror / {labels[t]}" for t in others)
        out += [header + " |", "|---|---|" + "---:|" * len(others)]
        metrics = [
            ("wall time", "wall"),
            ("CPU time", "cpu"),
            ("peak RSS (process tree)", "tree_rss_kib"),
            ("requests", "requests"),
            ("bytes fetched", "bytes"),
        ]
        for sc in SCENARIOS:
            ours = _find(runs, "aptmirror", sc)
            if ours is None:
                continue
            for name, field in metrics:
                cells = []
                for t in others:
                    theirs = _find(runs, t, sc)
                    cells.append(_ratio(ours[field], theirs[field]) if theirs else "-")
                out.append(f"| {SCENARIO_LABELS[sc]} | {name} | " + " | ".join(cells) + " |")
        out += ["", *_targets(runs)]
    if meta.get("rounds", 1) > 1:
        out += ["", "Wall time of every round, in the order run:", ""]
        out += ["| scenario | tool | wall s per round |", "|---|---|---|"]
        for sc in SCENARIOS:
            for t in tools:
                rows = sorted(_rounds(runs, t, sc), key=lambda r: r.get("round", 1))
                if rows:
                    walls = " / ".join(f"{r['wall']:.2f}" for r in rows)
                    out.append(f"| {SCENARIO_LABELS[sc]} | {labels[t]} | {walls} |")
    return "\n".join(out) + "\n"


def _rounds_note(meta: dict[str, Any]) -> list[str]:
    n = meta.get("rounds", 1)
    if n <= 1:
        return ["Each figure is one run.", ""]
    return [
        f"Each tool mirrored {n} times (each round: initial mirror and no-op run, then after "
        "the update another run on each round's mirror; each round starts with another "
        "tool). Times and CPU are those of the run with the median wall time; peak RSS is "
        "the largest of all rounds.",
        "",
    ]


def _round_ratios(runs: list[dict[str, Any]], scenario: str) -> list[float]:
    """aptmirror's wall time over the Perl tool's, round by round (rounds both ran)."""
    ours = {r.get("round", 1): r["wall"] for r in _rounds(runs, "aptmirror", scenario)}
    perl = {r.get("round", 1): r["wall"] for r in _rounds(runs, "perl", scenario)}
    return [ours[k] / perl[k] for k in sorted(ours) if perl.get(k)]


def _targets(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "Issue 3 targets (aptmirror vs the Perl apt-mirror). With several rounds a target is "
        "met only if both the ratio of the median runs and the median of the rounds' own "
        "ratios are: a tool disturbed in some rounds moves the first, not the second.",
        "",
    ]
    for sc, limit in TARGETS.items():
        ours, perl = _find(runs, "aptmirror", sc), _find(runs, "perl", sc)
        if ours is None or perl is None:
            continue
        ratio = ours["wall"] / perl["wall"] if perl["wall"] else float("inf")
        ok = ratio <= limit and ours["exit_code"] == 0
        per_round = _round_ratios(runs, sc)
        if len(per_round) > 1:
            middle = statistics.median(per_round)
            ok = ok and middle <= limit
            each = " / ".join(f"{x:.2f}" for x in per_round)
            ratio_text = f"{ratio:.2f} (median runs), {middle:.2f} (median round: {each})"
        else:
            ratio_text = f"{ratio:.2f}"
        extra = "" if ours["exit_code"] == 0 else f", but aptmirror exited {ours['exit_code']}"
        if sc == "noop":
            ok = ok and ours["pool_requests"] == 0
            extra += f", {ours['pool_requests']} pool-file requests (target 0)"
        mark = "met" if ok else "**not met**"
        lines.append(
            f"- {SCENARIO_LABELS[sc]}: wall ratio {ratio_text} (target ≤ {limit}){extra}: {mark}"
        )
    ours_runs = [r for r in runs if r["tool"] == "aptmirror"]
    if ours_runs:
        peak_mb = max(r["tree_rss_kib"] for r in ours_runs) * 1024 / 1e6
        mark = "met" if peak_mb <= RSS_TARGET_MB else "**not met**"
        lines.append(f"- peak RSS {peak_mb:.0f} MB (target ≤ {RSS_TARGET_MB} MB): {mark}")
    return lines
