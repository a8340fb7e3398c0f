"""Pure helpers turning a repository URI into credentials and a local path.

The local path is where ``wget -r`` would store the URI, relative to ``mirror_path``
(COMPAT B.5): ``<host>[:<port>]/<uri-path>``, scheme and ``user:pass@`` removed. It is
the one path rule used both for mirrored trees and for ``clean``/``skip-clean`` lines, so
that cleaning an authenticated repository no longer deletes everything (Perl issue #124).

No I/O here; imports only ``aptmirror.errors``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from aptmirror.errors import ConfigError

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

# wget omits the port from the directory name when it is the scheme's default one.
_DEFAULT_PORTS: dict[str, str] = {"http": "80", "https": "443", "ftp": "21"}


def split_scheme(uri: str) -> tuple[str | None, str]:
    """Return (lower-case scheme or None, the rest after ``scheme://``)."""
    match = _SCHEME_RE.match(uri)
    if match is None:
        return None, uri
    return match.group(1).lower(), uri[match.end() :]


def _split_authority(rest: str) -> tuple[str, str]:
    """Split ``authority/path`` into (authority, "/path" or "")."""
    slash = rest.find("/")
    if slash < 0:
        return rest, ""
    return rest[:slash], rest[slash:]


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """Remove ``user[:password]@`` from the authority of ``uri``.

    Returns (uri without credentials, user, password); user and password are
    percent-decoded, None when absent. The last ``@`` of the authority separates the
    credentials from the host, so an unencoded ``@`` in a password still works, and an
    ``@`` in the path (``icons-64x64@2.tar.gz``) is never taken for one.
    """
    match = _SCHEME_RE.match(uri)
    prefix = uri[: match.end()] if match else ""
    authority, path = _split_authority(uri[len(prefix) :])
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return uri, None, None
    user, colon, password = userinfo.partition(":")
    return prefix + host + path, unquote(user), unquote(password) if colon else None


def normalize_uri(uri: str) -> str:
    """``uri`` as the Perl tool fetched it (its ``remove_double_slashes``): ``//`` and
    ``/./`` in the path collapsed, so ``http://host//debian/`` asks for ``/debian/…``; the
    scheme's ``://`` and the authority are kept as written."""
    match = _SCHEME_RE.match(uri)
    prefix = uri[: match.end()] if match else ""
    authority, path = _split_authority(uri[len(prefix) :])
    while "/./" in path:
        path = path.replace("/./", "/")
    return prefix + authority + _SLASHES_RE.sub("/", path)


_SLASHES_RE = re.compile(r"//+")


def _host_dir(scheme: str | None, hostport: str) -> str:
    """``host[:port]`` as wget names the directory (default port dropped)."""
    if hostport.startswith("["):  # IPv6 literal: [::1]:8080
        end = hostport.find("]")
        host, port = hostport[: end + 1], hostport[end + 1 :].removeprefix(":")
    else:
        host, _, port = hostport.partition(":")
    if not host:
        raise ConfigError(f"URI has no host: {hostport!r}")
    if not port or (scheme is not None and _DEFAULT_PORTS.get(scheme) == port):
        return host
    return f"{host}:{port}"


def _clean_segments(path: str, uri: str) -> list[str]:
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            raise ConfigError(f"URI path must not contain '..': {uri!r}")
        if segment not in ("", "."):
            segments.append(segment)
    return segments


def sanitize_uri(uri: str, tilde: bool = False) -> str:
    """The path of ``uri`` relative to ``mirror_path``, as ``wget -r`` stores it.

    Strips ``scheme://`` (a URI without one is taken as ``host/path``), credentials and
    trailing slashes; collapses ``//`` and ``/./``; keeps ``:port`` unless it is the
    scheme's default port (wget does the same). ``+``, ``@`` and ``~`` in the path are kept
    verbatim, except that ``tilde`` (the ``_tilde`` option) writes ``~`` as ``%7E``.

    Raises ConfigError (without file/line; callers add them) when there is no host or the
    path has a ``..`` segment.
    """
    scheme, _ = split_scheme(uri)
    bare, _, _ = split_credentials(uri)
    _, rest = split_scheme(bare)
    authority, path = _split_authority(rest)
    parts = [_host_dir(scheme, authority), *_clean_segments(path, uri)]
    result = "/".join(parts)
    if tilde:
        result = result.replace("~", "%7E")
    return result


SUPPORTED_SCHEMES: tuple[str, ...] = ("http", "https")


def check_source_uri(uri: str) -> None:
    """Reject a repository URI we cannot mirror: no ``scheme://``, a scheme other than
    http/https (Perl passed anything to wget; ftp/file would fail silently here), no host
    or a ``..`` segment. Raises ConfigError without file/line; callers add them."""
    scheme, _ = split_scheme(uri)
    if scheme is None:
        raise ConfigError(f"invalid URI (expected http:// or https://): {uri!r}")
    if scheme not in SUPPORTED_SCHEMES:
        raise ConfigError(
            f"unsupported URI scheme {scheme!r} (only http and https can be mirrored): {uri!r}"
        )
    sanitize_uri(uri)
