"""The ``set`` option table and the typing of expanded values into :class:`Settings`.

Defaults are the Perl apt-mirror's (COMPAT B.2), written with ``$vars`` exactly like Perl
so that setting only ``base_path`` moves every path. Truth values follow the Perl code:

* ``_contents``, ``_autoclean``, ``_tilde``, ``run_postmirror``: Perl truthiness
  (``""`` and ``"0"`` are false, anything else is true);
* ``auth_no_challenge``, ``no_check_certificate``, ``unlink``: Perl tests ``== 1``
  (numeric), so ``yes`` is *off*; we keep that and warn;
* ``use_proxy``: only exactly ``yes`` or ``on`` enables the proxy keys.

apt-mirror2's extra keys are accepted; ``wipe_size_ratio``, ``wipe_count_ratio``,
``gpg_verify``, ``etc_trusted``, ``etc_trusted_parts``, ``slow_rate*`` and our trust and
transfer keys are typed, the rest stay raw in ``Config.variables``.
No I/O here (the loader passes the ``dpkg --print-architecture`` result in).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

from aptmirror.config.observe import OBSERVE_DEFAULTS
from aptmirror.config.values import parse_on_off
from aptmirror.errors import ConfigError
from aptmirror.model import ConfigWarning, Location, Settings

PERL_DEFAULTS: dict[str, str] = {
    "base_path": "/var/spool/apt-mirror",
    "mirror_path": "$base_path/mirror",
    "skel_path": "$base_path/skel",
    "var_path": "$base_path/var",
    "cleanscript": "$var_path/clean.sh",
    "nthreads": "20",
    "_contents": "1",
    "_autoclean": "0",
    "_tilde": "0",
    "limit_rate": "100m",
    "run_postmirror": "1",
    "auth_no_challenge": "0",
    "no_check_certificate": "0",
    "unlink": "0",
    "postmirror_script": "$var_path/postmirror.sh",
    "use_proxy": "off",
    "http_proxy": "",
    "https_proxy": "",
    "proxy_user": "",
    "proxy_password": "",
    "certificate": "",
    "private_key": "",
    "ca_certificate": "",
}

# apt-mirror2 keys we type (defaults are apt-mirror2's, gpg_verify is ours: verify).
EXTRA_DEFAULTS: dict[str, str] = {
    "wipe_size_ratio": "0.4",
    "wipe_count_ratio": "0.4",
    "gpg_verify": "on",
    "etc_trusted": "/etc/apt/trusted.gpg",
    "etc_trusted_parts": "/etc/apt/trusted.gpg.d",
    "share_keyrings": "/usr/share/keyrings",
    "valid_until_tolerance": "0",
    "max_future_time": "10",
    "verify_checksums": "on",
    # transfers (issue 4): apt-mirror2's slow-rate keys and defaults, then our own keys
    "slow_rate_protection": "on",
    "slow_rate_startup": "15",
    "slow_rate": "100k",
    "retry_attempts": "5",
    "retry_delay": "2",
    "resume_partial_downloads": "on",
    "resume_min_size": "1m",
    "connect_timeout": "30",
    "read_timeout": "60",
    "max_connections_per_host": "8",
    "pool_processes": "auto",
    "etc_netrc": "/etc/apt/auth.conf",  # apt-mirror2's name; auth.conf.d beside it is read too
    "https_only": "off",
}

# apt-mirror2 keys accepted without a warning and kept raw.
APT_MIRROR2_KEYS: frozenset[str] = frozenset(
    {
        "uvloop",
        "append_logs",
        "write_file_lists",
        "weak_size_check",
        "check_hashes",
        "http_user_agent",
        "prometheus_enable",
        "prometheus_host",
        "prometheus_port",
        "release_files_retries",
        "use_dists_move",
    }
)

KNOWN_KEYS: frozenset[str] = frozenset(
    {"defaultarch", *PERL_DEFAULTS, *EXTRA_DEFAULTS, *APT_MIRROR2_KEYS, *OBSERVE_DEFAULTS}
)

_T = TypeVar("_T")
ON_OFF = "expected on or off"

_PERL_NUMBER_RE = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_RATE_RE = re.compile(r"^(?P<num>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[kmgt]?)$", re.ASCII | re.I)
_RATE_UNITS: dict[str, int] = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def default_variables(default_arch: str) -> dict[str, str]:
    """The namespace before the first ``set`` line (raw, unexpanded values)."""
    return {"defaultarch": default_arch, **PERL_DEFAULTS, **EXTRA_DEFAULTS}


def perl_true(value: str) -> bool:
    """Perl string truthiness: ``""`` and ``"0"`` are false, everything else true."""
    return value not in ("", "0")


def perl_number(value: str) -> float:
    """Perl's numeric value of a string: its leading decimal number, else 0."""
    match = _PERL_NUMBER_RE.match(value)
    return float(match.group(0)) if match else 0.0


def parse_limit_rate(value: str) -> int | None:
    """wget ``--limit-rate`` syntax to bytes/s: ``500``, ``100k``, ``1.5M``, ``2g``.

    Suffixes are case-insensitive powers of 1024 (k, m, g, t) as in wget; ``inf``, ``0`` and
    the empty string mean unlimited (None). Raises ValueError for anything else.
    """
    text = value.strip()
    if text in ("", "inf"):
        return None
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError(value)
    rate = int(float(match.group("num")) * _RATE_UNITS[match.group("unit").lower()])
    return rate or None


def _error(key: str, value: str, expected: str, location: Location | None) -> ConfigError:
    path, line = (location.path, location.line) if location else (None, None)
    return ConfigError(f"invalid value for '{key}': {value!r} ({expected})", path, line)


class _Reader:
    """Typed access to the expanded values, naming the ``set`` line in errors."""

    def __init__(self, values: Mapping[str, str], locations: Mapping[str, Location]) -> None:
        self.values = values
        self.locations = locations
        self.warnings: list[ConfigWarning] = []

    def text(self, key: str) -> str:
        return self.values[key]

    def truthy(self, key: str) -> bool:
        return perl_true(self.values[key])

    def equals_one(self, key: str) -> bool:
        value = self.values[key]
        result = perl_number(value) == 1
        location = self.locations.get(key)
        if location is not None and value.strip() not in ("0", "1", ""):
            state = "on" if result else "off"
            message = f"'{key}' is {value!r}; apt-mirror only enables it with 1, so it is {state}"
            self.warnings.append(ConfigWarning(location, message))
        return result

    def typed(self, key: str, convert: Callable[[str], _T], expected: str) -> _T:
        value = self.values[key]
        try:
            return convert(value)
        except ValueError:
            raise _error(key, value, expected, self.locations.get(key)) from None


def _nthreads(value: str) -> int:
    number = int(value.strip())
    if number < 1:
        raise ValueError(value)
    return number


def _processes(value: str) -> int:
    """``auto`` (0) or a count >= 1."""
    text = value.strip().lower()
    return 0 if text == "auto" else _nthreads(text)


def _ratio(value: str) -> float:
    number = float(value.strip())
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def convert(value: str) -> int:
        number = int(value.strip())
        if number < minimum:
            raise ValueError(value)
        return number

    return convert


def _seconds(value: str) -> float:
    number = float(value.strip())
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _positive_seconds(value: str) -> float:
    number = _seconds(value)
    if number <= 0:
        raise ValueError(value)
    return number


def _rate(value: str) -> int:
    return parse_limit_rate(value) or 0


def _gpg_verify(value: str) -> Literal["on", "off"]:
    lowered = value.strip().lower()
    if lowered in ("on", "force"):
        return "on"
    if lowered == "off":
        return "off"
    raise ValueError(value)


def build_settings(
    values: Mapping[str, str], locations: Mapping[str, Location]
) -> tuple[Settings, list[ConfigWarning]]:
    """Type the expanded namespace (defaults merged with every ``set``) into Settings.

    ``locations`` maps a key to its last ``set`` line, used in errors and warnings.
    """
    read = _Reader(values, locations)
    if not perl_true(values["defaultarch"]):
        location = locations.get("defaultarch")
        path, line = (location.path, location.line) if location else (None, None)
        raise ConfigError("Please explicitly specify 'defaultarch' in mirror.list", path, line)
    settings = Settings(
        base_path=read.text("base_path"),
        mirror_path=read.text("mirror_path"),
        skel_path=read.text("skel_path"),
        var_path=read.text("var_path"),
        cleanscript=read.text("cleanscript"),
        defaultarch=read.text("defaultarch"),
        nthreads=read.typed("nthreads", _nthreads, "expected an integer >= 1"),
        limit_rate=read.typed("limit_rate", parse_limit_rate, "expected e.g. 500, 100k, 2m"),
        contents=read.truthy("_contents"),
        autoclean=read.truthy("_autoclean"),
        tilde=read.truthy("_tilde"),
        run_postmirror=read.truthy("run_postmirror"),
        postmirror_script=read.text("postmirror_script"),
        auth_no_challenge=read.equals_one("auth_no_challenge"),
        no_check_certificate=read.equals_one("no_check_certificate"),
        unlink=read.equals_one("unlink"),
        use_proxy=read.text("use_proxy") in ("yes", "on"),
        http_proxy=read.text("http_proxy"),
        https_proxy=read.text("https_proxy"),
        proxy_user=read.text("proxy_user"),
        proxy_password=read.text("proxy_password"),
        certificate=read.text("certificate"),
        private_key=read.text("private_key"),
        ca_certificate=read.text("ca_certificate"),
        wipe_size_ratio=read.typed("wipe_size_ratio", _ratio, "expected a number >= 0"),
        wipe_count_ratio=read.typed("wipe_count_ratio", _ratio, "expected a number >= 0"),
        gpg_verify=read.typed("gpg_verify", _gpg_verify, "expected on, off or force"),
        etc_trusted=read.text("etc_trusted"),
        etc_trusted_parts=read.text("etc_trusted_parts"),
        share_keyrings=read.text("share_keyrings"),
        valid_until_tolerance=read.typed(
            "valid_until_tolerance", _seconds, "expected a number of seconds >= 0"
        ),
        max_future_time=read.typed(
            "max_future_time", _seconds, "expected a number of seconds >= 0"
        ),
        verify_checksums=read.typed("verify_checksums", parse_on_off, ON_OFF),
        retry_attempts=read.typed("retry_attempts", _int_at_least(1), "expected an integer >= 1"),
        retry_delay=read.typed("retry_delay", _seconds, "expected seconds >= 0"),
        resume_partial_downloads=read.typed("resume_partial_downloads", parse_on_off, ON_OFF),
        resume_min_size=read.typed("resume_min_size", _rate, "expected e.g. 0, 512k, 1m"),
        connect_timeout=read.typed("connect_timeout", _positive_seconds, "expected seconds > 0"),
        read_timeout=read.typed("read_timeout", _positive_seconds, "expected seconds > 0"),
        slow_rate_protection=read.typed("slow_rate_protection", parse_on_off, ON_OFF),
        slow_rate_startup=read.typed("slow_rate_startup", _positive_seconds, "expected > 0"),
        slow_rate=read.typed("slow_rate", _rate, "expected e.g. 500, 100k, 2m"),
        max_connections_per_host=read.typed(
            "max_connections_per_host", _int_at_least(0), "expected an integer >= 0"
        ),
        pool_processes=read.typed("pool_processes", _processes, "expected auto or an integer >= 1"),
        etc_netrc=read.text("etc_netrc"),
        https_only=read.typed("https_only", parse_on_off, ON_OFF),
    )
    return settings, read.warnings
