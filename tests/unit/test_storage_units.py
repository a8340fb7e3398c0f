"""format_size prints like apt-mirror's format_bytes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aptmirror.units import format_size


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0 bytes"),
        (512, "512 bytes"),
        (1023, "1023 bytes"),
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


SAMPLES = (0, 1, 512, 1023, 1024, 1536, 1048575, 1572864, 2415919104, 5497558138880)


def test_format_size_as_the_perl_tool_prints() -> None:
    """Against the real ``format_bytes`` of the Perl tool, where it is installed."""
    script = Path("/usr/bin/apt-mirror")
    if not script.exists() or shutil.which("perl") is None:
        pytest.skip("the Perl apt-mirror is not installed here")
    subs = re.findall(
        r"^sub (?:round_number|format_bytes)\n\{\n.*?^\}\n", script.read_text(), re.S | re.M
    )
    assert len(subs) == 2
    code = "".join(subs) + 'print format_bytes($_), "\\n" for @ARGV;'
    out = subprocess.run(
        ["perl", "-e", code, *map(str, SAMPLES)], capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == [format_size(n) for n in SAMPLES]
