"""Frozen values that flow between the stages of a run.

No I/O here and no imports from other aptmirror modules except errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

# Strongest first: the order in which we pick a hash to verify against.
HASH_NAMES: tuple[str, ...] = ("SHA512", "SHA256", "SHA1", "MD5Sum")
HASHLIB_NAMES: dict[str, str] = {
    "SHA512": "sha512",
    "SHA256": "sha256",
    "SHA1": "sha1",
    "MD5Sum": "md5",
}


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written in a configuration file."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class ConfigWarning:
    """Something accepted for compatibility but probably a mistake (typo, undefined $var)."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class Checksums:
    """Declared size and hashes of one file.

    ``hashes`` maps Release field names ("SHA512", "SHA256", "SHA1", "MD5Sum") to lower-case
    hex digests.
    """

    size: int
    hashes: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> str | None:
        for key, value in self.hashes:
            if key == name:
                return value
        return None

    def strongest(self) -> tuple[str, str] | None:
        """(field name, digest) of the strongest hash available, or None."""
        for name in HASH_NAMES:
            value = self.get(name)
            if value is not None:
                return name, value
        return None


class SourceType(Enum):
    BINARY = "deb"
    SOURCE = "deb-src"


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a run needs from mirror.list (+ mirror.list.d)."""

    settings: Settings
    sources: tuple[SourceLine, ...]
    clean: tuple[str, ...]  # paths relative to mirror_path (scheme and credentials stripped)
    skip_clean: tuple[str, ...]  # same path rule
    variables: tuple[tuple[str, str], ...] = ()  # every `set` key, expanded, last wins
    warnings: tuple[ConfigWarning, ...] = ()
    files: tuple[str, ...] = field(default=())  # config files read, in order
    # apt-mirror2 per-repository lines (keyword, arguments, where), e.g.
    # ("mirror_path", ("http://host/debian", "debian"), Location(...)); kept verbatim.
    directives: tuple[tuple[str, tuple[str, ...], Location], ...] = ()
