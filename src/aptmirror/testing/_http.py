"""HTTP request-header logic for the fake upstream: conditional requests and byte ranges.

Private to ``aptmirror.testing``; no I/O.
"""

from __future__ import annotations

import email.utils
import re
from pathlib import Path

from aiohttp import web

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_type(target: Path) -> str:
    if target.suffix == ".deb":
        return "application/vnd.debian.binary-package"
    return "application/octet-stream"


def not_modified(request: web.Request, etag: str, mtime: int) -> bool:
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
    ims = request.headers.get("If-Modified-Since")
    if ims is None:
        return False
    try:
        when = email.utils.parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False
    return mtime <= int(when.timestamp())


def if_range_ok(request: web.Request, etag: str, last_modified: str) -> bool:
    value = request.headers.get("If-Range")
    return value is None or value.strip() in (etag, last_modified)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(start, length) for one ``bytes=a-b`` range; ``None`` if unsatisfiable.

    Multi-range and malformed headers are not passed here: they are ignored (200), as
    RFC 9110 allows.
    """
    m = RANGE_RE.match(header.strip())
    if m is None:
        return None
    first, last = m.group(1), m.group(2)
    if first == "":
        if last == "" or int(last) == 0:
            return None
        n = min(int(last), size)
        return (size - n, n)
    start = int(first)
    if start >= size:
        return None
    end = min(int(last), size - 1) if last else size - 1
    if end < start:
        return None
    return (start, end - start + 1)
