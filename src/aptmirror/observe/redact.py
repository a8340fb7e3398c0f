"""Credentials out of what is shown and kept: console, logs, run report, state DB.

A repository URL may carry ``user:password@`` (or a token as the user name). Downloads need
it and ``var/NEW`` keeps it, as the Perl tool's did (COMPAT B.6); but wget masked the
password in every log line of the Perl tool, and so do we (``user:***@``). Pure; no imports
of the rest.
"""

from __future__ import annotations

import re

# scheme://USERINFO@ — USERINFO up to the last "@" before the path (as the URL is read when
# mirroring: a raw "@" in a password stays part of it), never across "/" or blanks
_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://)([^/\s]*)@")
MASK = "***"


def _masked(match: re.Match[str]) -> str:
    user, colon, _secret = match.group(2).partition(":")
    # user:password -> user:***; a lone user name may be a token: masked whole
    return f"{match.group(1)}{user}:{MASK}@" if colon else f"{match.group(1)}{MASK}@"


def redact(text: str) -> str:
    """``text`` with the user information of every URL in it masked: ``user:***@``, or
    ``***@`` for a user name alone."""
    if "@" not in text:  # nearly every line: one scan, no regex
        return text
    return _USERINFO.sub(_masked, text)
