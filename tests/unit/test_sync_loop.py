"""sync.loop: the collector's thresholds are the run's own while it runs, restored after."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

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


_FRAGMENT = """
import sys
from aptmirror.sync.loop import tune_malloc
if sys.argv[1] == "tuned":
    tune_malloc()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
big = bytearray(3 << 20)  # freed: glibc's own rule then raises its mmap threshold
del big
base = rss()
blocks, pins = [], []
for _ in range(40):
    blocks.append(bytearray(1200 * 1024))  # touched: resident
    pins.append(bytearray(600))  # malloc'd after it: the block cannot go back at the top
del blocks
print(rss() - base)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_tune_malloc_gives_freed_large_blocks_back() -> None:
    """1.2 MiB blocks freed between small live ones: resident memory with glibc's default
    (dynamic) thresholds, given back to the system with the run's fixed ones."""

    def grown(mode: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        out = subprocess.run(
            [sys.executable, "-c", _FRAGMENT, mode], env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return int(out.stdout)

    assert grown("default") >= 30  # MiB: what the test shows is real
    assert grown("tuned") <= 8
