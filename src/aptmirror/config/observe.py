"""The ``set`` keys of observability (issue 6): logs, metrics, health, progress. Pure.

They are read from :attr:`Config.variables` (expanded ``set`` values) with the defaults
below, so the option table of :mod:`aptmirror.config.settings` only has to know their names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeVar

from aptmirror.config.values import parse_on_off
from aptmirror.errors import ConfigError
from aptmirror.frozen import frozen
from aptmirror.model import Config

OBSERVE_DEFAULTS: dict[str, str] = {
    "log_format": "text",
    "log_file": "",
    "log_max_bytes": "10m",
    "log_backup_count": "5",
    "log_journal": "off",
    "log_per_repository": "on",
    "metrics_textfile": "",
    "metrics_interval": "30",
    "state_db": "on",
    "health_warning_age": "26",
    "health_critical_age": "50",
    "health_runs": "10",
    "progress_interval": "30",
    "progress": "auto",
}

_T = TypeVar("_T")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@frozen
class ObserveSettings:
    log_format: Literal["text", "json"] = "text"
    log_file: str = ""  # "" = no log file
    log_max_bytes: int = 10 * 1024**2  # rotate past this size; 0 = never
    log_backup_count: int = 5
    log_journal: bool = False
    log_per_repository: bool = True  # var/<repository with / as _>.log
    metrics_textfile: str = ""  # node_exporter textfile; "" = none
    metrics_interval: float = 30.0  # seconds between rewrites during a run
    state_db: bool = True  # var/aptmirror.db
    health_warning_age: float = 26.0  # hours since the last successful update
    health_critical_age: float = 50.0
    health_runs: int = 10  # recent runs the error rate and speed are taken over
    progress_interval: float = 30.0  # seconds between plain progress lines (no terminal)
    progress: Literal["auto", "rich", "plain", "off"] = "auto"


def _size(value: str) -> int:
    text = value.strip().lower().removesuffix("b").removesuffix("i")
    unit = text[-1:] if text[-1:] in ("k", "m", "g") else ""
    number = float(text[: len(text) - len(unit)])
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return int(number * _SIZE_UNITS[unit])


def _non_negative(value: str) -> float:
    number = float(value.strip())
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _count(value: str) -> int:
    number = int(value.strip())
    if number < 0:
        raise ValueError(value)
    return number


def _choice(*allowed: str) -> Callable[[str], str]:
    def convert(value: str) -> str:
        lowered = value.strip().lower()
        if lowered not in allowed:
            raise ValueError(value)
        return lowered

    return convert


def observe_settings(config: Config) -> ObserveSettings:
    """Type the observability keys of ``config``; ConfigError names a bad value."""
    values = {**OBSERVE_DEFAULTS, **dict(config.variables)}

    def read(key: str, convert: Callable[[str], _T], expected: str) -> _T:
        try:
            return convert(values[key])
        except ValueError:
            raise ConfigError(f"invalid value for '{key}': {values[key]!r} ({expected})") from None

    log_format = read("log_format", _choice("text", "json"), "expected text or json")
    progress = read("progress", _choice("auto", "rich", "plain", "off"), "auto|rich|plain|off")
    warning = read("health_warning_age", _non_negative, "expected hours >= 0")
    critical = read("health_critical_age", _non_negative, "expected hours >= 0")
    if critical < warning:
        raise ConfigError(
            f"health_critical_age ({critical:g}) is below health_warning_age ({warning:g})"
        )
    return ObserveSettings(
        log_format="json" if log_format == "json" else "text",
        log_file=values["log_file"].strip(),
        log_max_bytes=read("log_max_bytes", _size, "expected a size such as 10m"),
        log_backup_count=read("log_backup_count", _count, "expected an integer >= 0"),
        log_journal=read("log_journal", parse_on_off, "expected on or off"),
        log_per_repository=read("log_per_repository", parse_on_off, "expected on or off"),
        metrics_textfile=values["metrics_textfile"].strip(),
        metrics_interval=read("metrics_interval", _non_negative, "expected seconds >= 0"),
        state_db=read("state_db", parse_on_off, "expected on or off"),
        health_warning_age=warning,
        health_critical_age=critical,
        health_runs=max(1, read("health_runs", _count, "expected an integer >= 1")),
        progress_interval=read("progress_interval", _non_negative, "expected seconds >= 0"),
        progress="auto" if progress == "auto" else _progress(progress),
    )


def _progress(value: str) -> Literal["rich", "plain", "off"]:
    return "rich" if value == "rich" else "plain" if value == "plain" else "off"
