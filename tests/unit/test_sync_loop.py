"""sync.loop: the collector's thresholds are the run's own while it runs, restored after."""

from __future__ import annotations

import gc

import pytest

from aptmirror.sync.loop import GC_THRESHOLDS, run_loop


def test_run_loop_tunes_the_collector_only_while_it_runs() -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS

    async def seen() -> tuple[int, int, int]:
        return gc.get_threshold()

    assert run_loop(seen()) == GC_THRESHOLDS
    assert gc.get_threshold() == before

    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        run_loop(fails())
    assert gc.get_threshold() == before
