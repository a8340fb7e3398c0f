"""Frozen values that flow between the stages of a run.

No I/O here and no imports from other aptmirror modules except errors.
"""

from __future__ import annotations

from dataclasses import field
from enum import Enum
from typing import Literal

from aptmirror.frozen import frozen

# Strongest first: the order in which we pick a hash to verify against.
HASH_NAMES: tuple[str, ...] = ("SHA512", "SHA256", "SHA1", "MD5Sum")
_HASH_RANK: dict[str, int] = {name: rank for rank, name in enumerate(HASH_NAMES)}
_NO_RANK = len(HASH_NAMES)
HASHLIB_NAMES: dict[str, str] = {
    "SHA512": "sha512",
    "SHA256": "sha256",
    "SHA1": "sha1",
    "MD5Sum": "md5",
}


@frozen
class Location:
    """Where something was written in a configuration file."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@frozen
class ConfigWarning:
    """Something accepted for compatibility but probably a mistake (typo, undefined $var)."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@frozen
class Checksums:
    """Declared size and hashes of one file.

    ``hashes`` maps Release field names ("SHA512", "SHA256", "SHA1", "MD5Sum") to lower-case
    hex digests.
    """

    size: int
    hashes: tuple[tuple[str, str], ...] = ()

    def __reduce__(self) -> tuple[type, tuple[int, tuple[tuple[str, str], ...]]]:
        # sent to pool worker processes by the thousand: faster than dataclass state
        return (Checksums, (self.size, self.hashes))

    def get(self, name: str) -> str | None:
        for key, value in self.hashes:
            if key == name:
                return value
        return None

    def strongest(self) -> tuple[str, str] | None:
        """(field name, digest) of the strongest hash available, or None."""
        # one pass (asked twice per pool file while planning)
        best: tuple[str, str] | None = None
        rank = _NO_RANK
        for pair in self.hashes:
            r = _HASH_RANK.get(pair[0], _NO_RANK)
            if r < rank:
                best, rank = pair, r
        return best


class SourceType(Enum):
    BINARY = "deb"
    SOURCE = "deb-src"


@frozen
class SourceLine:
    """One `deb`/`deb-src` line (or one deb822 stanza expanded to one suite)."""

    type: SourceType
    uri: str  # as written, credentials included, no trailing slash normalisation
    dist: str  # suite, or "dir/" for a flat repository
    components: tuple[str, ...]  # empty for a flat repository
    arches: tuple[str, ...]  # empty for deb-src
    options: tuple[tuple[str, str], ...]  # other [key=value] options, e.g. signed-by
    location: Location

    @property
    def is_flat(self) -> bool:
        return not self.components

    def option(self, key: str) -> str | None:
        for k, v in self.options:
            if k == key:
                return v
        return None


GpgVerify = Literal["on", "off"]


def gpg_verify_mode(value: str) -> GpgVerify:
    """``gpg_verify`` value (global, per-repository line, deb822 ``GPG-Verify``) to on/off.

    ``force`` is apt-mirror2's spelling of ``on``; deb822 booleans are accepted too.
    Raises ValueError for anything else.
    """
    lowered = value.strip().lower()
    if lowered in ("on", "force", "yes", "true", "1"):
        return "on"
    if lowered in ("off", "no", "false", "0"):
        return "off"
    raise ValueError(value)


@frozen
class Settings:
    """Typed `set` variables, after $var expansion. Defaults are the Perl tool's."""

    base_path: str = "/var/spool/apt-mirror"
    mirror_path: str = "/var/spool/apt-mirror/mirror"
    skel_path: str = "/var/spool/apt-mirror/skel"
    var_path: str = "/var/spool/apt-mirror/var"
    cleanscript: str = "/var/spool/apt-mirror/var/clean.sh"
    defaultarch: str = "amd64"
    nthreads: int = 20
    limit_rate: int | None = None  # bytes per second, global; None = unlimited
    contents: bool = True  # _contents
    autoclean: bool = False  # _autoclean
    tilde: bool = False  # _tilde
    run_postmirror: bool = True
    postmirror_script: str = "/var/spool/apt-mirror/var/postmirror.sh"
    auth_no_challenge: bool = False
    no_check_certificate: bool = False
    unlink: bool = False
    use_proxy: bool = False
    http_proxy: str = ""
    https_proxy: str = ""
    proxy_user: str = ""
    proxy_password: str = ""
    certificate: str = ""
    private_key: str = ""
    ca_certificate: str = ""
    wipe_size_ratio: float = 0.4
    wipe_count_ratio: float = 0.4
    gpg_verify: Literal["on", "off"] = "on"
    retry_attempts: int = 5  # attempts per file, the first included
    retry_delay: float = 2.0  # seconds before the first retry; doubles each time (jittered)
    resume_partial_downloads: bool = True  # continue cut-off transfers with Range/If-Range
    resume_min_size: int = 1 << 20  # smaller files are fetched whole again (no sidecar)
    connect_timeout: float = 30.0
    read_timeout: float = 60.0  # seconds without a single byte before a transfer is retried
    slow_rate_protection: bool = True
    slow_rate_startup: float = 15.0  # grace, and the window the average rate is taken over
    slow_rate: int = 100 * 1024  # bytes per second; slower transfers are aborted and retried
    max_connections_per_host: int = 8  # 0 = only nthreads limits connections
    # worker processes for the pool downloads: 0 = auto (one per core, at most 4, for
    # 2,000 files or more), 1 = none (all in the run's process), N = that many
    pool_processes: int = 0
    etc_netrc: str = "/etc/apt/auth.conf"  # apt's auth.conf (+ auth.conf.d/*.conf); "" = none
    https_only: bool = False  # refuse plain-http sources and redirects to http
    # Trust (issue 5): system keyrings used when a repository has no signed-by (apt's
    # Dir::Etc::Trusted / TrustedParts, named as apt-mirror2 names them; "" disables one),
    # how late a Valid-Until may be accepted, and whether pool files are hash-checked.
    etc_trusted: str = "/etc/apt/trusted.gpg"
    etc_trusted_parts: str = "/etc/apt/trusted.gpg.d"
    share_keyrings: str = "/usr/share/keyrings"
    valid_until_tolerance: float = 0.0  # seconds
    max_future_time: float = 10.0  # seconds a Release's Date may be ahead (apt's default)
    verify_checksums: bool = True


@frozen
class Config:
    """Everything a run needs from mirror.list (+ mirror.list.d)."""

    settings: Settings
    sources: tuple[SourceLine, ...]
    clean: tuple[str, ...]  # relative to mirror_path (no scheme/credentials; or a mirror_path)
    skip_clean: tuple[str, ...]  # same path rule
    variables: tuple[tuple[str, str], ...] = ()  # every `set` key, expanded, last wins
    warnings: tuple[ConfigWarning, ...] = ()
    files: tuple[str, ...] = field(default=())  # config files read, in order
    # apt-mirror2 per-repository lines (keyword, arguments, where), e.g.
    # ("mirror_path", ("http://host/debian", "debian"), Location(...)); kept verbatim.
    directives: tuple[tuple[str, tuple[str, ...], Location], ...] = ()
