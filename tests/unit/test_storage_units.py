"""format_size prints like apt-mirror's format_bytes."""

from __future__ import annotations

import pytest

from aptmirror.units import format_size


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0.0 bytes"),
        (512, "512.0 bytes"),
        (1023, "1023.0 bytes"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024 * 1024 * 3 // 2, "1.5 MiB"),
        (int(2.25 * 1024**3), "2.3 GiB"),  # round half up, as Perl's round_number
        (5 * 1024**4, "5120.0 GiB"),  # no TiB in Perl
        (1024 * 1024 - 1, "1024.0 KiB"),
        (-2048, "-2.0 KiB"),
    ],
)
def test_format_size(n: int, expected: str) -> None:
    assert format_size(n) == expected
