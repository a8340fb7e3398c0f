"""Stage 7: clean-up after publication (deletions last).

Builds the keep set (every pool file the new indexes reference, every published suite
snapshot, skip-clean entries), plans with wipe protection, then writes ``clean.sh`` or, with
``_autoclean``, deletes. When any required file failed this run, nothing is planned: the
still-published older indexes may reference files the new ones dropped.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from aptmirror.errors import StorageError, WipeProtectionError
from aptmirror.model import Config
from aptmirror.storage.clean import (
    Listing,
    check_wipe,
    execute_clean,
    load_listings,
    plan_clean,
    save_listings,
    write_clean_script,
    write_empty_clean_script,
)
from aptmirror.sync.context import RunContext
from aptmirror.sync.indexes import SuiteIndexes
from aptmirror.sync.jobs import RepoJob


def _protected(
    ctx: RunContext, jobs: Sequence[RepoJob], indexes: Sequence[SuiteIndexes]
) -> tuple[set[str], list[str]]:
    """(extra files to keep, directory trees to keep) for the published suites."""
    files: set[str] = set()
    trees: list[str] = []
    by_job = {id(i.verified.job): i for i in indexes}
    for job in jobs:
        rel = ctx.suite_rel(job)
        if job.is_flat:
            idx = by_job.get(id(job))
            if idx is not None:
                files.update(f"{rel}/{name}" for name in idx.present)
            continue
        # The live snapshot, by name (never resolved: a symlinked host directory above the
        # repository must not turn the snapshot into "unreferenced").
        suite = ctx.mirror / rel
        target = os.readlink(suite) if suite.is_symlink() else ""
        if target and "/" not in target:
            trees.append(posixpath.join(posixpath.dirname(rel), target))
        else:
            trees.append(rel)
    return files, trees


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _cleanable_roots(ctx: RunContext, clean: Sequence[str]) -> tuple[list[str], list[str]]:
    """(clean roots to clean, clean roots skipped). A root holding a repository with a failed
    suite is skipped: that suite's old indexes stay published and may need any file there;
    the other roots are still cleaned, so one suite that keeps failing does not stop clean-up
    everywhere. A failure tied to no suite skips everything."""
    if any(f.job is None for f in ctx.failures):
        return [], list(clean)
    failed = {ctx.local_root(f.job) for f in ctx.failures if f.job is not None}
    keep: list[str] = []
    skipped: list[str] = []
    for root in clean:
        (skipped if any(_overlap(root, r) for r in failed) else keep).append(root)
    return keep, skipped


# the directory listings of the last walk (see storage.clean.plan_clean)
LISTINGS_NAME = ".aptmirror-dirs"


def run_clean(
    ctx: RunContext,
    config: Config,
    jobs: Sequence[RepoJob],
    pool_keep: Mapping[str, int],
    indexes: Sequence[SuiteIndexes],
) -> None:
    s = ctx.settings
    script = Path(s.cleanscript)
    roots, skipped = _cleanable_roots(ctx, config.clean)
    for root in skipped:
        ctx.say(f"Cleaning skipped for {root}: a suite there failed, its old indexes stay.")
    if not roots and skipped:
        write_empty_clean_script(script)
        return
    keep, trees = _protected(ctx, jobs, indexes)
    keep.update(pool_keep)
    listings = ctx.var / LISTINGS_NAME
    known = load_listings(listings)
    learned: dict[str, Listing] = {}
    try:
        plan = plan_clean(
            ctx.mirror, roots, keep, trees, config.skip_clean, pool_keep, known, learned
        )
        if learned != known:
            save_listings(listings, learned)
        check_wipe(plan, s.wipe_size_ratio, s.wipe_count_ratio)
    except (WipeProtectionError, StorageError) as exc:
        write_empty_clean_script(script)
        ctx.fail(None, "clean", str(exc))
        return
    try:  # a clean-up problem fails the run but must not skip the summary and the hook
        if s.autoclean:
            ctx.say(f"{plan.summary()} will be freed...")
            execute_clean(ctx.mirror, plan)
            write_empty_clean_script(script)
        else:
            write_clean_script(script, ctx.mirror, plan)
            ctx.say(f"{plan.summary()} can be freed.\nRun {script} for this purpose.")
    except StorageError as exc:
        ctx.fail(None, "clean", str(exc))
