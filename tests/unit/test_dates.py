"""parse_date gives what email.utils.parsedate_to_datetime gives, without importing it for
the usual form."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from aptmirror.dates import parse_date

CASES = [
    "Sat, 10 Jun 2023 08:50:08 UTC",  # a Release's Date
    "Sun, 06 Nov 1994 08:49:37 GMT",  # HTTP's IMF-fixdate
    "6 Nov 1994 08:49 +0200",  # no weekday, no seconds, an offset
    "Tue, 2 Jan 2024 23:59:59 -0130",
    "Mon, 01 Jan 2024 00:00:00 +0000",
    "Mon, 01 Jan 2024 00:00:00 -0000",  # zone unknown: naive (left to email.utils)
    "sat, 10 jun 2023 08:50:08 utc",
    " Sat, 10 Jun 2023 08:50:08 UT ",
    "10 Jun 2023 08:50:08 Z",
    "Sat, 10 Jun 2023 08:50:08 EST",  # a named US zone (email.utils)
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850 (email.utils)
    "Sun Nov  6 08:49:37 1994",  # asctime (email.utils)
    "Sat, 31 Jun 2023 08:50:08 UTC",  # no such day
    "Sat, 10 Jun 2023 24:50:08 UTC",
    "Sat, 10 Jun 2023 08:50:60 UTC",
    "Sat, 10 Foo 2023 08:50:08 UTC",
    "garbage",
    "",
]


def _outcome(parse: object, text: str) -> tuple[datetime, timedelta | None] | str:
    try:
        when = parse(text)  # type: ignore[operator]
    except Exception as exc:  # the kind of error must be the same too
        return type(exc).__name__
    assert isinstance(when, datetime)
    return when, when.utcoffset()


@pytest.mark.parametrize("text", CASES)
def test_same_as_the_email_package(text: str) -> None:
    assert _outcome(parse_date, text) == _outcome(parsedate_to_datetime, text)


def test_the_usual_form_does_not_need_the_email_package() -> None:
    code = (
        "import sys\n"
        "import aptmirror.cli, aptmirror.sync.pool_worker, aptmirror.sync.run\n"
        "from aptmirror.dates import parse_date\n"
        "parse_date('Sat, 10 Jun 2023 08:50:08 UTC')\n"
        "parse_date('Sun, 06 Nov 1994 08:49:37 GMT')\n"
        "print(sorted(m for m in sys.modules if m == 'email' or m.startswith('email.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
