"""Human-readable sizes, printed exactly as the Perl apt-mirror prints them.

Pure functions, no I/O, no imports from other aptmirror modules. (Parsing ``limit_rate``
values such as ``100k`` belongs to the config package, not here.)
"""

from __future__ import annotations

import math

_KIB = 1024
_MIB = 1024 * 1024
_GIB = 1024 * 1024 * 1024


def _round_one_decimal(value: float) -> str:
    """Perl ``round_number``: round half up to one decimal and always show it."""
    sign = "-" if value < 0 else ""
    rounded = math.floor((abs(value) + 0.05) * 10) / 10
    return f"{sign}{rounded:.1f}"


def format_size(n: float) -> str:
    """Format a byte count like apt-mirror's ``format_bytes``.

    Units are bytes, KiB, MiB and GiB (no TiB, as in Perl) with exactly one decimal, plain
    bytes as a whole number: ``format_size(512) == "512 bytes"``, ``format_size(0) == "0
    bytes"``, ``format_size(1536) == "1.5 KiB"``. Log lines therefore read exactly like the
    Perl tool's ("0 bytes will be downloaded into archive.", which cron wrappers grep for).
    """
    magnitude = abs(n)
    if magnitude >= _GIB:
        return f"{_round_one_decimal(n / _GIB)} GiB"
    if magnitude >= _MIB:
        return f"{_round_one_decimal(n / _MIB)} MiB"
    if magnitude >= _KIB:
        return f"{_round_one_decimal(n / _KIB)} KiB"
    return f"{int(n)} bytes"
