"""RFC 5322 dates, as HTTP and Release files write them (``Sat, 10 Jun 2023 08:50:08 UTC``).

One job: :func:`parse_date`, with the result of :func:`email.utils.parsedate_to_datetime`.
The usual form is read here and anything else is left to that function, imported only then:
the email package is 5 ms of every process's start-up, and every run parses the Release's
dates and each download's ``Last-Modified``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_date"]

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# [weekday,] day month year hh:mm[:ss] zone — the zone a name for UTC or ±hhmm (not -0000,
# which means "unknown" and gives a naive datetime: left to the email package)
_USUAL = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2})(?::(\d{2}))?"
    r"\s+(?:(GMT|UTC|UT|Z)|([+-])(\d{2})(\d{2}))\s*",
    re.ASCII,
)


def parse_date(text: str) -> datetime:
    """The date in ``text``: aware, or naive for the zone ``-0000``. Raises ``ValueError``
    (or what :func:`email.utils.parsedate_to_datetime` raises) when it is not a date."""
    m = _USUAL.fullmatch(text)
    month = _MONTHS.get(m.group(2).lower()) if m is not None else None
    if m is None or month is None or (m.group(8) == "-" and m.group(9) == m.group(10) == "00"):
        from email.utils import parsedate_to_datetime  # only now: see the module docstring

        return parsedate_to_datetime(text)
    day, year, hour, minute, second = (int(m.group(i) or 0) for i in (1, 3, 4, 5, 6))
    if m.group(7):
        zone = UTC
    else:
        offset = timedelta(hours=int(m.group(9)), minutes=int(m.group(10)))
        zone = timezone(-offset if m.group(8) == "-" else offset)
    return datetime(year, month, day, hour, minute, second, tzinfo=zone)
