"""aptmirror.config.settings: option table, Perl truth values, typed Settings."""

from __future__ import annotations

import pytest

from aptmirror.config.settings import (
    APT_MIRROR2_KEYS,
    KNOWN_KEYS,
    PERL_DEFAULTS,
    build_settings,
    default_variables,
    parse_limit_rate,
    perl_number,
    perl_true,
)
from aptmirror.config.variables import resolve_all
from aptmirror.errors import ConfigError
from aptmirror.model import Location, Settings

COMPAT_B2_KEYS = {
    "base_path",
    "mirror_path",
    "skel_path",
    "var_path",
    "cleanscript",
    "defaultarch",
    "nthreads",
    "limit_rate",
    "_contents",
    "_autoclean",
    "_tilde",
    "run_postmirror",
    "postmirror_script",
    "auth_no_challenge",
    "no_check_certificate",
    "unlink",
    "use_proxy",
    "http_proxy",
    "https_proxy",
    "proxy_user",
    "proxy_password",
    "certificate",
    "private_key",
    "ca_certificate",
}

TRANSFER_KEYS = {  # issue 4 (fetch/fetcher.py, sync/run.py)
    "retry_attempts",
    "retry_delay",
    "resume_partial_downloads",
    "resume_min_size",
    "connect_timeout",
    "read_timeout",
    "slow_rate_protection",
    "slow_rate_startup",
    "slow_rate",
    "max_connections_per_host",
    "pool_processes",
    "etc_netrc",
    "https_only",
}


# Issue 5 (trust): typed keys of signature, Release and checksum checks.
TRUST_KEYS = {
    "etc_trusted",
    "etc_trusted_parts",
    "share_keyrings",
    "valid_until_tolerance",
    "max_future_time",
    "verify_checksums",
}


def settings_from(sets: dict[str, str], arch: str = "amd64") -> Settings:
    namespace = default_variables(arch)
    namespace.update(sets)
    locations = {key: Location("m.list", n) for n, key in enumerate(sets, start=1)}
    resolved, _ = resolve_all(namespace, locations)
    settings, _ = build_settings(resolved, locations)
    return settings


def test_table_covers_compat_b2_and_apt_mirror2() -> None:
    assert COMPAT_B2_KEYS <= KNOWN_KEYS
    assert set(default_variables("x")) == COMPAT_B2_KEYS | {
        "wipe_size_ratio",
        "wipe_count_ratio",
        "gpg_verify",
        *TRANSFER_KEYS,
        *TRUST_KEYS,
    }
    assert {"uvloop", "http_user_agent", "use_dists_move"} <= APT_MIRROR2_KEYS <= KNOWN_KEYS


def test_defaults_are_written_with_variables_like_perl() -> None:
    assert PERL_DEFAULTS["mirror_path"] == "$base_path/mirror"
    assert PERL_DEFAULTS["cleanscript"] == "$var_path/clean.sh"
    assert PERL_DEFAULTS["postmirror_script"] == "$var_path/postmirror.sh"


def test_every_default() -> None:
    assert settings_from({}, arch="arm64") == Settings(
        base_path="/var/spool/apt-mirror",
        mirror_path="/var/spool/apt-mirror/mirror",
        skel_path="/var/spool/apt-mirror/skel",
        var_path="/var/spool/apt-mirror/var",
        cleanscript="/var/spool/apt-mirror/var/clean.sh",
        defaultarch="arm64",
        nthreads=20,
        limit_rate=100 * 1024 * 1024,  # Perl default '100m'
        contents=True,
        autoclean=False,
        tilde=False,
        run_postmirror=True,
        postmirror_script="/var/spool/apt-mirror/var/postmirror.sh",
        auth_no_challenge=False,
        no_check_certificate=False,
        unlink=False,
        use_proxy=False,
        http_proxy="",
        https_proxy="",
        proxy_user="",
        proxy_password="",
        certificate="",
        private_key="",
        ca_certificate="",
        wipe_size_ratio=0.4,
        wipe_count_ratio=0.4,
        gpg_verify="on",
    )


def test_base_path_moves_every_path() -> None:
    settings = settings_from({"base_path": "/srv/apt"})
    assert settings.mirror_path == "/srv/apt/mirror"
    assert settings.skel_path == "/srv/apt/skel"
    assert settings.var_path == "/srv/apt/var"
    assert settings.cleanscript == "/srv/apt/var/clean.sh"
    assert settings.postmirror_script == "/srv/apt/var/postmirror.sh"


def test_var_path_moves_scripts_only() -> None:
    settings = settings_from({"var_path": "/tmp/v"})
    assert (settings.cleanscript, settings.mirror_path) == (
        "/tmp/v/clean.sh",
        "/var/spool/apt-mirror/mirror",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", False),
        ("0", False),
        ("1", True),
        ("00", True),
        ("0.0", True),
        ("no", True),
        (" ", True),
    ],
)
def test_perl_true(value: str, expected: bool) -> None:
    assert perl_true(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1.0),
        (" 1", 1.0),
        ("1.0", 1.0),
        ("1abc", 1.0),
        ("yes", 0.0),
        ("", 0.0),
        ("1e0", 1.0),
        ("-2", -2.0),
        (".5", 0.5),
    ],
)
def test_perl_number(value: str, expected: float) -> None:
    assert perl_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500", 500),
        ("100k", 102400),
        ("100K", 102400),
        ("2m", 2 * 1024**2),
        ("1.5M", int(1.5 * 1024**2)),
        ("1g", 1024**3),
        ("1t", 1024**4),
        (" 10 k ", 10240),
        ("0", None),
        ("0k", None),
        ("", None),
        ("inf", None),
    ],
)
def test_limit_rate(value: str, expected: int | None) -> None:
    assert parse_limit_rate(value) == expected


@pytest.mark.parametrize("value", ["fast", "10x", "-5k", "1,5m", "k", "1.2.3"])
def test_limit_rate_invalid(value: str) -> None:
    with pytest.raises(ValueError):
        parse_limit_rate(value)


def test_limit_rate_error_names_set_line() -> None:
    with pytest.raises(ConfigError, match="'limit_rate'") as info:
        settings_from({"limit_rate": "fast"})
    assert (info.value.path, info.value.line) == ("m.list", 1)


def test_limit_rate_set() -> None:
    assert settings_from({"limit_rate": "512k"}).limit_rate == 512 * 1024
    assert settings_from({"limit_rate": "0"}).limit_rate is None


@pytest.mark.parametrize("value", ["0", "-1", "abc", "2.5", ""])
def test_nthreads_invalid(value: str) -> None:
    with pytest.raises(ConfigError, match="invalid value for 'nthreads'") as info:
        settings_from({"base_path": "/x", "nthreads": value})
    assert str(info.value).startswith("m.list:2: ")


def test_nthreads_valid() -> None:
    assert settings_from({"nthreads": " 8 "}).nthreads == 8


@pytest.mark.parametrize("key", ["_contents", "_autoclean", "_tilde", "run_postmirror"])
@pytest.mark.parametrize(
    ("value", "expected"), [("0", False), ("", False), ("1", True), ("yes", True), ("off", True)]
)
def test_perl_truthiness_keys(key: str, value: str, expected: bool) -> None:
    settings = settings_from({key: value})
    field = {"_contents": "contents", "_autoclean": "autoclean", "_tilde": "tilde"}.get(key, key)
    assert getattr(settings, field) is expected


@pytest.mark.parametrize("key", ["auth_no_challenge", "no_check_certificate", "unlink"])
@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("0", False), ("yes", False), ("1.0", True), ("2", False)]
)
def test_numeric_equals_one_keys(key: str, value: str, expected: bool) -> None:
    assert getattr(settings_from({key: value}), key) is expected


def test_numeric_key_warns_on_odd_value() -> None:
    namespace = default_variables("amd64") | {"unlink": "yes"}
    locations = {"unlink": Location("m.list", 9)}
    _, warnings = build_settings(namespace, locations)
    assert len(warnings) == 1
    assert str(warnings[0]).startswith("m.list:9: 'unlink' is 'yes'")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("on", True), ("yes", True), ("off", False), ("1", False), ("ON", False), ("", False)],
)
def test_use_proxy(value: str, expected: bool) -> None:
    assert settings_from({"use_proxy": value}).use_proxy is expected


def test_proxy_and_certificate_strings() -> None:
    settings = settings_from(
        {
            "http_proxy": "proxy:3128",
            "proxy_user": "u",
            "certificate": "/c.pem",
            "private_key": "/k.pem",
            "ca_certificate": "/ca.pem",
            "https_proxy": "p:1",
            "proxy_password": "pw",
        }
    )
    assert (settings.http_proxy, settings.https_proxy, settings.proxy_user) == (
        "proxy:3128",
        "p:1",
        "u",
    )
    assert (settings.proxy_password, settings.certificate) == ("pw", "/c.pem")
    assert (settings.private_key, settings.ca_certificate) == ("/k.pem", "/ca.pem")


@pytest.mark.parametrize(
    ("value", "expected"), [("on", "on"), ("force", "on"), ("off", "off"), ("OFF", "off")]
)
def test_gpg_verify(value: str, expected: str) -> None:
    assert settings_from({"gpg_verify": value}).gpg_verify == expected


def test_gpg_verify_invalid() -> None:
    with pytest.raises(ConfigError, match="'gpg_verify'"):
        settings_from({"gpg_verify": "maybe"})


def test_wipe_ratios() -> None:
    settings = settings_from({"wipe_size_ratio": "0.25", "wipe_count_ratio": "1"})
    assert (settings.wipe_size_ratio, settings.wipe_count_ratio) == (0.25, 1.0)
    with pytest.raises(ConfigError, match="'wipe_count_ratio'"):
        settings_from({"wipe_count_ratio": "-0.1"})
    with pytest.raises(ConfigError, match="'wipe_size_ratio'"):
        settings_from({"wipe_size_ratio": "nan"})


@pytest.mark.parametrize("value", ["", "0"])
def test_defaultarch_false_is_an_error(value: str) -> None:
    with pytest.raises(ConfigError, match="Please explicitly specify 'defaultarch'"):
        settings_from({"defaultarch": value})


def test_defaultarch_empty_from_dpkg_is_an_error() -> None:
    with pytest.raises(ConfigError, match="Please explicitly specify 'defaultarch'"):
        settings_from({}, arch="")


def test_pool_processes_auto_or_count() -> None:
    assert settings_from({}).pool_processes == 0  # auto
    assert settings_from({"pool_processes": "3"}).pool_processes == 3
    assert settings_from({"pool_processes": "AUTO"}).pool_processes == 0
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="pool_processes"):
            settings_from({"pool_processes": bad})
