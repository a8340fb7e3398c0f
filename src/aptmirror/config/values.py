"""Value parsers shared by the option tables (settings.py, observe.py). Pure."""

from __future__ import annotations


def parse_on_off(value: str) -> bool:
    """``on/yes/1/true`` or ``off/no/0/false/""``; anything else raises ValueError."""
    lowered = value.strip().lower()
    if lowered in ("on", "yes", "1", "true"):
        return True
    if lowered in ("off", "no", "0", "false", ""):
        return False
    raise ValueError(value)
