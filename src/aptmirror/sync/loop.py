"""Run a coroutine on uvloop when it is installed (optional: ``pip install uvloop`` or
Debian's python3-uvloop), else on asyncio's default loop. Same behaviour either way;
uvloop only makes the per-request overhead of the event loop smaller.

SIGTERM (``systemctl stop``, ``timeout``) stops the run as Ctrl-C does: the main task is
cancelled, so every stage cleans up on its way out (pool workers stopped, partial files
kept for a Range resume, nothing half-published) and the observers hear an interrupted
``RunFinished``; :func:`run_loop` then raises :class:`Terminated`. (Python's default for
SIGTERM ended the process on the spot: the state DB and the metrics said the run was still
going until the next one.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

from aptmirror.errors import Terminated

T = TypeVar("T")


# glibc mallopt parameters, each with the environment variable that overrides it
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MALLOC_SETTINGS = (
    (M_ARENA_MAX, "MALLOC_ARENA_MAX", 2),
    (M_MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_", 1 << 20),
    (M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 4 << 20),
)


def tune_malloc() -> None:
    """Keep glibc's malloc from holding on to memory a run no longer uses (each setting
    unless its environment variable is set; elsewhere than glibc this does nothing).

    * Arenas: glibc gives each thread that allocates an arena of its own (up to 8 per core)
      and keeps what was freed in each. Measured when bodies were still written by I/O
      threads (their 256 KiB buffers left tens of MB resident), on a first mirror of 15,000
      files: peak RSS 93 -> 81 MB in one process, a worker process 83 -> 72 MB, no slower.
      The cap stays for the threads that remain (decompression, the ticker, the resolver).
    * Fixed thresholds: by default glibc raises its mmap threshold to the size of any large
      block freed, up to 32 MiB, and its trim threshold to twice that; after the index
      stage (1 MiB reads, 4 MiB blocks of paragraphs) freed memory then stayed resident for
      the rest of the run. With blocks of 1 MiB and more always mapped (and unmapped when
      freed) and at most 4 MiB kept free at the heap's top: the run process of a first
      mirror of the benchmark's 15,054 files peaked at 45-46 MiB instead of 57-58 (the
      process tree 86 -> 81 MiB), in the same time (3.09/3.08 s against 3.13 s, 7 runs).
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        for param, variable, value in MALLOC_SETTINGS:
            if not os.environ.get(variable):
                libc.mallopt(param, value)


# The cyclic garbage collector's thresholds during a run (Python's default: 700, 10, 10).
# Planning makes tens of thousands of long-lived objects (the plan, the var/ lists), and
# with the defaults every 700 allocations start a collection, and the full ones walk the
# whole plan again and again. Measured on a 5 % update of 15,054 files (tmpfs, 10
# interleaved runs each): 657 -> 635 ms and 666 -> 630 ms, CPU -26 ms; the first mirror and
# a no-op unchanged. Cycles are still collected, every 20,000 allocations.
GC_THRESHOLDS = (20_000, 50, 100)


class _Stop:
    """Which signal is stopping the run in progress (None: none, or Ctrl-C's own)."""

    signal: int | None = None


def interrupted_exit_code() -> int:
    """The exit status of a run being stopped: 128 + the signal (143 SIGTERM, 130 SIGINT)."""
    return 128 + (_Stop.signal or signal.SIGINT)


async def _stoppable(coro: Coroutine[Any, Any, T]) -> T:
    """``coro``, cancelled on SIGTERM (the runner itself cancels it on SIGINT)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def terminate() -> None:
        _Stop.signal = signal.SIGTERM
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
        return await coro
    try:
        return await coro
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_loop(coro: Coroutine[Any, Any, T], *, stoppable: bool = True) -> T:
    """Run ``coro`` to its end; with ``stoppable``, SIGTERM cancels it (module docstring)."""
    tune_malloc()
    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    _Stop.signal = None
    main = _stoppable(coro) if stoppable else coro
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(main)
        return uvloop.run(main)
    except asyncio.CancelledError:
        if _Stop.signal == signal.SIGTERM:
            raise Terminated from None
        raise
    finally:
        gc.set_threshold(*before)
