"""Run a coroutine on uvloop when it is installed (optional: ``pip install uvloop`` or
Debian's python3-uvloop), else on asyncio's default loop. Same behaviour either way;
uvloop only makes the per-request overhead of the event loop smaller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
