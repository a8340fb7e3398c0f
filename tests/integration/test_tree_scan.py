"""Planning looks at the mirror through find(1)'s listing when it has one and with an lstat
per path when not: both see a pool file damaged by hand, both refuse a planted symlink,
and both fetch exactly the same files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aptmirror.storage.treescan import LocalTree, TreeScan

from . import test_failures
from .test_failures import Scenario, assert_published, upstream_pool

scenario = test_failures.scenario  # a repository mirrored once

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture(params=["find", "failing find", "no listing"])
def listings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[LocalTree | None]:
    """What each run planned with: find(1)'s listing, or None where find exits 1 or the
    listing is too large to read."""
    if request.param == "failing find":
        bin_dir = tmp_path / "fake-bin"
        bin_dir.mkdir()
        (bin_dir / "find").write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / "find").chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    elif request.param == "no listing":
        monkeypatch.setattr("aptmirror.storage.treescan.MAX_OUTPUT", 0)
    seen: list[LocalTree | None] = []
    real = TreeScan.result

    async def spy(self: TreeScan) -> LocalTree | None:
        got = await real(self)
        seen.append(got)
        return got

    monkeypatch.setattr(TreeScan, "result", spy)
    request.node.listing_kind = request.param
    return seen


def _pool_requests(sc: Scenario) -> set[str]:
    return {r.path.lstrip("/") for r in sc.up.requests if "/pool/" in r.path}


def test_damaged_pool_files_are_fetched_again_with_or_without_a_listing(
    scenario: Scenario, listings: list[LocalTree | None], request: pytest.FixtureRequest
) -> None:
    sc = scenario
    before = upstream_pool(sc.info)
    sc.update()
    after = upstream_pool(sc.info)
    changed = {rel for rel, digest in after.items() if before.get(rel) != digest}
    assert changed
    kept = sorted(rel for rel in after if rel not in changed)
    truncated, removed, linked = (sc.mirror / rel for rel in kept[:3])
    size = linked.stat().st_size
    truncated.write_bytes(truncated.read_bytes()[:-1])
    removed.unlink()
    (sc.mirror / "same-size").write_bytes(b"z" * size)
    linked.unlink()
    linked.symlink_to(sc.mirror / "same-size")  # the right size, but not a regular file
    sc.up.reset_log()

    res = sc.run()

    assert res.code == 0, res.output
    assert _pool_requests(sc) == changed | set(kept[:3])
    assert_published(sc)
    assert not linked.is_symlink()
    # the run planned with the listing exactly when find could give one
    assert len(listings) == 1
    with_listing = request.node.listing_kind == "find"
    assert (listings[0] is not None) is with_listing


def test_a_planted_symlink_is_refused_with_or_without_a_listing(
    scenario: Scenario, listings: list[LocalTree | None], tmp_path: Path
) -> None:
    sc = scenario
    before = upstream_pool(sc.info)
    sc.update()
    new = sorted(rel for rel, digest in upstream_pool(sc.info).items() if before.get(rel) != digest)
    directory = (sc.mirror / new[0]).parent
    outside = tmp_path / "outside"
    outside.mkdir()
    moved = directory.with_name(directory.name + ".moved")
    directory.rename(moved)
    directory.symlink_to(outside)  # a pool directory that leads out of the tree

    res = sc.run()

    assert res.code == 1, res.output
    assert "remove that symlink" in res.output
    assert list(outside.iterdir()) == []
    directory.unlink()
    moved.rename(directory)
    assert sc.run().code == 0
    assert_published(sc)


def test_a_pool_directory_moved_and_symlinked_inside_the_tree_stays_in_place(
    scenario: Scenario, listings: list[LocalTree | None]
) -> None:
    """find does not follow a directory symlink; what is below one is looked at with an
    lstat, which does: its files are not fetched again."""
    sc = scenario
    before = upstream_pool(sc.info)
    sc.update()
    after = upstream_pool(sc.info)
    changed = {rel for rel, digest in after.items() if before.get(rel) != digest}
    dirs = {str(Path(rel).parent) for rel in after}
    quiet = sorted(d for d in dirs if not any(str(Path(rel).parent) == d for rel in changed))
    directory = sc.mirror / quiet[0]
    moved = sc.mirror / "pool" / "other-disk" / directory.name
    moved.parent.mkdir()
    directory.rename(moved)
    directory.symlink_to(moved)  # the administrator's choice: it stays inside the tree
    sc.up.reset_log()

    res = sc.run()

    assert res.code == 0, res.output
    assert _pool_requests(sc) == changed
    assert directory.is_symlink()
    assert_published(sc)
