"""A run whose indexes did not change reuses the last plan (var/.aptmirror-plan) instead of
parsing every index again — and falls back to full planning whenever that could differ."""

from __future__ import annotations

import pytest

from aptmirror.sync import run as runmod
from aptmirror.sync.plancache import CACHE_NAME
from aptmirror.testing import Fault

from . import test_failures
from .conftest import var_dir
from .test_failures import Scenario, assert_published

scenario = test_failures.scenario  # a repository mirrored once


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the suites planned in full (plan_suite calls), per run."""
    calls: list[str] = []
    real = runmod.plan_suite

    def spy(ctx, idx, *args):  # type: ignore[no-untyped-def]
        calls.append(idx.verified.job.dist)
        return real(ctx, idx, *args)

    monkeypatch.setattr(runmod, "plan_suite", spy)
    return calls


def _var(sc: Scenario, name: str) -> bytes:
    return (var_dir(sc.tmp) / name).read_bytes()


def test_unchanged_run_reuses_the_plan(scenario: Scenario, planned: list[str]) -> None:
    sc = scenario  # mirrored once already (full planning, cache written)
    assert (var_dir(sc.tmp) / CACHE_NAME).is_file()
    lists = {name: _var(sc, name) for name in ("ALL", "MD5", "SHA1", "SHA256")}
    (var_dir(sc.tmp) / "NEW").write_text("http://stale/entry\n")
    res = sc.run()
    assert res.code == 0, res.output
    assert planned == []  # no index parsed again
    assert {name: _var(sc, name) for name in lists} == lists
    assert _var(sc, "NEW") == b""  # nothing new this run
    assert_published(sc)
    # the by-hash links were already there: no temporary link left beside them
    assert not list(sc.tmp.rglob("*.aptmirror-link"))


def test_a_file_removed_by_hand_sends_the_run_back_to_full_planning(
    scenario: Scenario, planned: list[str]
) -> None:
    sc = scenario
    deb = next(p.filename for p in sc.info.packages)
    (sc.mirror / deb).unlink()
    sc.up.reset_log()
    res = sc.run()
    assert res.code == 0, res.output
    assert planned  # full planning
    assert [r.path for r in sc.up.requests if "/pool/" in r.path] == [f"/{deb}"]
    assert f"{sc.up.url}{deb}" in _var(sc, "NEW").decode()
    assert_published(sc)


def test_changed_upstream_or_config_plans_again(scenario: Scenario, planned: list[str]) -> None:
    sc = scenario
    sc.update()
    assert sc.run().code == 0
    assert planned
    assert_published(sc)
    planned.clear()
    assert sc.run().code == 0
    assert planned == []
    sc.config.write_text(sc.config.read_text() + "set nthreads 3\n")
    assert sc.run().code == 0
    assert planned


@pytest.mark.usefixtures("fast_retries")
def test_a_failed_run_forgets_the_cache(scenario: Scenario, planned: list[str]) -> None:
    sc = scenario
    cache = var_dir(sc.tmp) / CACHE_NAME
    sc.up.add_fault(f"/dists/{sc.info.suite}/InRelease", Fault("status", status=500, times=100))
    assert sc.run().code == 1
    assert not cache.exists()
    sc.up.clear_faults()
    assert sc.run().code == 0
    assert planned  # planned in full again, then cached
    assert cache.is_file()
    assert_published(sc)


def test_a_damaged_cache_means_full_planning(scenario: Scenario, planned: list[str]) -> None:
    sc = scenario
    cache = var_dir(sc.tmp) / CACHE_NAME
    header, _, body = cache.read_bytes().partition(b"\n")
    cache.write_bytes(header + b"\n" + body[: len(body) // 2])  # the key matches, cut short
    res = sc.run()
    assert res.code == 0, res.output
    assert planned  # planned in full, and cached again
    assert cache.read_bytes().partition(b"\n")[0] == header
    assert_published(sc)
